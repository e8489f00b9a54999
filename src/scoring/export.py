"""Export the trained model as one MLflow pyfunc model defined from code, with no pickle in it."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from scoring.core.contract import DatasetSpec
from scoring.core.io import write_text
from scoring.serving import artifact
from scoring.serving.bundle import (
    DATASET_FILE,
    PROFILE_FILE,
    REASONS_FILE,
    ModelBundle,
)
from scoring.serving.integrity import DIGEST_TAG, model_files, verify_model_dir, write_model_manifest
from scoring.serving.scorer import OUTPUT_COLUMNS, OUTPUT_TYPES, Scorer

if TYPE_CHECKING:
    from scoring.collections.scorer import BehaviourScorer
    from scoring.config import Params

logger = logging.getLogger(__name__)

MODEL_CODE = Path(__file__).parent / "serving" / "pyfunc_model.py"
PACKAGE_DIR = Path(__file__).parent
CHAMPION_ALIAS = "champion"
MLMODEL_FILE = "MLmodel"


def build_signature(scorer: Scorer, numeric_id: bool = False) -> Any:
    """Explicit signature: the id and every model input by name, the full output by name and type.

    Text fields (the id, categories) are typed ``string``; ``numeric_id``: the dataset's id
    column holds numbers, typed ``Any`` like the numeric fields. Numeric and boolean fields are typed
    ``Any``: MLflow's own enforcement refuses int64 for a double and 45.0 for a long, and casts
    ``"false"`` to true for a boolean over HTTP, so their types are checked by the value layer
    (:mod:`scoring.serving.inputs`), which accepts 45 and 45.0 for an int field, rejects 45.5
    and names the field. A field is required unless the contract lets it be null, or, outside
    the contract, training saw it empty.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    rules = scorer.rules
    # A dataset that numbered its rows has no id to require; fields go by their raw file names.
    # A numeric id (Taiwan's ID) is typed Any: MLflow will not cast int64 to string.
    id_type = AnyType() if numeric_id else "string"  # type: ignore[no-untyped-call]
    inputs = [ColSpec(id_type, rules.id_column, required=not scorer.spec.generated_id)]
    for rule in rules.fields:
        name = scorer.raw_name(rule.name)
        # a column every input must have (a null in it may still be scored, see inputs.FieldRule)
        needed = rule.required or rule.present
        if rule.kind == "category":
            inputs.append(ColSpec("string", name, required=needed))
        else:
            inputs.append(ColSpec(AnyType(), name, required=needed))  # type: ignore[no-untyped-call]
    outputs = Schema([ColSpec(OUTPUT_TYPES[name], name) for name in OUTPUT_COLUMNS])
    return ModelSignature(inputs=Schema(inputs), outputs=outputs)  # type: ignore[arg-type]


def write_model_files(
    scorer: Scorer, model_dir: Path, target: Path, profile: dict[str, Any] | None = None
) -> list[str]:
    """Copy the champion's files and the risk files, write the settings, the monitoring reference
    profile (when given) and the manifest; return the files (relative paths, manifest excluded)."""
    source, bundle = ModelBundle(model_dir), ModelBundle(target)
    target.mkdir(parents=True, exist_ok=True)
    if not source.has(REASONS_FILE):
        logger.warning("no %s in %s: the exported model returns blank reason codes", REASONS_FILE, model_dir)
    source.copy_files(source.scoring_files(), bundle)
    for name, document in scorer.settings_files().items():
        bundle.write(name, document)
    bundle.path(DATASET_FILE).write_text(scorer.spec.to_json(), encoding="utf-8")
    if profile is not None:
        bundle.write(PROFILE_FILE, profile)
    bundle.write_manifest()
    return bundle.files()


def reference_profile(
    scorer: Scorer, reference: pd.DataFrame, holdout: pd.DataFrame, spec: DatasetSpec, bins: int
) -> dict[str, Any]:
    """The monitoring reference of the model: its development rows scored and binned
    (:func:`scoring.monitoring.profile.build_profile`), the AUC on the held-out ``holdout``."""
    from sklearn.metrics import roc_auc_score

    from scoring.monitoring.profile import build_profile

    columns = list(scorer.model.features.input_columns_)
    # Rows the model's input rules refuse are left out of the profile (and logged), never fatal.
    rows = scorer.score_rows(reference, with_reasons=False)
    rows.accounted("export: the monitoring reference")
    scored, reference = rows.scores, reference[rows.scored]
    auc = None
    target = spec.target_column
    if target in holdout.columns:
        labelled = holdout[holdout[target].notna()]
        held = scorer.score_rows(labelled, with_reasons=False)
        y = labelled[target].astype(int)[held.scored]
        if y.nunique() == 2:
            auc = float(roc_auc_score(y, held.scores["pd"]))
    dates = [spec.date_column] if spec.date_column and spec.date_column in reference.columns else []
    raw = (
        scorer.model_input(reference)[columns].join(reference[dates])
        if dates
        else scorer.model_input(reference)[columns]
    )
    return build_profile(
        raw.reset_index(drop=True), scored.reset_index(drop=True), columns, spec.date_column, bins, auc
    )


