"""MLflow models-from-code entry: this file is copied into the model directory and executed on load.

It defines the pyfunc class and registers an instance with ``set_model``; the fitted
parts are read from the model's JSON/UBJSON files in ``load_context``, after every file of the
model directory is checked against its manifest (and against ``SCORING_MODEL_DIGEST`` when that
is set). This check runs the model's own code, so it catches accidents; the loaders of
:mod:`scoring.serving.registry` check the digest before any of that code runs. Rows that fail
the value checks make the whole request fail with one message per field (HTTP 400 from
``mlflow models serve``).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from scoring.serving.artifact import FILES_ARTIFACT, load_scorer, model_root
from scoring.serving.inputs import InputRejected, InputSchemaError
from scoring.serving.integrity import expected_digest, verify_model_dir
from scoring.serving.scorer import Scorer


class ScoringPyfuncModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        files = context.artifacts[FILES_ARTIFACT]
        verify_model_dir(model_root(files), expect_digest=expected_digest())
        self.scorer: Scorer = load_scorer(files)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        try:
            return self.scorer.score(pd.DataFrame(model_input))
        except (InputRejected, InputSchemaError) as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(ScoringPyfuncModel())
