"""The installed version, on the ground floor: importing it loads nothing else of ser_core."""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ser-core")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
