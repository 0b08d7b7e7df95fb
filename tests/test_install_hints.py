"""Install hints that work (issue 11, item 6): the backend plugins are not on PyPI yet, so every hint
names the checkout folder that exists; rich markup does not eat `[ray]`; the plugin test trees are
reported as skipped, with the reason, where their dependencies are missing."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ser_core.builtin_plugins.catalogue import PROFILES as CATALOGUE
from ser_core.cli import app
from ser_core.errors import ProfileError
from ser_core.plugins.lookup import get_backend, get_profile

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.mark.parametrize("profile", sorted(CATALOGUE))
def test_hint_installs_the_plugin_folder_of_a_checkout(profile):
    hint = get_profile(profile).install
    assert "\n" not in hint
    folder = hint.split("pip install -e ", 1)[1].split()[0]
    pyproject = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == get_profile(profile).distribution
    assert hint.endswith(f"once on PyPI: pip install {get_profile(profile).distribution}")


def test_every_place_prints_the_working_hint(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "handcrafted")  # as if ser-backend-hf were not installed
    expected = "pip install torch && pip install -e plugins/ser_backend_hf"
    with pytest.raises(ProfileError) as error:
        get_backend("accurate")
    assert str(error.value).endswith(get_profile("accurate").install) and expected in str(error.value)
    doctor = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    fix = next(c["fix"] for c in doctor["checks"] if c["name"] == "profile accurate")
    assert fix == get_profile("accurate").install
    listing = runner.invoke(app, ["plugins"]).stdout
    assert f"profile accurate: not installed: {get_profile('accurate').install}" in listing


def test_engine_help_keeps_the_extra():
    result = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "250"})
    assert "pip install 'ser-core[ray]'" in result.stdout


def test_plugin_tests_without_torch_are_skipped_with_a_reason():
    hide_torch = (
        "import sys; sys.modules['torch'] = None; import pytest; "  # find_spec('torch') is None
        "sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', "
        "'plugins/ser_backend_hf/tests', 'plugins/ser_backend_emotion2vec/tests']))"
    )
    proc = subprocess.run([sys.executable, "-c", hide_torch], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: all skipped at collection
    assert "ser-backend-hf tests need torch" in proc.stdout
    assert "ser-backend-emotion2vec tests need torch" in proc.stdout
