"""`ser serve`: the HTTP API on real analyses (the shipped fast model), through httpx."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import ser_core  # noqa: E402
from ser_core.server.api import create_app  # noqa: E402
from ser_core.server.store import INTERRUPTED, Record, Store  # noqa: E402
from ser_core.settings import get_settings  # noqa: E402

from .conftest import SR, served, voice  # noqa: E402


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "talk.wav"
    sf.write(path, np.concatenate([voice(240, 3.0, 0.5, 5, 1), np.zeros(SR // 2, np.float32), voice(110, 3.0, 0.08, 2, 2)]), SR)
    return path


def _wait(client: TestClient, analysis_id: str, headers=None, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(f"/v1/analyses/{analysis_id}", headers=headers).json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"analysis {analysis_id} did not finish")


def _upload(client: TestClient, path: Path, name: str | None = None, headers=None, **fields):
    with path.open("rb") as f:
        return client.post("/v1/analyses", files={"file": (name or path.name, f, "audio/wav")}, data=fields, headers=headers)


def test_upload_status_formats_and_delete(recording):
    client = TestClient(create_app())
    assert client.get("/v1/health").json()["status"] == "ok"
    assert any(p["name"] == "fast" and p["installed"] and p["default"] for p in client.get("/v1/profiles").json())
    answer = _upload(client, recording, transcript="false")
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    analysis_id = answer.json()["id"]
    body = _wait(client, analysis_id)
    assert body["status"] == "done", body
    # The same result the library gives for the same file and options (its path: the upload's name).
    expected = ser_core.analyze(recording, transcript=False)
    got = ser_core.AnalysisResult.model_validate(body["result"])
    assert got.path == "talk.wav"
    assert (got.label, got.probabilities, [(s.start, s.end, s.label) for s in got.segments]) == (
        expected.label,
        expected.probabilities,
        [(s.start, s.end, s.label) for s in expected.segments],
    )
    for fmt, marker in (("srt", "-->"), ("vtt", "WEBVTT"), ("csv", "path,status"), ("html", "<svg"), ("json", '"segments"')):
        rendered = client.get(f"/v1/analyses/{analysis_id}.{fmt}")
        assert rendered.status_code == 200 and marker in rendered.text, fmt
    assert client.get(f"/v1/analyses/{analysis_id}.nope").status_code == 404
    assert [a["id"] for a in client.get("/v1/analyses").json()] == [analysis_id]
    # The upload is gone once analysed; the result stays until deleted.
    folder = get_settings().serve_dir / analysis_id
    assert sorted(p.name for p in folder.iterdir()) == ["envelope.json", "meta.json", "result.json"]
    assert client.delete(f"/v1/analyses/{analysis_id}").status_code == 204
    assert client.get(f"/v1/analyses/{analysis_id}").status_code == 404 and not folder.exists()


def test_options_are_checked_and_used(recording):
    client = TestClient(create_app())
    assert _upload(client, recording, profile="nope").status_code == 422
    assert _upload(client, recording, speakers="two").status_code == 422
    assert _upload(client, recording, colour="blue").status_code == 422
    answer = _upload(client, recording, transcript="false", speakers="auto")
    body = _wait(client, answer.json()["id"])
    assert body["options"] == {"profile": "fast", "transcript": False, "speakers": "auto"}
    assert body["result"]["diarizer"] and body["result"]["speakers"]


def test_not_audio_is_422_with_the_reason_and_leaves_nothing(tmp_path):
    client = TestClient(create_app())
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    answer = _upload(client, fake, name="../../etc/passwd.wav")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("passwd.wav: ") and str(tmp_path) not in detail and "\n" not in detail
    assert list(get_settings().serve_dir.iterdir()) == []  # the upload was removed


def test_too_large_is_413_while_streaming(recording, monkeypatch):
    monkeypatch.setenv("SER_SERVE_MAX_UPLOAD_MB", "0.05")  # 52 kB; the recording is 200 kB
    get_settings.cache_clear()
    client = TestClient(create_app())

    def chunks():  # no Content-Length: the limit must hold on the bytes as they arrive
        boundary = b"xyz"
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(100):
            yield b"\0" * 4096
        yield b"\r\n--" + boundary + b"--\r\n"

    answer = client.post("/v1/analyses", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert answer.status_code == 413
    assert _upload(client, recording).status_code == 413
    assert list(get_settings().serve_dir.iterdir()) == []


def test_token(recording):
    client = TestClient(create_app(token="s3cret"))
    assert client.get("/v1/health").status_code == 401
    assert _upload(client, recording).status_code == 401
    assert client.get("/v1/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_full_queue_is_429_with_retry_after(recording, monkeypatch):
    monkeypatch.setenv("SER_SERVE_QUEUE", "0")
    get_settings.cache_clear()
    app = create_app(jobs=1)
    client = TestClient(app)
    app.state.jobs.reserve()  # the one worker is taken
    answer = _upload(client, recording)
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
    app.state.jobs.release()
    assert _upload(client, recording, transcript="false").status_code == 202


def test_a_restart_keeps_results_and_fails_the_interrupted(recording):
    client = TestClient(create_app())
    done = _wait(client, _upload(client, recording, transcript="false").json()["id"])
    store = Store(get_settings().serve_dir)
    cut_off = Record(id=store.new_id(), name="long.wav", status="running")
    store.save(cut_off)
    store.upload_path(cut_off.id, ".wav").write_bytes(b"RIFF")
    again = TestClient(create_app())
    assert again.get(f"/v1/analyses/{done['id']}").json()["status"] == "done"
    body = again.get(f"/v1/analyses/{cut_off.id}").json()
    assert body["status"] == "failed" and body["error"] == INTERRUPTED
    assert not list((get_settings().serve_dir / cut_off.id).glob("upload*"))


def test_ids_never_reach_a_path():
    client = TestClient(create_app())
    for ref in ("..", "..%2F..%2Fetc", "0" * 31, "G" * 32):
        assert client.get(f"/v1/analyses/{ref}").status_code in (404, 405)
        assert client.delete(f"/v1/analyses/{ref}").status_code in (404, 405)


def test_ser_serve_subprocess(recording, isolated):
    with served({"SER_TRANSCRIPT": "false"}) as base:
        with recording.open("rb") as f:
            answer = httpx.post(f"{base}/v1/analyses", files={"file": ("talk.wav", f, "audio/wav")})
        assert answer.status_code == 202
        for _ in range(600):
            body = httpx.get(f"{base}/v1/analyses/{answer.json()['id']}").json()
            if body["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert body["status"] == "done", body
        assert json.loads(httpx.get(f"{base}/openapi.json").text)["paths"]["/v1/analyses"]
        assert httpx.get(f"{base}/docs").status_code == 404  # no page that needs a CDN


def test_other_hosts_need_a_token():
    from typer.testing import CliRunner

    from ser_core.cli import app

    run = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert run.exit_code == 2 and "--token" in run.output


def test_progress_and_events(tmp_path, monkeypatch):
    """A 40 s recording in 10 s pieces: the status counts the pieces, and the event stream
    reports them in order and ends with `done`."""
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    parts = []
    for i in range(8):
        parts += [voice(240 if i % 2 else 110, 4.5, 0.3, 4, 10 + i), np.zeros(SR // 2, np.float32)]
    path = tmp_path / "long.wav"
    sf.write(path, np.concatenate(parts), SR)
    client = TestClient(create_app())
    analysis_id = _upload(client, path, transcript="false").json()["id"]
    events = []
    with client.stream("GET", f"/v1/analyses/{analysis_id}/events") as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "done", events
    done = [data["pieces_done"] for kind, data in events if kind == "progress"]
    assert done == sorted(done) and done[-1] >= 4, events
    body = client.get(f"/v1/analyses/{analysis_id}").json()
    assert body["pieces_done"] == body["pieces_total"] >= 4
    assert client.get(f"/v1/analyses/{'0' * 32}/events").status_code == 404


def test_paths_only_under_allow_paths(recording, tmp_path):
    shared = recording.parent
    closed = TestClient(create_app())
    assert closed.post("/v1/analyses", json={"path": recording.name}).status_code == 403
    client = TestClient(create_app(allow_paths=shared))
    for outside in ("../etc/passwd", "/etc/passwd", f"{shared}/../x.wav"):
        assert client.post("/v1/analyses", json={"path": outside}).status_code == 403, outside
    assert client.post("/v1/analyses", json={"path": "missing.wav"}).status_code == 422
    assert client.post("/v1/analyses", json={"nope": 1}).status_code == 400
    answer = client.post("/v1/analyses", json={"path": recording.name, "transcript": False})
    assert answer.status_code == 202
    body = _wait(client, answer.json()["id"])
    assert body["status"] == "done" and body["name"] == recording.name and body["result"]["path"] == recording.name
    assert recording.exists()  # the user's file is never removed


def test_cors_only_when_configured():
    asked = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    plain = TestClient(create_app()).get("/v1/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in plain.headers
    client = TestClient(create_app(cors_origins=["https://app.example"]))
    assert client.get("/v1/health", headers={"Origin": "https://app.example"}).headers["access-control-allow-origin"] == "https://app.example"
    assert client.options("/v1/health", headers=asked).status_code == 200
    assert "access-control-allow-origin" not in client.get("/v1/health", headers={"Origin": "https://evil.example"}).headers


def test_a_result_with_nothing_to_say_keeps_its_nulls(tmp_path):
    """Silence: no label, no confidence. The result must still be a whole AnalysisResult (nulls
    kept), so a client can validate it with the library's model."""
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(3 * SR, np.float32), SR)
    client = TestClient(create_app())
    body = _wait(client, _upload(client, path, transcript="false").json()["id"])
    assert body["status"] == "done" and "error" not in body
    assert body["result"]["label"] is None and body["result"]["confidence"] is None
    assert ser_core.AnalysisResult.model_validate(body["result"]).status == "no_speech"


def test_old_results_are_swept(recording, monkeypatch):
    client = TestClient(create_app())
    old = _wait(client, _upload(client, recording, transcript="false").json()["id"])
    store = Store(get_settings().serve_dir)
    record = store.get(old["id"])
    record.created -= 8 * 24 * 3600  # past the 168 h retention
    store.save(record)
    _wait(client, _upload(client, recording, transcript="false").json()["id"])  # a new upload sweeps
    assert client.get(f"/v1/analyses/{old['id']}").status_code == 404
    schema = client.get("/openapi.json").json()
    assert "AnalysisResult" in schema["components"]["schemas"]
