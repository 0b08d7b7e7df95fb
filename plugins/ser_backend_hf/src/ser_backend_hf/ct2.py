"""A dependency-free (numpy only) reader of CTranslate2's `model.bin`.

The format, as written by `ctranslate2.specs.model_spec.ModelSpec._serialize` (binary version 6;
all integers little-endian, which is what CTranslate2 writes on every platform it supports):

    uint32 binary_version
    string spec_name                       # uint16 length incl. NUL, UTF-8 bytes, NUL
    uint32 revision
    uint32 n_variables
    n_variables x (string name, uint8 rank, rank x uint32 dim, uint8 dtype_id, uint32 nbytes, bytes)
    uint32 n_aliases
    n_aliases x (string alias, string target)

dtype ids follow `_dtype_to_type_id`: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
(numpy has no bfloat16: those are widened to float32 exactly).

The reader trusts nothing in the header: every length is checked against the bytes left in the
file *before* anything is allocated or read, so a truncated or forged file raises `ValueError`
instead of allocating gigabytes. Variables are indexed first (names, shapes, offsets: a few KiB)
and only the requested ones are read.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["SUPPORTED_BINARY_VERSIONS", "Ct2Model", "VariableInfo", "read_index", "read_variables"]

#: Binary versions with the layout above (5 and 6 differ only in what the C++ side accepts).
SUPPORTED_BINARY_VERSIONS = (5, 6)

_DTYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("float32", np.dtype("<f4")),
    1: ("int8", np.dtype("i1")),
    2: ("int16", np.dtype("<i2")),
    3: ("int32", np.dtype("<i4")),
    4: ("float16", np.dtype("<f2")),
    5: ("bfloat16", np.dtype("<u2")),  # raw bits, widened to float32 on read
}
_BY_NAME = dict(_DTYPES.values())
_MAX_RANK = 8


@dataclass(frozen=True)
class VariableInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str  # CTranslate2's name: float32, int8, int16, int32, float16, bfloat16
    offset: int  # of the raw bytes in the file
    nbytes: int


@dataclass(frozen=True)
class Ct2Model:
    """The header of a `model.bin`: no weights, only where they are."""

    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, VariableInfo]
    aliases: dict[str, str]  # alias -> target variable name
    size: int

    def resolve(self, name: str) -> VariableInfo:
        """The variable behind a name or an alias (`KeyError` if neither)."""
        seen = set()
        while name in self.aliases and name not in self.variables:
            if name in seen:
                raise ValueError(f"{self.path}: alias cycle through {name!r}")
            seen.add(name)
            name = self.aliases[name]
        return self.variables[name]

    def names(self) -> list[str]:
        return [*self.variables, *(a for a in self.aliases if a not in self.variables)]


class _Reader:
    def __init__(self, handle: BinaryIO, size: int, path: Path) -> None:
        self.handle = handle
        self.size = size
        self.path = path

    @property
    def left(self) -> int:
        return self.size - self.handle.tell()

    def read(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left:
            raise ValueError(
                f"{self.path}: truncated or corrupt CTranslate2 model: {what} needs {n} bytes, "
                f"{self.left} left at offset {self.handle.tell()}"
            )
        data = self.handle.read(n)
        if len(data) != n:  # the file shrank under us
            raise ValueError(f"{self.path}: truncated CTranslate2 model while reading {what}")
        return data

    def skip(self, n: int, what: str) -> None:
        if n < 0 or n > self.left:
            raise ValueError(
                f"{self.path}: truncated or corrupt CTranslate2 model: {what} needs {n} bytes, "
                f"{self.left} left at offset {self.handle.tell()}"
            )
        self.handle.seek(n, os.SEEK_CUR)

    def u8(self, what: str) -> int:
        return self.read(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack("<H", self.read(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.read(4, what))[0]

    def string(self, what: str) -> str:
        n = self.u16(what + " length")
        if n == 0:
            raise ValueError(f"{self.path}: corrupt CTranslate2 model: {what} has length 0 (no NUL)")
        raw = self.read(n, what)
        if raw[-1] != 0:
            raise ValueError(f"{self.path}: corrupt CTranslate2 model: {what} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: corrupt CTranslate2 model: {what} is not UTF-8") from exc


def read_index(path: str | os.PathLike[str]) -> Ct2Model:
    """Parse the header and variable table of a `model.bin`, without reading any weights.

    Accepts a `model.bin` or a directory that holds one. `ValueError` on anything malformed."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    size = path.stat().st_size
    with path.open("rb") as handle:
        r = _Reader(handle, size, path)
        version = r.u32("binary version")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ValueError(
                f"{path}: unsupported CTranslate2 binary version {version} "
                f"(supported: {', '.join(map(str, SUPPORTED_BINARY_VERSIONS))})"
            )
        spec = r.string("spec name")
        revision = r.u32("revision")
        count = r.u32("variable count")
        # The smallest possible variable record: 2+1 (name "") + 1 + 1 + 4 bytes.
        if count * 9 > r.left:
            raise ValueError(f"{path}: corrupt CTranslate2 model: {count} variables cannot fit")
        variables: dict[str, VariableInfo] = {}
        for index in range(count):
            name = r.string(f"name of variable {index}")
            rank = r.u8(f"rank of {name!r}")
            if rank > _MAX_RANK:
                raise ValueError(f"{path}: corrupt CTranslate2 model: {name!r} has rank {rank}")
            shape = struct.unpack(f"<{rank}I", r.read(4 * rank, f"shape of {name!r}"))
            type_id = r.u8(f"dtype of {name!r}")
            if type_id not in _DTYPES:
                raise ValueError(f"{path}: corrupt CTranslate2 model: {name!r} has dtype id {type_id}")
            dtype_name, dtype = _DTYPES[type_id]
            nbytes = r.u32(f"byte count of {name!r}")
            expected = int(np.prod(shape, dtype=object)) * dtype.itemsize  # python ints: no overflow
            if expected != nbytes:
                raise ValueError(
                    f"{path}: corrupt CTranslate2 model: {name!r} of shape {shape} {dtype_name} "
                    f"should have {expected} bytes, header says {nbytes}"
                )
            offset = handle.tell()
            r.skip(nbytes, f"data of {name!r}")
            if name in variables:
                raise ValueError(f"{path}: corrupt CTranslate2 model: variable {name!r} twice")
            variables[name] = VariableInfo(name, tuple(shape), dtype_name, offset, nbytes)
        aliases: dict[str, str] = {}
        if r.left:  # models written before aliases existed simply end here
            n_aliases = r.u32("alias count")
            if n_aliases * 6 > r.left:
                raise ValueError(f"{path}: corrupt CTranslate2 model: {n_aliases} aliases cannot fit")
            for index in range(n_aliases):
                alias = r.string(f"alias {index}")
                aliases[alias] = r.string(f"target of alias {alias!r}")
        if r.left:
            raise ValueError(f"{path}: corrupt CTranslate2 model: {r.left} unexpected trailing bytes")
    model = Ct2Model(path, version, spec, revision, variables, aliases, size)
    for alias, target in aliases.items():
        if alias not in variables:
            try:
                model.resolve(target)
            except KeyError:
                raise ValueError(
                    f"{path}: corrupt CTranslate2 model: alias {alias!r} -> missing {target!r}"
                ) from None
    return model