def plugin_code(bundle: ModelBundle) -> list[str]:
    """The source of plug-in modules from outside the scoring package (a module file, or its
    top-level package), so the artifact imports them where it is served."""
    import importlib

    paths: list[str] = []
    for module_name in sorted(set(bundle.plugin_modules().values())):
        if module_name == "scoring" or module_name.startswith("scoring."):
            continue
        top = importlib.import_module(module_name.split(".")[0])
        location = Path(str(top.__file__))
        path = str(location.parent if location.name == "__init__.py" else location)
        if path not in paths:
            paths.append(path)
    return paths


def export_model(
    model_dir: Path,
    output_dir: str | Path,
    spec: DatasetSpec,
    example: pd.DataFrame,
    model_info: dict[str, Any],
    params: Params | None = None,
    reference: pd.DataFrame | None = None,
) -> Path:
    """Write the MLflow model directory ``output_dir`` from the pipeline's model directory.

    ``params`` gives the policy, limit and score-scaling settings (defaults when None).
    ``reference``: the development rows the monitoring profile is built from (none when None);
    ``example`` (held-out, labelled rows) gives the profile's development AUC. The directory is
    built beside the destination and moved into place, so a failed export leaves the previous
    model untouched.
    """
    import mlflow

    from scoring.config import Params

    model_dir = Path(model_dir)
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    info = {
        **model_info,
        "champion": ModelBundle(model_dir).champion_name(),
    }
    scorer = Scorer.from_model_dir(model_dir, params or Params(), spec, info)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output_dir.parent))
    try:
        files = staging / artifact.FILES_ARTIFACT
        profile = None
        if reference is not None:
            bins = (params or Params()).monitor.profile_bins
            profile = reference_profile(scorer, reference, example, spec, bins)
        write_model_files(scorer, model_dir, files, profile)
        # What the artifact will load must score exactly like the scorer built from models/.
        loaded = artifact.load_scorer(files)
        columns = [spec.id_column, *scorer.model.features.input_columns_]
        # three rows the model accepts (a rejected one cannot be the signature's example)
        accepted = example[~scorer.check(example).rejected] if len(example) else example
        raw = (accepted if len(accepted) else example)[columns].head(3).reset_index(drop=True)
        # as a caller sends it: the file's own column names, not the contract roles
        raw = raw.rename(columns={role: column for role, column in spec.roles.items()})
        input_example = _as_signature_types(raw)
        pd.testing.assert_frame_equal(scorer.score(input_example), loaded.score(input_example))
        target = staging / "model"
        mlflow.pyfunc.save_model(
            path=target,
            python_model=str(MODEL_CODE),
            artifacts={artifact.FILES_ARTIFACT: str(files)},
            code_paths=[str(PACKAGE_DIR), *plugin_code(ModelBundle(model_dir))],
            signature=build_signature(scorer, numeric_id=pd.api.types.is_numeric_dtype(raw[spec.id_column])),
            input_example=input_example,
            pip_requirements=_pip_requirements(),
        )
        digest = _seal(target, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported model to %s (digest %s)", output_dir, digest)
    return output_dir


def _seal(target: Path, output_dir: Path) -> str:
    """Write the manifest over every file of the model at ``target`` (MLmodel and the code
    included), check it, and move the model into ``output_dir``; return the model digest."""
    pin_mlmodel(target)
    digest = write_model_manifest(target)
    verify_model_dir(target, expect_digest=digest)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    target.replace(output_dir)
    return digest


def pin_mlmodel(model_dir: Path) -> None:
    """Take out of ``MLmodel`` what records when and where the model was written, so the same
    model gives the same bytes and the same digest on any run, machine or checkout.

    MLflow's ``save_model`` writes the time (``utc_time_created``), a random ``model_uuid``, the
    absolute path of the model's code and the temporary folder the files were copied from. The
    loader reads none of these: it joins the code's file name and the artifact's relative ``path``
    to the model folder. The uuid becomes one derived from the other files' contents; the time is
    left out (MLflow shows the load time for a model without one); when the model was trained is
    the MLflow run's and the registered version's record, outside the model.
    """
    path = model_dir / MLMODEL_FILE
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document.pop("utc_time_created", None)
    flavor = document["flavors"]["python_function"]
    if "model_code_path" in flavor:
        flavor["model_code_path"] = Path(flavor["model_code_path"]).name
    for entry in flavor.get("artifacts", {}).values():
        entry["uri"] = entry["path"]
    content = hashlib.sha256()
    for name in model_files(model_dir):
        if name != MLMODEL_FILE:
            content.update(f"{name} {hashlib.sha256((model_dir / name).read_bytes()).hexdigest()}\n".encode())
    document["model_uuid"] = uuid.UUID(bytes=content.digest()[:16], version=4).hex
    write_text(path, yaml.safe_dump(document, default_flow_style=False, sort_keys=True))


def register_model(
    run_id: str, artifact_path: str, name: str, digest: str, alias: str = CHAMPION_ALIAS
) -> str:
    """Register the run's logged model under ``name``, tag the version with the model digest,
    and point ``alias`` at it; a model whose digest a version of ``name`` already carries is not
    registered again: that version is returned (and the alias points at it).

    Returns the version. Uses the configured tracking store (the SQLite file by default). The
    tag is set before the alias moves, so a version the alias names always carries its digest.
    The digest covers every byte of the model and nothing of when it was trained
    (:func:`pin_mlmodel`), so retraining on the same data and params finds the same version.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    existing = registered_version(client, name, digest)
    if existing is not None:
        client.set_registered_model_alias(name, alias, existing)
        logger.info(
            "%s version %s already holds digest %s: not registered again; '%s' -> %s",
            name,
            existing,
            digest,
            alias,
            existing,
        )
        return existing
    version = mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name)
    client.set_model_version_tag(name, version.version, DIGEST_TAG, digest)
    client.set_registered_model_alias(name, alias, version.version)
    logger.info("registered %s version %s as '%s', digest %s", name, version.version, alias, digest)
    return str(version.version)


def registered_version(client: Any, name: str, digest: str) -> str | None:
    """The oldest version of registered model ``name`` tagged with ``digest``, or None (also when
    no model of that name is registered)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}' and tag.{DIGEST_TAG} = '{digest}'")
    except MlflowException:
        return None
    found = sorted(int(v.version) for v in versions if v.tags.get(DIGEST_TAG) == digest)
    return str(found[0]) if found else None


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
        # the fast exact TreeSHAP kernel of the reason codes (scoring.models.treeshap)
        "numba",
        "llvmlite",
    ]
    return [f"{n}=={version(n)}" for n in names]


