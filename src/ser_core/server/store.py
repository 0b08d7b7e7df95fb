"""Analyses on disk: one folder per analysis holding its metadata, its upload while it waits, and
its result, all written atomically, so a restarted server keeps every finished result and reports
the ones it was working on as failed."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ser_core.atomic_files import atomic_write_text

#: Analysis ids are uuid4 hex: checked before any id touches a path.
ID = re.compile(r"^[0-9a-f]{32}$")
INTERRUPTED = "the server stopped before this analysis finished; upload it again"


@dataclass
class Record:
    """What a client sees of an analysis, besides its result."""

    id: str
    name: str
    status: str = "queued"  # queued, running, done, failed
    created: float = field(default_factory=time.time)
    finished: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    pieces_done: int = 0
    pieces_total: int | None = None


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def folder(self, analysis_id: str) -> Path:
        if not ID.match(analysis_id):
            raise KeyError(analysis_id)
        return self.root / analysis_id

    def upload_path(self, analysis_id: str, suffix: str) -> Path:
        """Where an upload is streamed to: a fixed name with a known audio suffix (the client's
        file name never becomes part of a path)."""
        folder = self.folder(analysis_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"upload{suffix}"

    def save(self, record: Record) -> None:
        atomic_write_text(self.folder(record.id) / "meta.json", json.dumps(asdict(record)))

    def get(self, analysis_id: str) -> Record:
        try:
            data = json.loads((self.folder(analysis_id) / "meta.json").read_text())
        except (OSError, ValueError):
            raise KeyError(analysis_id) from None
        return Record(**data)

    def result_text(self, analysis_id: str) -> str:
        return (self.folder(analysis_id) / "result.json").read_text()

    def save_result(self, analysis_id: str, text: str, envelope: dict[str, Any] | None = None) -> None:
        """The result's JSON, and its loudness envelope (left out of the result's JSON) for pictures."""
        if envelope is not None:
            atomic_write_text(self.folder(analysis_id) / "envelope.json", json.dumps(envelope))
        atomic_write_text(self.folder(analysis_id) / "result.json", text)

    def envelope(self, analysis_id: str) -> dict[str, Any]:
        try:
            return json.loads((self.folder(analysis_id) / "envelope.json").read_text())
        except (OSError, ValueError):
            return {}

    def records(self) -> list[Record]:
        out = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            if ID.match(folder.name):
                try:
                    out.append(self.get(folder.name))
                except KeyError:
                    continue
        return sorted(out, key=lambda r: r.created, reverse=True)

    def delete(self, analysis_id: str) -> None:
        shutil.rmtree(self.folder(analysis_id), ignore_errors=True)

    def remove_uploads(self, analysis_id: str) -> None:
        for path in self.folder(analysis_id).glob("upload*"):
            path.unlink(missing_ok=True)

    def sweep(self, retention_seconds: float) -> None:
        """Delete finished analyses older than the retention time (a live server calls this as it
        takes new work; the ones in work are left alone)."""
        now = time.time()
        for record in self.records():
            if record.status in ("done", "failed") and now - record.created > retention_seconds:
                self.delete(record.id)

    def recover(self, retention_seconds: float) -> None:
        """At start: analyses a previous server left unfinished are failed (their uploads removed),
        folders without metadata (an upload cut off) deleted, then old results swept."""
        for folder in list(self.root.iterdir()):
            if not ID.match(folder.name):
                continue
            try:
                record = self.get(folder.name)
            except KeyError:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if record.status in ("queued", "running"):
                record.status, record.error, record.finished = "failed", INTERRUPTED, time.time()
                self.save(record)
                self.remove_uploads(record.id)
        self.sweep(retention_seconds)
