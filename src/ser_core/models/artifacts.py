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

from ser_core.atomic_files import atomic_write_bytes
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.classifier import Classifier
from ser_core.errors import ArtifactError
from ser_core.models.adaptation import Normalised, SourceStats
from ser_core.models.calibration import scale
from ser_core.plugins.lookup import classifier_kinds

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
    #: The second head, over vectors standardised by their source's statistics
    #: (`ser_core.models.adaptation`): {"training": "per-corpus", "corpora": [...], "classifier_params":
    #: {...}}, its arrays stored under `adapted.`; None: the model cannot adapt (older artifacts).
    source_norm: dict[str, Any] | None = None
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
_OPTIONAL = ("training_speakers", "calibration", "source_norm")
_ADAPTED = "adapted."


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
    """A fitted classifier with its metadata; `predict_proba` takes backend vectors. `adapted`: the
    head over vectors standardised by their source's statistics (None: cannot adapt)."""

    def __init__(
        self, meta: ModelMeta, classifier: Classifier, path: Path | None = None, adapted: Classifier | None = None
    ) -> None:
        self.meta = meta
        self.classifier = classifier
        self.path = path
        self.adapted = adapted

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def temperature(self) -> float:
        return _temperatures(self.meta)[0]

    def predict_proba(self, features: np.ndarray, source: SourceStats | None = None) -> np.ndarray:
        """Calibrated probabilities: the classifier's, temperature-scaled when the model says so.
        `source`: the statistics of the recordings' own source (`ser_core.training.extract.source_of`):
        the adapted head classifies the vectors standardised by them."""
        try:
            probabilities = Normalised(self.classifier, self.adapted).predict_proba(features, source)
        except ArtifactError as exc:
            raise ArtifactError(f"{self.path or 'model'}: {exc}") from None
        return scale(probabilities, _temperatures(self.meta)[source is not None])

    def check_source(self, source: SourceStats) -> None:
        """Fail closed on source statistics this model cannot adapt to (`analyze` asks before it
        reads any audio)."""
        source.check(self.meta.feature_dim, "source statistics")
        try:
            Normalised(self.classifier, self.adapted).check(source)
        except ArtifactError as exc:
            raise ArtifactError(f"{self.path or 'model'}: {exc}") from None

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
        if self.adapted is None:
            meta.source_norm = None  # saved without its adapted head
        else:
            adapted_params, adapted_arrays = self.adapted.state()
            meta.source_norm = {**(meta.source_norm or {}), "classifier_params": adapted_params}
            arrays.update({_ADAPTED + name: np.asarray(value) for name, value in adapted_arrays.items()})
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
    for temperature in _temperatures(meta):
        if not isinstance(temperature, int | float) or not math.isfinite(temperature) or temperature <= 0:
            raise ArtifactError(f"{target}: calibration temperature must be a positive number, got {temperature!r}")
    kinds = classifier_kinds()
    if meta.classifier not in kinds:
        raise ArtifactError(f"{target}: unknown classifier kind {meta.classifier!r}")
    adapted_arrays = {k.removeprefix(_ADAPTED): contents.pop(k) for k in list(contents) if k.startswith(_ADAPTED)}
    if (meta.source_norm is None) != (not adapted_arrays):
        raise ArtifactError(f"{target}: the adapted head's metadata and arrays do not match")
    heads = [(meta.classifier_params, contents)]
    if meta.source_norm is not None:
        heads.append((meta.source_norm.get("classifier_params", {}), adapted_arrays))
    fitted = []
    for params, arrays in heads:
        try:
            fitted.append(kinds[meta.classifier].from_state(params, arrays))
        except (KeyError, ValueError, TypeError) as exc:
            raise ArtifactError(
                f"{target}: classifier state is incomplete ({type(exc).__name__}: {exc})"
            ) from None
        except ArtifactError as exc:
            raise ArtifactError(f"{target}: {exc}") from None
        if fitted[-1].labels != meta.labels:
            raise ArtifactError(
                f"{target}: classifier labels {fitted[-1].labels} differ from metadata {meta.labels}"
            )
    return Model(meta, fitted[0], target, fitted[1] if len(fitted) > 1 else None)


def _temperatures(meta: ModelMeta) -> tuple[Any, Any]:
    """The temperatures of the plain and the adapted head (the plain one's when the adapted head
    has none of its own; 1.0 for uncalibrated artifacts)."""
    calibration = meta.calibration or {}
    plain = calibration.get("temperature", 1.0)
    return plain, (calibration.get("adapted") or {}).get("temperature", plain)
