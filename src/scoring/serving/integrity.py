"""Integrity of a whole exported model directory: one manifest, one digest.

The MLflow model directory that export writes (``models/pd_model``) holds the code that runs
at load (``pyfunc_model.py``, ``code/scoring/...``), ``MLmodel``, the environment files and
the model files. ``manifest.json`` at its root lists the SHA-256 of every one of them, and the
SHA-256 of the manifest's own bytes is the **model digest**: change any byte of any file, add
or remove a file, and either the manifest no longer matches the files or the digest changes.

A manifest alone only catches accidents (whoever can write the folder can rewrite it); the
digest, kept where the folder's writer cannot change it (a tag on the registered model
version, the export stage's DVC metrics, a deployment's configuration), is what catches a
deliberate change. :func:`verify_model_dir` checks both: the files against the manifest, and
the manifest against an expected digest when one is given.

Two kinds of file are not part of the model and are allowed beside it: ``registered_model_meta``,
which MLflow writes into a registered version when it downloads it, and Python's bytecode
caches (``__pycache__``), which the interpreter writes when the model's code is imported.
:func:`strip_caches` removes the caches before a verified load, so no bytecode that the
manifest did not see can run in place of the sources it did.

This module reads files only (no MLflow); :mod:`scoring.serving.registry` resolves
``models:/name@alias`` and checks the registry's digest tag.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.core.io import write_text

logger = logging.getLogger(__name__)

MODEL_MANIFEST_FILE = "manifest.json"
MODEL_MANIFEST_FORMAT = 1
DIGEST_ALGORITHM = "sha256"
DIGEST_TAG = "model_digest"
"""Tag on the registered model version (and the export run) holding the model digest."""
DIGEST_ENV = "SCORING_MODEL_DIGEST"
"""Environment variable that pins the digest for loads from a directory."""

# Written next to the model by others, never read by the scorer.
MLFLOW_DOWNLOAD_FILES = frozenset({"registered_model_meta"})
CACHE_DIR = "__pycache__"


class ModelIntegrityError(RuntimeError):
    """The model directory does not match its manifest, or its digest is not the expected one."""


class ModelReferenceError(ValueError):
    """A model reference (registry URI, expected digest) that is not well formed."""


@dataclass(frozen=True)
class VerifiedModel:
    """A model directory whose files matched its manifest, and the manifest's digest."""

    path: Path
    digest: str


def _is_cache(relative: Path) -> bool:
    return CACHE_DIR in relative.parts


def model_files(model_dir: str | Path) -> list[str]:
    """Every file of the model (relative posix paths): all files under the directory except the
    manifest, MLflow's download record and bytecode caches."""
    root = Path(model_dir)
    names = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_dir() or _is_cache(relative):
            continue
        name = relative.as_posix()
        if name == MODEL_MANIFEST_FILE or name in MLFLOW_DOWNLOAD_FILES:
            continue
        names.append(name)
    return sorted(names)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_bytes(model_dir: str | Path) -> bytes:
    """The manifest document for the directory as it is now (canonical JSON, sorted keys)."""
    root = Path(model_dir)
    document = {
        "format": MODEL_MANIFEST_FORMAT,
        "algorithm": DIGEST_ALGORITHM,
        "files": {name: _sha256(root / name) for name in model_files(root)},
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_model_manifest(model_dir: str | Path) -> str:
    """Write ``manifest.json`` over every file of the model; return the model digest."""
    root = Path(model_dir)
    strip_caches(root)
    content = manifest_bytes(root)
    write_text(root / MODEL_MANIFEST_FILE, content.decode("utf-8"))
    return hashlib.sha256(content).hexdigest()


def model_digest(model_dir: str | Path) -> str:
    """SHA-256 of the directory's manifest file (not checked against the files: see
    :func:`verify_model_dir`)."""
    path = Path(model_dir) / MODEL_MANIFEST_FILE
    if not path.is_file():
        raise ModelIntegrityError(
            f"{model_dir}: no {MODEL_MANIFEST_FILE}; expected an exported model directory"
        )
    return _sha256(path)


def strip_caches(model_dir: str | Path) -> None:
    """Remove bytecode caches under the model directory (they are rebuilt from the verified sources)."""
    for cache in sorted(Path(model_dir).rglob(CACHE_DIR), reverse=True):
        if cache.is_dir():
            shutil.rmtree(cache, ignore_errors=True)


def expected_digest(explicit: str | None = None) -> str | None:
    """The digest to pin: ``explicit`` if given, else the ``SCORING_MODEL_DIGEST`` environment
    variable, else None (the files are checked against the manifest only)."""
    value = explicit if explicit is not None else os.environ.get(DIGEST_ENV)
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ModelReferenceError(
            f"expected model digest {value!r} is not a SHA-256 (expected 64 hexadecimal characters)"
        )
    return value


def verify_model_dir(model_dir: str | Path, expect_digest: str | None = None) -> VerifiedModel:
    """Check every file against the manifest and, given ``expect_digest``, the manifest against it.

    Raises :class:`ModelIntegrityError` naming the file (changed, missing, not listed) or the
    digests (the manifest's and the expected one).
    """
    root = Path(model_dir)
    manifest_path = root / MODEL_MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelIntegrityError(
            f"{root}: no {MODEL_MANIFEST_FILE}; expected an exported model directory with its manifest"
        )
    digest = _sha256(manifest_path)
    if expect_digest is not None and digest != expect_digest:
        raise ModelIntegrityError(
            f"{root}: model digest {digest} (SHA-256 of {MODEL_MANIFEST_FILE}), expected {expect_digest}; "
            "the manifest was rewritten or this is another model; refusing to load"
        )
    try:
        document: Any = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed: dict[str, str] = dict(document["files"])
        fmt = document["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(
            f"{manifest_path}: not a model manifest ({exc}); refusing to load"
        ) from None
    if fmt != MODEL_MANIFEST_FORMAT:
        raise ModelIntegrityError(
            f"{manifest_path}: manifest format {fmt!r}, expected {MODEL_MANIFEST_FORMAT}; refusing to load"
        )
    for name, recorded in sorted(listed.items()):
        path = root / name
        if not path.is_file():
            raise ModelIntegrityError(f"model file '{name}' is missing from {root}; refusing to load")
        actual = _sha256(path)
        if actual != recorded:
            raise ModelIntegrityError(
                f"model file '{name}' was modified: SHA-256 {actual[:12]}..., the manifest says "
                f"{recorded[:12]}...; refusing to load"
            )
    unlisted = [name for name in model_files(root) if name not in listed]
    if unlisted:
        raise ModelIntegrityError(
            f"files {unlisted} in {root} are not in the model's manifest; refusing to load"
        )
    logger.info("model %s verified: %d files, digest %s", root, len(listed), digest)
    return VerifiedModel(root, digest)
