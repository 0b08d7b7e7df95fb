"""Model artifacts: one `.npz` file of plain arrays plus a JSON metadata record, no pickle.

The metadata names the profile, backend, backend model, feature dimension, labels, classifier,
training data and metrics, and a sha256 over all of it and every array. Loading verifies the
checksum and refuses anything that does not match what it is used with (fail closed).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import tokenize
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from ser_core.backend import EmbeddingBackend
from ser_core.calibration import scale
from ser_core.classifier import Classifier, classifier_kinds
from ser_core.errors import ArtifactError
from ser_core.io import atomic_write_bytes

FORMAT = "ser-core-model"
FORMAT_VERSION = 1
_META_KEY = "__meta__"
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024


class ModelMeta(BaseModel):
    """Everything needed to check that a model is used with the features it was trained on."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    profile: str
    backend_id: str
    backend_model_id: str
    backend_config: dict[str, Any] = Field(default_factory=dict)
    feature_dim: int
    labels: list[str]
    classifier: str
    classifier_params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    #: Every speaker the classifier was fitted on ("<corpus>:<id>", as `Item.speaker`), so scoring
    #: data that overlaps them can be flagged; None for artifacts that predate the field (unknown).
    training_speakers: list[str] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    #: How the classifier's probabilities are calibrated: {"method": "temperature", "temperature": T,
    #: "fit_on": ..., ...}; None: used as the classifier gives them (older artifacts).
    calibration: dict[str, Any] | None = None
    ser_core_version: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    sha256: str = ""

    @classmethod
    def for_backend(cls, profile: str, backend: Any, labels: list[str], **extra: Any) -> ModelMeta:
        """Metadata of a model over `backend`'s vectors (the classifier kind is filled in on save)."""
        from ser_core import __version__

        return cls(
            profile=profile,
            backend_id=backend.backend_id,
            backend_model_id=backend.model_id,
            backend_config=backend.config(),
            feature_dim=backend.dim,
            labels=labels,
            classifier="",
            ser_core_version=__version__,
            **extra,
        )


#: Metadata fields added after format v1: part of the digest only when set.
_OPTIONAL = ("training_speakers", "calibration")


