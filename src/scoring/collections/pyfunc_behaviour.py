"""MLflow models-from-code entry of the behaviour score: copied into the model directory and run on load.

Every file of the model directory is checked against its manifest (and against
``SCORING_MODEL_DIGEST`` when set) before the scorer is built from its JSON / UBJSON files; no
pickle. Rows that fail the scorer's checks fail the whole request with one message per field
(HTTP 400 from ``mlflow models serve``).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from scoring.collections.scorer import BehaviourInputError, BehaviourScorer
from scoring.serving.artifact import FILES_ARTIFACT, model_root
from scoring.serving.integrity import expected_digest, verify_model_dir


class BehaviourPyfuncModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        files = context.artifacts[FILES_ARTIFACT]
        verify_model_dir(model_root(files), expect_digest=expected_digest())
        self.scorer = BehaviourScorer.from_files(files)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        try:
            return self.scorer.score(pd.DataFrame(model_input))
        except BehaviourInputError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(BehaviourPyfuncModel())