BEHAVIOUR_MODEL_CODE = Path(__file__).parent / "collections" / "pyfunc_behaviour.py"


def behaviour_signature(scorer: BehaviourScorer) -> Any:
    """The behaviour model's signature: the account and month, every model input by name
    (categories as strings, numbers as Any: the scorer's own checks name a bad value), and the
    output columns with their types."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    from scoring.collections.scorer import KEY_COLUMNS
    from scoring.collections.scorer import OUTPUT_COLUMNS as BEHAVIOUR_OUTPUTS
    from scoring.collections.scorer import OUTPUT_TYPES as BEHAVIOUR_TYPES

    inputs = [ColSpec("string", name) for name in KEY_COLUMNS]
    for name in scorer.input_columns:
        if name in scorer.categorical_columns:
            inputs.append(ColSpec("string", name, required=False))
        else:
            inputs.append(ColSpec(AnyType(), name, required=False))  # type: ignore[no-untyped-call]
    outputs = Schema([ColSpec(BEHAVIOUR_TYPES[name], name) for name in BEHAVIOUR_OUTPUTS])
    return ModelSignature(inputs=Schema(inputs), outputs=outputs)  # type: ignore[arg-type]


def export_behaviour_model(scorer: BehaviourScorer, output_dir: str | Path, example: pd.DataFrame) -> Path:
    """Write the behaviour score as its own MLflow model (from code, no pickle) at ``output_dir``.

    The files directory is a model bundle: the champion's files, features, calibrator, reason
    coder, the collections settings and model info; the manifest at the model's root covers every
    file, code included. ``example``: account-month rows (snapshots); the first three are the
    input example, and all of them must score the same through the written files as through
    ``scorer``. Built beside the destination and moved into place.
    """
    import mlflow

    from scoring.collections.scorer import KEY_COLUMNS, BehaviourScorer

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-behaviour-", dir=output_dir.parent))
    try:
        files = staging / artifact.FILES_ARTIFACT
        scorer.save(files)
        loaded = BehaviourScorer.from_files(files)
        pd.testing.assert_frame_equal(scorer.score(example), loaded.score(example))
        columns = [*KEY_COLUMNS, *scorer.input_columns]
        input_example = example[columns].head(3).reset_index(drop=True)
        input_example["as_of_month"] = pd.to_datetime(input_example["as_of_month"]).dt.strftime("%Y-%m-%d")
        input_example["loan_id"] = input_example["loan_id"].astype(str)
        target = staging / "model"
        mlflow.pyfunc.save_model(
            path=target,
            python_model=str(BEHAVIOUR_MODEL_CODE),
            artifacts={artifact.FILES_ARTIFACT: str(files)},
            code_paths=[str(PACKAGE_DIR)],
            signature=behaviour_signature(scorer),
            input_example=_as_signature_types(input_example),
            pip_requirements=_pip_requirements(),
        )
        digest = _seal(target, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("exported the behaviour score to %s (digest %s)", output_dir, digest)
    return output_dir