def _digest(meta: ModelMeta, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    # Optional fields added after format v1 enter the digest only when set, so older artifacts
    # (which lack them) keep verifying.
    exclude = {"sha256"} | {key for key in _OPTIONAL if getattr(meta, key) is None}
    h.update(json.dumps(meta.model_dump(exclude=exclude), sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


class Model:
    """A fitted classifier with its metadata; `predict_proba` takes backend vectors."""

    def __init__(self, meta: ModelMeta, classifier: Classifier, path: Path | None = None) -> None:
        self.meta = meta
        self.classifier = classifier
        self.path = path

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def temperature(self) -> float:
        return float((self.meta.calibration or {}).get("temperature", 1.0))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: the classifier's, temperature-scaled when the model says so."""
        return scale(self.classifier.predict_proba(features), self.temperature)

    def check_backend(self, backend: EmbeddingBackend, profile: str | None = None) -> None:
        """Fail closed unless `backend` produces exactly the features this model was trained on."""
        where = str(self.path) if self.path else "model"
        meta = self.meta
        if profile is not None and profile != meta.profile:
            raise ArtifactError(f"{where}: trained for profile {meta.profile!r}, not {profile!r}")
        checks = [
            ("backend", meta.backend_id, backend.backend_id),
            ("backend model", meta.backend_model_id, backend.model_id),
            ("feature dimension", meta.feature_dim, backend.dim),
            ("backend settings", meta.backend_config, json.loads(json.dumps(backend.config()))),
        ]
        for what, expected, actual in checks:
            if expected != actual:
                raise ArtifactError(
                    f"{where}: {what} mismatch: model has {expected!r}, backend has {actual!r}"
                )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the artifact atomically; returns its path."""
        params, arrays = self.classifier.state()
        meta = self.meta.model_copy(update={"classifier": self.classifier.kind, "classifier_params": params})
        arrays = {name: np.asarray(value) for name, value in arrays.items()}
        meta.sha256 = _digest(meta, arrays)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, **arrays, **{_META_KEY: np.frombuffer(meta.model_dump_json().encode(), dtype=np.uint8)}
        )
        target = Path(path)
        atomic_write_bytes(target, buffer.getvalue())
        self.meta, self.path = meta, target
        return target


#: What a damaged or forged archive can make zipfile, zlib and numpy's header parser raise.
_READ_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    EOFError,
    KeyError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    OverflowError,
    zipfile.BadZipFile,
    zlib.error,
    tokenize.TokenError,  # numpy's fallback parser of a malformed .npy header (found by atheris)
)


def _read_arrays(target: Path) -> dict[str, np.ndarray]:
    """The archive's `.npy` members as arrays, no pickle. Every size is checked before anything is
    unpacked: the members' declared sizes against `MAX_ARTIFACT_BYTES` (zip bombs), and each array
    header's shape against its member's size (a forged shape would otherwise be allocated)."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(target) as archive:
        members = archive.infolist()
        unpacked = sum(member.file_size for member in members)
        if unpacked > MAX_ARTIFACT_BYTES:
            raise ValueError(f"implausibly large when unpacked ({unpacked} bytes)")
        for member in members:
            name = member.filename.removesuffix(".npy")
            if name == member.filename or name in arrays:
                raise ValueError(f"unexpected member {member.filename!r}")
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"{member.filename}: unsupported .npy version {version}")
                if dtype.hasobject:
                    raise ValueError(f"{member.filename}: object arrays are not allowed")
                declared = math.prod(shape) * dtype.itemsize
                if declared != member.file_size - handle.tell():
                    raise ValueError(f"{member.filename}: array header does not match its size")
            with archive.open(member) as handle:
                arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
    return arrays


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load and verify an artifact; any problem is an `ArtifactError` naming the file and the cause."""
    target = Path(path)
    try:
        info = target.stat()
    except OSError as exc:
        raise ArtifactError(f"{target}: cannot read model ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ArtifactError(f"{target}: not a ser_core model (not a regular file)")
    if info.st_size > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"{target}: model file is implausibly large ({info.st_size} bytes)")
    try:
        contents = _read_arrays(target)
    except _READ_ERRORS as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the parser said
        raise ArtifactError(f"{target}: not a ser_core model ({type(exc).__name__}: {reason})") from None
    raw = contents.pop(_META_KEY, None)
    if raw is None or raw.dtype != np.uint8:
        raise ArtifactError(f"{target}: not a ser_core model (no metadata record)")
    try:
        meta = ModelMeta.model_validate_json(raw.tobytes())
    except ValidationError as exc:
        raise ArtifactError(f"{target}: malformed model metadata ({exc.error_count()} errors)") from None
    if meta.format != FORMAT or meta.format_version != FORMAT_VERSION:
        raise ArtifactError(f"{target}: unsupported model format {meta.format} v{meta.format_version}")
    if _digest(meta, contents) != meta.sha256:
        raise ArtifactError(f"{target}: checksum mismatch (the file was modified or corrupted)")
    temperature = (meta.calibration or {}).get("temperature", 1.0)
    if not isinstance(temperature, int | float) or not math.isfinite(temperature) or temperature <= 0:
        raise ArtifactError(f"{target}: calibration temperature must be a positive number, got {temperature!r}")
    kinds = classifier_kinds()
    if meta.classifier not in kinds:
        raise ArtifactError(f"{target}: unknown classifier kind {meta.classifier!r}")
    try:
        classifier = kinds[meta.classifier].from_state(meta.classifier_params, contents)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(
            f"{target}: classifier state is incomplete ({type(exc).__name__}: {exc})"
        ) from None
    except ArtifactError as exc:
        raise ArtifactError(f"{target}: {exc}") from None
    if classifier.labels != meta.labels:
        raise ArtifactError(
            f"{target}: classifier labels {classifier.labels} differ from metadata {meta.labels}"
        )
    return Model(meta, classifier, target)
