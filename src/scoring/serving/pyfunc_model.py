"""MLflow models-from-code entry: this file is copied into the model directory and executed on load.

It defines the pyfunc class and registers an instance with ``set_model``; the fitted
parts are read from the model's JSON/UBJSON artifacts in ``load_context``, after their
SHA-256 digests are checked against the manifest.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from scoring.serving.artifact import LoadedArtifact, load_artifact


class PDPyfuncModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self._artifact: LoadedArtifact = load_artifact(context.artifacts)

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self._artifact.score(pd.DataFrame(model_input))


mlflow.models.set_model(PDPyfuncModel())
