"""`ser serve` under load, then killed and restarted.

    python scripts/benchmark_serve_load.py [--uploads 50] [--parallel 8] [--jobs 2] [--no-transcript]

1. 50 recordings of 10-60 s (RAVDESS 01-18 clips in a seeded shuffle, 0.5 s pauses) are uploaded
   8 at a time to `ser serve --jobs 2` (a 429 waits for its Retry-After and tries again). Each
   upload's latency runs from its POST to its result; none may be lost, and every result must
   equal the library's (`ser_core.analyze` on the same file, same settings: label, probabilities,
   segments and words). The server's peak resident memory is read from /proc (VmHWM).
2. 12 more uploads; once 3 are done the server is killed (SIGKILL) and started again on the same
   store: the finished results must still be there, and every other analysis must be reported
   failed as interrupted (none lost, none left "running").

Writes reports/serve-load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.server.store import INTERRUPTED


def recordings(folder: Path, count: int, seed: int) -> list[Path]:
    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    rng = np.random.default_rng(seed)
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    out = []
    for i in range(count):
        target, parts, seconds = rng.uniform(10, 60), [], 0.0
        while seconds < target:
            clip = load_audio(files[int(rng.integers(len(files)))])
            parts += [clip, pause]
            seconds += (len(clip) + len(pause)) / SAMPLE_RATE
        path = folder / f"talk{i:02d}.wav"
        sf.write(path, np.concatenate(parts), SAMPLE_RATE)
        out.append(path)
    return out


def start(port: int, jobs: int, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "ser_core", "serve", "--port", str(port), "--jobs", str(jobs)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def upload(base: str, path: Path) -> tuple[str, int]:
    """POST until accepted; (id, how many 429s it met)."""
    refused = 0
    while True:
        with path.open("rb") as f:
            answer = httpx.post(f"{base}/v1/analyses", files={"file": (path.name, f, "audio/wav")}, timeout=120)
        if answer.status_code == 429:
            refused += 1
            time.sleep(float(answer.headers.get("retry-after", "1")) / 10)  # shorter than asked: a load test
            continue
        answer.raise_for_status()
        return answer.json()["id"], refused


def finished(base: str, analysis_id: str, patience: float = 1800.0) -> dict:
    """The analysis once done or failed; status "lost" if it is neither after `patience` seconds."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/v1/analyses/{analysis_id}", timeout=60).json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.2)
    return {"status": "lost"}


def one(base: str, path: Path) -> dict:
    began = time.perf_counter()
    analysis_id, refused = upload(base, path)
    body = finished(base, analysis_id)
    return {"path": str(path), "id": analysis_id, "status": body["status"], "latency": time.perf_counter() - began,
            "refused": refused, "result": body.get("result"), "error": body.get("error")}


def same(served: dict, path: Path, transcript: bool) -> bool:
    mine = ser_core.analyze(path, transcript=transcript)
    theirs = ser_core.AnalysisResult.model_validate(served)
    return (
        theirs.label == mine.label
        and theirs.probabilities == mine.probabilities
        and [(s.start, s.end, s.label, s.confidence) for s in theirs.segments] == [(s.start, s.end, s.label, s.confidence) for s in mine.segments]
        and [(w.start, w.text) for w in theirs.words] == [(w.start, w.text) for w in mine.words]
    )


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-transcript", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    transcript = not args.no_transcript
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        files = recordings(root / "in", args.uploads + 12, args.seed)
        env = dict(os.environ, SER_DATA_DIR=str(root / "data"), SER_TRANSCRIPT=str(transcript).lower(), SER_SERVE_QUEUE="4")
        os.environ.update(SER_TRANSCRIPT=env["SER_TRANSCRIPT"])
        port = 8000 + args.seed % 1000 + 17
        base = f"http://127.0.0.1:{port}"
        server = start(port, args.jobs, env)
        began = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            rows = list(pool.map(lambda p: one(base, p), files[: args.uploads]))
        wall = time.perf_counter() - began
        peak = peak_mb(server.pid)
        audio = sum(sf.info(p).duration for p in files[: args.uploads])
        equal = [same(r["result"], Path(r["path"]), transcript) if r["status"] == "done" else False for r in rows]
        latencies = np.array([r["latency"] for r in rows])
        load = {
            "uploads": args.uploads, "parallel": args.parallel, "jobs": args.jobs, "transcript": transcript,
            "audio_minutes": round(audio / 60, 1), "wall_seconds": round(wall, 1), "rtf": round(wall / audio, 4),
            "done": sum(r["status"] == "done" for r in rows), "lost": sum(r["status"] == "lost" for r in rows),
            "failed": [r["error"] for r in rows if r["status"] != "done"],
            "equal_to_library": int(sum(equal)), "refused_429": int(sum(r["refused"] for r in rows)),
            "latency_p50_s": round(float(np.percentile(latencies, 50)), 2), "latency_p95_s": round(float(np.percentile(latencies, 95)), 2),
            "server_peak_rss_mb": round(peak, 1),
        }
        print(json.dumps(load, indent=2), flush=True)

        # Killed mid-run, started again on the same store.
        ids = []
        with ThreadPoolExecutor(4) as pool:
            ids = [i for i, _ in pool.map(lambda p: upload(base, p), files[args.uploads :])]
        while sum(httpx.get(f"{base}/v1/analyses/{i}").json()["status"] == "done" for i in ids) < 3:
            time.sleep(0.2)
        before = {i: httpx.get(f"{base}/v1/analyses/{i}").json()["status"] for i in ids}
        server.send_signal(signal.SIGKILL)
        server.wait()
        server = start(port, args.jobs, env)
        after = {i: httpx.get(f"{base}/v1/analyses/{i}").json() for i in ids}
        server.terminate()
        server.wait(timeout=60)
        restart = {
            "submitted": len(ids),
            "done_before_kill": sum(s == "done" for s in before.values()),
            "done_after_restart": sum(a["status"] == "done" for a in after.values()),
            "kept_every_finished": all(after[i]["status"] == "done" and after[i].get("result") for i, s in before.items() if s == "done"),
            "interrupted_reported_failed": sum(a["status"] == "failed" and a.get("error") == INTERRUPTED for a in after.values()),
            "lost": sum(a.get("status") not in ("done", "failed") for a in after.values()),
        }
        print(json.dumps(restart, indent=2))
    atomic_write_text(ROOT / "reports" / "serve-load.json", json.dumps({"load": load, "restart": restart}, indent=2) + "\n")


if __name__ == "__main__":
    main()