def _load(handle: BinaryIO, info: VariableInfo) -> np.ndarray:
    dtype = _BY_NAME[info.dtype]
    handle.seek(info.offset)
    raw = handle.read(info.nbytes)
    if len(raw) != info.nbytes:
        raise ValueError(f"truncated CTranslate2 model while reading {info.name!r}")
    array = np.frombuffer(raw, dtype=dtype).reshape(info.shape)
    if info.dtype == "bfloat16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=True)  # native, writable, owned


def read_variables(
    path: str | os.PathLike[str], prefix: str | tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """All variables of a `model.bin` (or of the directory holding it) by name, aliases resolved
    (an alias maps to a copy-free view of its target's array).

    `prefix` (e.g. `"encoder/"`) restricts what is read to names starting with it, which keeps the
    decoder of a Whisper model out of memory. Arrays keep the stored dtype, except bfloat16 which
    is returned as float32. `ValueError` on a truncated or malformed file."""
    model = read_index(path)

    def wanted(name: str) -> bool:
        return prefix is None or name.startswith(prefix)

    out: dict[str, np.ndarray] = {}
    with model.path.open("rb") as handle:
        if handle.seek(0, os.SEEK_END) != model.size:
            raise ValueError(f"{model.path}: the file changed while being read")
        for name, info in model.variables.items():
            if wanted(name):
                out[name] = _load(handle, info)
        for alias in model.aliases:
            if alias in model.variables or not wanted(alias):
                continue
            info = model.resolve(alias)
            if info.name not in out:
                out[info.name] = _load(handle, info)
            out[alias] = out[info.name]
    return out
