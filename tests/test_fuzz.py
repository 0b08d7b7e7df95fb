"""Fuzzing the loaders of untrusted files: `load_audio` and `load_model`.

Property: whatever the bytes, the only exception that escapes is the library's own (`AudioError`,
`ArtifactError`), its message is one line starting with the file's path, and a forged header is
checked before anything it declares is allocated. The hypothesis runs are derandomized and keep no
example database, so every run tries the same inputs; `scripts/fuzz_*.py` (atheris, `nox -s fuzz`)
search much longer, guided by coverage.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ser_core.errors import ArtifactError, AudioError
from ser_core.models import artifacts
from ser_core.models.artifacts import Model, ModelMeta, load_model
from ser_core.models.classifiers import ShrinkageLDAClassifier
from ser_core.pipeline.audio import load_audio

FUZZ = settings(
    max_examples=int(os.environ.get("SER_FUZZ_EXAMPLES", "150")),  # raise it for a longer local run
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Extensions libsndfile owns: the loader sniffs the content, so any bytes go under any of them.
SOUNDFILE_EXTS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64")
MAX_SECONDS = 30.0
HOURS = 20 * 3600


def sine(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, -0.5 * mono], axis=1)


def encode(fmt: str, rate: int = 16000, seconds: float = 0.5, channels: int = 1, **kwargs: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, sine(rate, seconds, channels), rate, format=fmt, **kwargs)
    return buffer.getvalue()


@cache
def seeds() -> dict[str, bytes]:
    """Small valid files to mutate: WAV (int16 mono, float stereo), FLAC, Ogg Vorbis, AIFF; the same
    bytes on every run (libsndfile stamps float WAVs with the time and Ogg streams with a random
    serial number)."""
    wav_float = bytearray(encode("WAV", rate=8000, channels=2, subtype="FLOAT"))
    peak = wav_float.find(b"PEAK")
    wav_float[peak + 12 : peak + 16] = bytes(4)  # the PEAK chunk's timestamp

    def serial(page: bytearray, start: int, last: bool) -> None:
        page[start + 14 : start + 18] = b"SER1"

    return {
        "wav": encode("WAV", subtype="PCM_16"),
        "wav_float_stereo": bytes(wav_float),
        "flac": encode("FLAC", rate=22050),
        "ogg": ogg_edit(encode("OGG", seconds=1.0), serial),
        "aiff": encode("AIFF", rate=11025, subtype="PCM_16"),
    }


# --- forging header fields ------------------------------------------------------------------------------


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def ogg_edit(data: bytes, edit: Callable[[bytearray, int, bool], None]) -> bytes:
    """The Ogg stream with `edit(stream, page start, is last page)` applied to every page, and every
    page's CRC recomputed."""
    out = bytearray(data)
    pages, start = [], 0
    while start < len(out):
        assert out[start : start + 4] == b"OggS"
        segments = out[start + 26]
        pages.append((start, start + 27 + segments + sum(out[start + 27 : start + 27 + segments])))
        start = pages[-1][1]
    for number, (start, end) in enumerate(pages):
        edit(out, start, number == len(pages) - 1)
        out[start + 22 : start + 26] = bytes(4)
        crc = 0
        for byte in out[start:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ byte]
        out[start + 22 : start + 26] = struct.pack("<I", crc)
    return bytes(out)


def ogg_with_granule(data: bytes, granule: int) -> bytes:
    """The Ogg stream with its last page's granule position (the stream length) set."""

    def forge(page: bytearray, start: int, last: bool) -> None:
        if last:
            page[start + 6 : start + 14] = struct.pack("<q", granule)

    return ogg_edit(data, forge)


