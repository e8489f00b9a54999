"""Export the trained model as one MLflow pyfunc model defined from code, with no pickle in it."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.contract import AUTO_LOAN_BY_NAME, DatasetSpec
from scoring.features import ApplicationFeatures
from scoring.io import write_json
from scoring.model import CHAMPION_FILE, ESTIMATOR_FILES, FEATURES_FILE
from scoring.serving import artifact

logger = logging.getLogger(__name__)

MODEL_CODE = Path(__file__).parent / "serving" / "pyfunc_model.py"
PACKAGE_DIR = Path(__file__).parent


def _column_type(name: str, series: pd.Series | None) -> str:
    contract = AUTO_LOAN_BY_NAME.get(name)
    if contract is not None:
        if contract.kind == "int":
            # A nullable integer arrives as float (NaN) from CSV and pandas; MLflow will not
            # cast float to long, nor int64 to double, so the type follows nullability.
            return "double" if contract.nullable else "long"
        return {"float": "double", "bool": "boolean", "date": "datetime"}.get(contract.kind, "string")
    if series is not None and pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if series is not None and pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        return "long"
    if series is not None and pd.api.types.is_numeric_dtype(series.dtype):
        return "double"
    if series is not None and pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    return "string"


def build_signature(features: ApplicationFeatures, spec: DatasetSpec, example: pd.DataFrame) -> Any:
    """Explicit signature: the id and every model input, required unless it may be null.

    Written by hand because ``infer_signature`` marks columns with NaNs in the sample
    inconsistently.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    columns = [spec.id_column, *features.input_columns_]
    inputs: list[ColSpec | TensorSpec] = []
    for name in columns:
        contract = AUTO_LOAN_BY_NAME.get(name) if spec.follows_auto_loan_contract else None
        series = example[name] if name in example.columns else None
        if contract is not None:
            required = not contract.nullable
        else:
            required = name == spec.id_column or (series is not None and not series.isna().any())
        inputs.append(ColSpec(_column_type(name, series), name, required=required))
    outputs = Schema(
        [ColSpec("string", "application_id"), ColSpec("double", "pd"), ColSpec("string", "model_version")]
    )
    return ModelSignature(inputs=Schema(inputs), outputs=outputs)


def export_model(
    model_dir: Path,
    output_dir: str | Path,
    spec: DatasetSpec,
    example: pd.DataFrame,
    model_info: dict[str, Any],
) -> Path:
    """Write the MLflow model directory ``output_dir`` from the champion's files in ``model_dir``.

    The directory is built beside the destination and moved into place, so a failed export
    leaves the previous model untouched.
    """
    import mlflow

    output_dir = Path(output_dir)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output_dir.parent))
    try:
        files = staging / "files"
        files.mkdir()
        champion = json.loads((model_dir / CHAMPION_FILE).read_text(encoding="utf-8"))
        estimator_file = ESTIMATOR_FILES[champion["champion"]]
        for name in (estimator_file, CHAMPION_FILE, FEATURES_FILE):
            shutil.copyfile(model_dir / name, files / name)
        (files / "dataset.json").write_text(spec.to_json(), encoding="utf-8")
        write_json(files / "model_info.json", {**model_info, "champion": champion["champion"]})
        paths = {
            artifact.ESTIMATOR: files / estimator_file,
            artifact.CHAMPION: files / CHAMPION_FILE,
            artifact.FEATURES: files / FEATURES_FILE,
            artifact.DATASET: files / "dataset.json",
            artifact.MODEL_INFO: files / "model_info.json",
        }
        write_json(files / "manifest.json", artifact.build_manifest(paths))
        paths[artifact.MANIFEST] = files / "manifest.json"

        features = ApplicationFeatures.from_dict(
            json.loads((files / FEATURES_FILE).read_text(encoding="utf-8"))
        )
        columns = [spec.id_column, *features.input_columns_]
        input_example = _as_signature_types(example[columns].head(3).reset_index(drop=True))
        target = staging / "model"
        mlflow.pyfunc.save_model(
            path=target,
            python_model=str(MODEL_CODE),
            artifacts={k: str(v) for k, v in paths.items()},
            code_paths=[str(PACKAGE_DIR)],
            signature=build_signature(features, spec, example),
            input_example=input_example,
            pip_requirements=_pip_requirements(),
        )
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        target.replace(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported model to %s", output_dir)
    return output_dir


def _as_signature_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer columns (pandas Int64) as float64, the type the signature declares for them.

    MLflow refuses to cast Int64 to double on its own; callers holding such frames convert the
    same way (CSV and Parquet files read by pandas already give float64).
    """
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(
            out[name].dtype
        ):
            out[name] = out[name].astype("float64")
    return out


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    names = [
        "mlflow",
        "xgboost-cpu",
        "pandas",
        "numpy",
        "scikit-learn",
        "scipy",
        "pyarrow",
        "pydantic",
        "pyyaml",
    ]
    return [f"{n}=={version(n)}" for n in names]
