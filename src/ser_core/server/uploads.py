"""Reading an upload as it streams in: the file part goes straight to disk and the size limit is
enforced on the bytes received, not after the whole body is buffered; small form fields are kept
(bounded). The client's file name is kept as text only, never as a path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ser_core.pipeline.audio import AUDIO_EXTENSIONS

FIELD_LIMIT = 1024  # bytes of any one form field (profile, language, ...)


class TooLarge(Exception):
    """The upload passed the size limit."""


class BadUpload(Exception):
    """The body is not a multipart form with one file part."""


@dataclass
class Upload:
    name: str = ""
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def safe_name(raw: str) -> str:
    """The last component of a client's file name, printable and short: for messages and listings."""
    name = PureWindowsPath(PurePosixPath(raw).name).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\r\n\t")
    return name[:200] or "upload"


def suffix_of(name: str) -> str:
    """A known audio extension of the name (it tells the decoder what to expect), else none."""
    suffix = Path(name).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ""


async def receive(chunks: AsyncIterator[bytes], content_type: str, open_target, limit: int) -> Upload:
    """Parse a multipart body from `chunks`; the part named "file" is written to the file object
    `open_target(name)` returns. Raises TooLarge past `limit` bytes of file, BadUpload for a body
    that is not a form with a file."""
    from python_multipart import MultipartParser
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadUpload("send the recording as multipart/form-data with a part named 'file'")
    found = Upload()
    state: dict = {
        "headers": {},
        "field": b"",
        "value": b"",
        "name": None,
        "file": None,
        "buffer": bytearray(),
    }

    def on_part_begin() -> None:
        state["headers"], state["name"], state["buffer"] = {}, None, bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = options.get(b"name", b"").decode("utf-8", "replace")
        if state["name"] == "file":
            if state["file"] is not None:
                raise BadUpload("send one file per analysis")
            found.name = safe_name(options.get(b"filename", b"upload").decode("utf-8", "replace"))
            state["file"] = open_target(found.name)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == "file":
            found.size += end - start
            if found.size > limit:
                raise TooLarge
            state["file"].write(data[start:end])
        elif len(state["buffer"]) + end - start <= FIELD_LIMIT:
            state["buffer"] += data[start:end]
        else:
            raise BadUpload(f"form field {state['name']!r} is longer than {FIELD_LIMIT} bytes")

    def on_part_end() -> None:
        if state["name"] and state["name"] != "file":
            found.fields[state["name"]] = state["buffer"].decode("utf-8", "replace").strip()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    from python_multipart.exceptions import ParseError

    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except ParseError as exc:
        raise BadUpload(f"malformed multipart body ({exc})") from None
    finally:
        if state["file"] is not None:
            state["file"].close()
    if state["file"] is None:
        raise BadUpload("no part named 'file' in the form")
    return found