def flac_with_streaminfo(data: bytes, **fields: int) -> bytes:
    """The FLAC stream with STREAMINFO's rate, channels, bits or total samples replaced."""
    out = bytearray(data)
    assert out[:4] == b"fLaC"
    packed = int.from_bytes(out[18:26], "big")
    values = {
        "rate": packed >> 44,
        "channels": ((packed >> 41) & 7) + 1,
        "bits": ((packed >> 36) & 31) + 1,
        "total": packed & ((1 << 36) - 1),
    }
    values.update(fields)
    packed = (
        (values["rate"] & 0xFFFFF) << 44
        | ((values["channels"] - 1) & 7) << 41
        | ((values["bits"] - 1) & 31) << 36
        | (values["total"] & ((1 << 36) - 1))
    )
    out[18:26] = packed.to_bytes(8, "big")
    return bytes(out)


#: (offset, struct format) of the WAV header's size, rate and layout fields.
WAV_FIELDS = {
    "riff_size": (4, "<I"),
    "channels": (22, "<H"),
    "rate": (24, "<I"),
    "byte_rate": (28, "<I"),
    "block_align": (32, "<H"),
    "bits": (34, "<H"),
    "data_size": (40, "<I"),
}


def wav_with(data: bytes, field: str, value: int) -> bytes:
    offset, fmt = WAV_FIELDS[field]
    out = bytearray(data)
    assert out[:4] == b"RIFF" and out[12:16] == b"fmt "
    if field == "data_size":  # after the fmt chunk, and a fact chunk for float data
        offset = out.find(b"data", 36) + 4
    out[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value % (1 << (8 * struct.calcsize(fmt))))
    return bytes(out)


