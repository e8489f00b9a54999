"""Loading an exported model by path or by registry URI, its digest checked before any of its code runs.

``models:/name@alias`` (or ``models:/name/3``) is looked up in the configured MLflow registry
(``MLFLOW_TRACKING_URI``, the SQLite store by default); the version's ``model_digest`` tag,
written by the export stage, is the digest the downloaded files must have. A version without
the tag is refused. A directory is checked against its own manifest and, when one is given
(``--expect-digest`` or ``SCORING_MODEL_DIGEST``), against the expected digest.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.core.store import tracking_uri
from scoring.serving.integrity import (
    DIGEST_TAG,
    ModelIntegrityError,
    ModelReferenceError,
    VerifiedModel,
    expected_digest,
    strip_caches,
    verify_model_dir,
)

if TYPE_CHECKING:
    from scoring.serving.scorer import Scorer

logger = logging.getLogger(__name__)

REGISTRY_SCHEME = "models:/"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class RegistryReference:
    name: str
    alias: str | None
    version: str | None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def is_registry_uri(model: str | Path) -> bool:
    return str(model).startswith(REGISTRY_SCHEME)


def parse_registry_uri(uri: str) -> RegistryReference:
    found = _URI.match(uri)
    if found is None:
        raise ModelReferenceError(
            f"model URI {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>"
        )
    return RegistryReference(found["name"], found["alias"], found["version"])


def registered_digest(reference: RegistryReference) -> tuple[str, str]:
    """(version, digest tag) of the referenced registered model version."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri())
    try:
        if reference.alias is not None:
            found = client.get_model_version_by_alias(reference.name, reference.alias)
        else:
            found = client.get_model_version(reference.name, str(reference.version))
    except MlflowException as exc:
        raise ModelIntegrityError(f"{reference}: not in the model registry ({exc.message})") from None
    digest = (found.tags or {}).get(DIGEST_TAG)
    if not digest:
        raise ModelIntegrityError(
            f"{reference} (version {found.version}) has no '{DIGEST_TAG}' tag: its files cannot be "
            "checked, refusing to load (export the model again with the export stage)"
        )
    return str(found.version), str(digest)


def resolve_model(
    model: str | Path, expect_digest: str | None = None, download_dir: str | Path | None = None
) -> VerifiedModel:
    """A verified local model directory for a path or a ``models:/`` URI.

    For a URI, the version's files are downloaded (into ``download_dir``, or a new temporary
    folder) and must hash to the registry's digest tag; an ``expect_digest`` must then equal the
    tag as well. Bytecode caches are removed before the check, so only verified sources run.
    """
    pinned = expected_digest(expect_digest)
    if is_registry_uri(model):
        import mlflow

        reference = parse_registry_uri(str(model))
        version, digest = registered_digest(reference)
        if pinned is not None and pinned != digest:
            raise ModelIntegrityError(
                f"{reference} (version {version}) has digest {digest} in the registry, expected {pinned}; "
                "refusing to load"
            )
        target = Path(download_dir) if download_dir else Path(tempfile.mkdtemp(prefix="scoring-model-"))
        target.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(tracking_uri())
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{reference.name}/{version}", dst_path=str(target)
        )
        strip_caches(local)
        verified = verify_model_dir(local, expect_digest=digest)
        logger.info("loaded %s (version %s) from the registry, digest %s", reference, version, digest)
        return verified
    path = Path(model)
    if not (path / "MLmodel").is_file():
        raise FileNotFoundError(
            f"{path}: no MLmodel file; expected an exported model directory or a models:/ URI"
        )
    strip_caches(path)
    return verify_model_dir(path, expect_digest=pinned)


def load_verified_scorer(model: str | Path, expect_digest: str | None = None) -> tuple[Scorer, str]:
    """The scorer of a model verified by :func:`resolve_model`, and the model digest.

    The scorer reads every file into memory (JSON and UBJSON, never pickle), so a version
    downloaded from the registry is deleted again once the scorer is built.
    """
    from scoring.serving.artifact import files_dir, load_scorer

    if is_registry_uri(model):
        with tempfile.TemporaryDirectory(prefix="scoring-model-") as download:
            verified = resolve_model(model, expect_digest, download_dir=download)
            return load_scorer(files_dir(verified.path)), verified.digest
    verified = resolve_model(model, expect_digest)
    return load_scorer(files_dir(verified.path)), verified.digest


def load_verified_model(
    model: str | Path, expect_digest: str | None = None
) -> tuple[Scorer, dict[str, Any] | None, str]:
    """:func:`load_verified_scorer` plus the model's monitoring reference profile (None for a model
    exported without one), read from the same verified files."""
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.bundle import PROFILE_FILE, ModelBundle

    def read(path: Path) -> tuple[Scorer, dict[str, Any] | None]:
        files = files_dir(path)
        scorer = load_scorer(files)
        bundle = ModelBundle(files)
        profile = bundle.read(PROFILE_FILE) if bundle.has(PROFILE_FILE) else None
        return scorer, profile

    if is_registry_uri(model):
        with tempfile.TemporaryDirectory(prefix="scoring-model-") as download:
            verified = resolve_model(model, expect_digest, download_dir=download)
            return (*read(verified.path), verified.digest)
    verified = resolve_model(model, expect_digest)
    return (*read(verified.path), verified.digest)
