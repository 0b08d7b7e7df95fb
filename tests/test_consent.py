"""Restricted backends run only with consent: every way to consent, refusal, revoke, corrupt store."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.contract.hookspecs import hookimpl
from ser_core.errors import ConsentError
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_backend
from ser_core.settings import get_settings

from .test_hooks import LoudnessBackend

runner = CliRunner()


class Restricted(LoudnessBackend):
    """Stands in for emotion2vec: same backend id, trivial features."""

    backend_id = "emotion2vec"
    model_id = "test"


class RestrictedPlugin:
    @hookimpl
    def ser_register_backends(self, register):
        register(
            "emotion2vec",
            Restricted,
            model_id="test",
            licence_id="TEST-1.0",
            licence_summary="for tests only",
        )


@pytest.fixture(autouse=True)
def restricted(monkeypatch):
    monkeypatch.delenv("SER_ENABLE_RESTRICTED_BACKENDS", raising=False)
    monkeypatch.delenv("SER_ALLOWED_RESTRICTED_BACKENDS", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    plugins.get_plugin_manager().register(RestrictedPlugin(), name="restricted")
    registries.refresh()


def consent_file():
    return get_settings().restricted_backends_consent_file


def test_refused_without_consent_and_without_a_terminal():
    with pytest.raises(ConsentError) as refused:
        get_backend("accurate-research")
    message = str(refused.value)
    assert "\n" not in message and "licence TEST-1.0" in message
    assert "--accept-restricted-backends" in message
    assert (
        "SER_ALLOWED_RESTRICTED_BACKENDS=emotion2vec" in message
        and "SER_ENABLE_RESTRICTED_BACKENDS=true" in message
    )
    assert not consent_file().exists()


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SER_ENABLE_RESTRICTED_BACKENDS", "true", True),
        ("SER_ALLOWED_RESTRICTED_BACKENDS", "other, emotion2vec", True),
        ("SER_ALLOWED_RESTRICTED_BACKENDS", "other", False),
    ],
)
def test_per_run_overrides(monkeypatch, variable, value, allowed):
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    if allowed:
        assert get_backend("accurate-research").backend_id == "emotion2vec"
        assert not consent_file().exists()  # a per-run override stores nothing
    else:
        with pytest.raises(ConsentError):
            get_backend("accurate-research")


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("answer", "granted"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)]
)
def test_interactive_prompt(monkeypatch, capsys, answer, granted):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    if granted:
        get_backend("accurate-research")
        record = json.loads(consent_file().read_text())["consents"]["emotion2vec"]
        assert record["licence_id"] == "TEST-1.0" and record["granted_at"] and record["ser_core_version"]
    else:
        with pytest.raises(ConsentError):
            get_backend("accurate-research")
        assert not consent_file().exists()
    assert "for tests only" in capsys.readouterr().err  # the prompt shows the licence summary


def test_cli_accept_persists_then_list_and_revoke(corpus):
    args = ["train", "-d", str(corpus), "--profile", "accurate-research", "--no-progress"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 9 and len(refused.stderr.strip().splitlines()) == 1
    accepted = runner.invoke(app, [*args, "--accept-restricted-backends"])
    assert accepted.exit_code == 0, accepted.output
    assert "emotion2vec" in json.loads(consent_file().read_text())["consents"]
    assert runner.invoke(app, args).exit_code == 0  # stored: no flag needed any more
    listed = runner.invoke(app, ["consent", "list"])
    assert "emotion2vec: licence TEST-1.0" in listed.stdout
    revoked = runner.invoke(app, ["consent", "revoke", "emotion2vec"])
    assert revoked.exit_code == 0 and "revoked: emotion2vec" in revoked.stdout
    assert json.loads(consent_file().read_text())["consents"] == {}
    assert runner.invoke(app, args).exit_code == 9


def test_accept_all(tmp_path):
    wav = tmp_path / "x.wav"
    result = runner.invoke(app, ["analyze", str(wav), "--accept-all-restricted-backends", "--no-transcript"])
    assert "consent stored for restricted backend emotion2vec" in result.stderr
    assert "emotion2vec" in json.loads(consent_file().read_text())["consents"]


@pytest.mark.parametrize("content", ["{not json", '{"consents": ["emotion2vec"]}', '{"other": 1}'])
def test_corrupt_store_is_no_consent_and_never_overwritten(caplog, content):
    path = consent_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(ConsentError):
        get_backend("accurate-research")
    assert "malformed consent file" in caplog.text
    result = runner.invoke(app, ["consent", "revoke", "--all"])
    assert result.exit_code == 9 and "not overwriting it" in result.stderr
    accept = runner.invoke(
        app, ["train", "-d", "x", "--profile", "accurate-research", "--accept-restricted-backends"]
    )
    assert accept.exit_code == 9 and "fix or delete it first" in accept.stderr
    assert path.read_text() == content


def test_doctor_reports_consent(monkeypatch):
    from ser_core.operations.doctor import run_checks

    checks = {c.name: c for c in run_checks(get_settings())}
    assert checks["consent emotion2vec"].status == "warn"
    assert checks["consent emotion2vec"].fix.endswith(
        "--profile accurate-research --accept-restricted-backends"
    )
    monkeypatch.setenv("SER_ALLOWED_RESTRICTED_BACKENDS", "emotion2vec")
    get_settings.cache_clear()
    checks = {c.name: c for c in run_checks(get_settings())}
    assert checks["consent emotion2vec"].detail == "consented (SER_ALLOWED_RESTRICTED_BACKENDS)"