INTERESTING = st.one_of(
    st.sampled_from([0, 1, 2, 7, 255, 256, 1000, 65535, 2**31 - 1, 2**31, 2**32 - 1, 2**36 - 1]),
    st.integers(0, 2**36 - 1),
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A seed file with a forged header field, bit flips, overwritten bytes and/or a truncation."""
    name = draw(st.sampled_from(sorted(seeds())))
    data = seeds()[name]
    if name.startswith("wav") and draw(st.booleans()):
        data = wav_with(data, draw(st.sampled_from(sorted(WAV_FIELDS))), draw(INTERESTING))
    elif name == "flac" and draw(st.booleans()):
        field = draw(st.sampled_from(["rate", "channels", "bits", "total"]))
        data = flac_with_streaminfo(data, **{field: draw(INTERESTING)})
    elif name == "ogg" and draw(st.booleans()):
        data = ogg_with_granule(data, draw(st.one_of(INTERESTING, st.integers(-(2**63), 2**63 - 1))))
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(out) - 1))
        if draw(st.booleans()):
            out[position] ^= 1 << draw(st.integers(0, 7))
        else:
            out[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        out = out[: draw(st.integers(1, len(out)))]
    return name, bytes(out)


# --- the audio property ---------------------------------------------------------------------------------


def check_audio(path: Path, max_seconds: float = MAX_SECONDS) -> np.ndarray | None:
    """Decoded audio that is sane, or None after a one-line AudioError naming `path`; anything else
    (another exception type, a multi-line message) fails the test."""
    try:
        signal = load_audio(path, max_seconds=max_seconds)
    except AudioError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message and "\r" not in message, message
        return None
    assert signal.dtype == np.float32 and signal.ndim == 1 and signal.size > 0
    assert signal.size <= (max_seconds + 0.1) * 16000
    assert np.isfinite(signal).all()
    return signal


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096), ext=st.sampled_from(SOUNDFILE_EXTS))
def test_random_bytes_under_each_extension(tmp_path: Path, data: bytes, ext: str) -> None:
    path = tmp_path / f"random{ext}"
    path.write_bytes(data)
    check_audio(path)


@FUZZ
@given(case=mutated(), ext=st.sampled_from(SOUNDFILE_EXTS))
def test_mutated_valid_files_under_each_extension(tmp_path: Path, case: tuple[str, bytes], ext: str) -> None:
    path = tmp_path / f"mutated{ext}"
    path.write_bytes(case[1])
    check_audio(path)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
@settings(FUZZ, max_examples=max(12, FUZZ.max_examples // 12))
@given(case=mutated(), ext=st.sampled_from([".mp3", ".m4a", ".bin"]))
def test_mutated_files_through_ffmpeg(tmp_path: Path, case: tuple[str, bytes], ext: str) -> None:
    path = tmp_path / f"mutated{ext}"
    path.write_bytes(case[1])
    check_audio(path)


def test_seeds_and_forgers_are_valid(tmp_path: Path) -> None:
    """The fuzzers start from files that decode, and a no-op forgery keeps them decodable."""
    for name, data in seeds().items():
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        assert check_audio(path) is not None, name
    ogg = seeds()["ogg"]
    last = ogg.rfind(b"OggS")
    granule = struct.unpack("<q", ogg[last + 6 : last + 14])[0]
    assert ogg_with_granule(ogg, granule) == ogg  # the CRC is recomputed correctly
    flac = seeds()["flac"]
    assert flac_with_streaminfo(flac) == flac


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: flac_with_streaminfo(seeds()["flac"], total=HOURS * 22050), id="flac-total"),
        pytest.param(lambda: flac_with_streaminfo(seeds()["flac"], total=2**36 - 1), id="flac-total-max"),
    ],
)
def test_header_claiming_hours_fails_fast_with_the_length_limit(tmp_path: Path, forge) -> None:
    path = tmp_path / "forged.bin"
    path.write_bytes(forge())
    with pytest.raises(AudioError, match="too long") as info:
        load_audio(path)  # the default limit (4 h)
    assert str(info.value).startswith(f"{path}: ") and "SER_MAX_AUDIO_SECONDS" in str(info.value)


def test_ogg_granule_claiming_hours_reads_only_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "forged.ogg"
    path.write_bytes(ogg_with_granule(seeds()["ogg"], HOURS * 16000))
    assert check_audio(path, max_seconds=4 * 3600).size <= 1.05 * 16000  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["riff_size", "data_size"])
def test_wav_sizes_claiming_hours_read_only_what_is_there(tmp_path: Path, field: str) -> None:
    path = tmp_path / "forged.wav"
    path.write_bytes(wav_with(seeds()["wav"], field, 2**32 - 1))
    np.testing.assert_allclose(load_audio(path), sine(16000, 0.5), atol=1e-4)


def test_flac_of_unknown_length_is_read_and_the_limit_enforced_while_decoding(tmp_path: Path) -> None:
    # A FLAC written to a pipe (ffmpeg ... -f flac -) says 0 samples: "unknown". It used to be
    # refused as "too long (576460752303423.5 s)", and then failed on a seek libsndfile cannot do.
    path = tmp_path / "streamed.flac"
    path.write_bytes(flac_with_streaminfo(encode("FLAC", seconds=2.0), total=0))
    assert sf.info(path).frames == 2**63 - 1
    np.testing.assert_allclose(load_audio(path), sine(16000, 2.0), atol=1e-4)
    with pytest.raises(AudioError, match="too long") as info:
        load_audio(path, max_seconds=1.0)
    assert str(info.value).startswith(f"{path}: ")


# --- artifacts ------------------------------------------------------------------------------------------

LABELS = ["angry", "happy", "sad"]
DIM = 6


@cache
def seed_model() -> bytes:
    """The artifact bytes of a real model (shrinkage LDA fitted on separable random features)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, DIM)) + np.repeat(np.eye(3, DIM) * 3, 10, axis=0)
    classifier = ShrinkageLDAClassifier().fit(x, [label for label in LABELS for _ in range(10)])
    meta = ModelMeta(
        profile="fast",
        backend_id="handcrafted",
        backend_model_id="fuzz",
        feature_dim=DIM,
        labels=LABELS,
        classifier="",
        ser_core_version="0",
        created_at="2026-01-01T00:00:00+00:00",
    )
    with tempfile.TemporaryDirectory() as folder:
        saved = Model(meta, classifier).save(Path(folder) / "seed.npz").read_bytes()
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:  # the same bytes on every run: no zip dates
        return npz({info.filename: archive.read(info) for info in archive.infolist()})


def unpack(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """An artifact's metadata record and arrays."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("__meta__").tobytes()), arrays


def pack(meta: dict, arrays: dict[str, np.ndarray], reseal: bool = True) -> bytes:
    """An artifact from a metadata record and arrays; `reseal`: with the checksum recomputed, as a
    forger would (it is a checksum, not a signature), whenever the record still validates."""
    if reseal:
        with contextlib.suppress(ValueError, TypeError):
            meta = {**meta, "sha256": artifacts._digest(ModelMeta.model_validate(meta), arrays)}
    members = {f"{name}.npy": npy(array) for name, array in arrays.items()}
    members["__meta__.npy"] = npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return npz(members)


def npz(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, raw in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), raw, method)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...] | str) -> bytes:
    """A version 1.0 .npy header declaring `shape`, with no data after it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    text = text.ljust(64 * ((len(text) + 10 + 64) // 64) - 10) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def check_model(path: Path) -> Model | None:
    """A loaded model that is consistent, or None after a one-line ArtifactError naming `path`."""
    try:
        model = load_model(path)
    except ArtifactError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message and "\r" not in message, message
        return None
    assert model.classifier.labels == model.labels
    probabilities = model.predict_proba(np.zeros((2, model.classifier.coef.shape[1])))
    assert probabilities.shape == (2, len(model.labels))
    return model


@FUZZ
@given(data=st.binary(max_size=2048), zip_magic=st.booleans())
def test_random_bytes_as_artifact(tmp_path: Path, data: bytes, zip_magic: bool) -> None:
    path = tmp_path / "random.npz"
    path.write_bytes(b"PK\x03\x04" + data if zip_magic else data)
    assert check_model(path) is None


@FUZZ
@given(data=st.data())
def test_mutated_artifact_bytes(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(seed_model())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "mutated.npz"
    path.write_bytes(bytes(raw))
    model = check_model(path)
    if model is not None:  # a flip the checksum does not cover (a zip timestamp, say): same model
        x = np.random.default_rng(1).standard_normal((4, DIM))
        reference = tmp_path / "seed.npz"
        reference.write_bytes(seed_model())
        np.testing.assert_array_equal(model.predict_proba(x), load_model(reference).predict_proba(x))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(data=st.data())
def test_forged_metadata(tmp_path: Path, data: st.DataObject) -> None:
    meta, arrays = unpack(seed_model())
    fields = sorted(meta)
    for field in data.draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
        choice = data.draw(st.sampled_from(["value", "delete", "labels", "kind", "params"]))
        if choice == "delete":
            meta.pop(field)
        elif choice == "labels":
            meta["labels"] = data.draw(st.lists(st.text(max_size=6), max_size=4))
        elif choice == "kind":
            meta["classifier"] = data.draw(st.sampled_from(["logistic", "shrinkage_lda", "", "pickle"]))
        elif choice == "params":
            meta["classifier_params"] = data.draw(
                st.dictionaries(
                    st.sampled_from(["labels", "shrinkage", "covariance", "c", "max_iter", "x"]),
                    JSON,
                    max_size=3,
                )
            )
        else:
            meta[field] = data.draw(JSON)
    path = tmp_path / "forged.npz"
    path.write_bytes(pack(meta, arrays, reseal=data.draw(st.booleans())))
    check_model(path)


DTYPES = st.one_of(
    hnp.floating_dtypes(),
    hnp.integer_dtypes(),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=4),
    hnp.byte_string_dtypes(max_len=4),
)


@FUZZ
@given(data=st.data())
def test_forged_arrays(tmp_path: Path, data: st.DataObject) -> None:
    meta, arrays = unpack(seed_model())
    for name in data.draw(st.lists(st.sampled_from([*sorted(arrays), "extra"]), min_size=1, max_size=3)):
        if data.draw(st.integers(0, 4)) == 0:
            arrays.pop(name, None)
            continue
        shape = data.draw(
            st.one_of(
                st.just(arrays.get(name, np.zeros(1)).shape),
                hnp.array_shapes(min_dims=0, max_dims=3, max_side=7),
            )
        )
        arrays[name] = data.draw(hnp.arrays(DTYPES, shape))
    path = tmp_path / "forged.npz"
    path.write_bytes(pack(meta, arrays))
    check_model(path)


# --- deterministic forgeries ----------------------------------------------------------------------------


def _forged_zip_size(raw: bytes, member: str, size: int) -> bytes:
    """The archive with `member`'s declared uncompressed size set (local header and directory)."""
    out = bytearray(raw)
    name = member.encode()
    local = out.find(b"PK\x03\x04")
    while local != -1:
        length = struct.unpack("<H", out[local + 26 : local + 28])[0]
        if out[local + 30 : local + 30 + length] == name:
            out[local + 22 : local + 26] = struct.pack("<I", size)
        local = out.find(b"PK\x03\x04", local + 4)
    central = out.find(b"PK\x01\x02")
    while central != -1:
        length = struct.unpack("<H", out[central + 28 : central + 30])[0]
        if out[central + 46 : central + 46 + length] == name:
            out[central + 24 : central + 28] = struct.pack("<I", size)
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def _deterministic_forgeries() -> dict[str, tuple[bytes, str]]:
    meta, arrays = unpack(seed_model())
    raw = pack(meta, arrays)
    sealed = {f"{name}.npy": npy(array) for name, array in arrays.items()}
    sealed["__meta__.npy"] = npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return {
        "huge-shape": (
            npz({**sealed, "coef.npy": npy_header("<f8", (10**12, 6))}),
            "array header does not match",
        ),
        "shape-beyond-data": (
            npz({**sealed, "coef.npy": npy_header("<f8", (50_000_000,)) + bytes(64)}),
            "array header does not match",
        ),
        "huge-meta": (
            npz({**sealed, "__meta__.npy": npy_header("|u1", (2**40,))}),
            "array header does not match",
        ),
        "declared-2GB": (_forged_zip_size(raw, "coef.npy", 2**31 - 1), "implausibly large when unpacked"),
        "object-array": (
            npz({**sealed, "coef.npy": npy(np.array([{"a": 1}], dtype=object))}),
            "object arrays",
        ),
        "not-npy-member": (npz({**sealed, "notes.txt": b"hello"}), "unexpected member"),
        "raw-bytes-member": (npz({**sealed, "coef.npy": b"hello"}), "not a ser_core model"),
        "npy-version-3": (
            npz({**sealed, "coef.npy": b"\x93NUMPY\x03\x00" + sealed["coef.npy"][8:]}),
            "unsupported .npy version",
        ),
        "unbalanced-header": (  # numpy's fallback header parser raises tokenize.TokenError
            npz({**sealed, "coef.npy": npy_header("<f8", "(3, ") + bytes(24)}),
            "TokenError",
        ),
        "no-meta": (npz({k: v for k, v in sealed.items() if k != "__meta__.npy"}), "no metadata record"),
        "meta-floats": (npz({**sealed, "__meta__.npy": npy(np.zeros(4))}), "no metadata record"),
        "stored-ok": (npz(sealed, zipfile.ZIP_STORED), ""),
        "lzma-ok": (npz(sealed, zipfile.ZIP_LZMA), ""),
        "nan-coef": (
            pack(meta, {**arrays, "coef": np.full_like(arrays["coef"], np.nan)}),
            "finite floating-point",
        ),
        "int-coef": (
            pack(meta, {**arrays, "coef": arrays["coef"].astype(np.int64)}),
            "finite floating-point",
        ),
        "text-mean": (pack(meta, {**arrays, "mean": arrays["mean"].astype("U8")}), "finite floating-point"),
        "zero-scale": (
            pack(meta, {**arrays, "scale": np.zeros_like(arrays["scale"])}),
            "scales must be positive",
        ),
    }


FORGERIES = (
    "huge-shape",
    "shape-beyond-data",
    "huge-meta",
    "declared-2GB",
    "object-array",
    "not-npy-member",
    "raw-bytes-member",
    "npy-version-3",
    "unbalanced-header",
    "no-meta",
    "meta-floats",
    "stored-ok",
    "lzma-ok",
    "nan-coef",
    "int-coef",
    "text-mean",
    "zero-scale",
)


@pytest.mark.parametrize("case", FORGERIES)
def test_forged_archives(tmp_path: Path, case: str) -> None:
    raw, cause = _deterministic_forgeries()[case]
    path = tmp_path / f"{case}.npz"
    path.write_bytes(raw)
    if not cause:
        assert check_model(path) is not None
        return
    with pytest.raises(ArtifactError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and cause in message and "\n" not in message, message


def test_zip_bomb_refused_before_unpacking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta, arrays = unpack(seed_model())
    raw = pack(meta, {**arrays, "padding": np.zeros(2_000_000, np.uint8)})  # 2 MB of zeros, ~2 kB zipped
    path = tmp_path / "bomb.npz"
    path.write_bytes(raw)
    assert path.stat().st_size < 20_000
    monkeypatch.setattr(artifacts, "MAX_ARTIFACT_BYTES", 1_000_000)
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, name: object, *args: object, **kwargs: object) -> object:
        opened.append(str(name))
        return real_open(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    with pytest.raises(ArtifactError, match="implausibly large when unpacked"):
        load_model(path)
    assert opened == [], "no member may be unpacked before the sizes are checked"


# --- bounded memory -------------------------------------------------------------------------------------

_CAPPED = """
import re, resource, sys
from ser_core.models.artifacts import load_model
from ser_core.pipeline.audio import load_audio
from ser_core.errors import SerError

load_model(sys.argv[2]); load_audio(sys.argv[3])  # warm up: imports, plugins
vm = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
cap = vm + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
for path in sys.argv[4:]:
    try:
        out = (load_model if path.endswith(".npz") else load_audio)(path)
        print("ok", path, getattr(out, "size", ""), flush=True)
    except SerError as exc:
        print("error", exc, flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_forged_sizes_never_allocate_under_a_memory_cap(tmp_path: Path) -> None:
    """In a process capped at 200 MB above its start: forged array shapes and a forged zip size are
    refused, headers claiming hours fail on the limit or decode only what is there, and a 330 kB FLAC
    that decodes to 180 s at 384 kHz (270 MB of float32 at its own rate) is decoded and resampled
    block by block."""
    files = []
    for case, (raw, _) in _deterministic_forgeries().items():
        if case in {"huge-shape", "shape-beyond-data", "huge-meta", "declared-2GB"}:
            (tmp_path / f"{case}.npz").write_bytes(raw)
            files.append(tmp_path / f"{case}.npz")
    (tmp_path / "hours.flac").write_bytes(flac_with_streaminfo(seeds()["flac"], total=HOURS * 22050))
    (tmp_path / "hours.ogg").write_bytes(ogg_with_granule(seeds()["ogg"], HOURS * 16000))
    bomb = tmp_path / "bomb.flac"
    with sf.SoundFile(bomb, "w", samplerate=384000, channels=1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(66):
            f.write(np.zeros(1 << 20, np.int16))
    files += [tmp_path / "hours.flac", tmp_path / "hours.ogg", bomb]
    seed = tmp_path / "seed.npz"
    seed.write_bytes(seed_model())
    wav = tmp_path / "seed.wav"
    wav.write_bytes(seeds()["wav"])
    proc = subprocess.run(
        [sys.executable, "-c", _CAPPED, str(200 << 20), str(seed), str(wav), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(files), proc.stdout
    for line in lines[:4]:
        assert line.startswith("error ") and "Memory" not in line, line
    assert "hours.flac: too long" in lines[4], lines[4]
    # The Ogg seed is 1 s at 16 kHz; its Vorbis packets hold a little more (the last block's
    # padding, which the true granule position trims). Claiming hours decodes what the packets
    # hold: exactly what a granule merely past the end gives, less than one more block (1024).
    (tmp_path / "past.ogg").write_bytes(ogg_with_granule(seeds()["ogg"], 2 * 16000))
    held = load_audio(tmp_path / "past.ogg").size
    assert 16000 < held < 16000 + 1024
    assert lines[5] == f"ok {tmp_path / 'hours.ogg'} {held}", lines[5]
    assert lines[6] == f"ok {bomb} {66 * (1 << 20) // 24}", lines[6]
