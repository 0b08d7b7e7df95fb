"""The plugin of the plugin-author guide (docs/plugins.md), installed through an entry point and used
end to end: listed, trained, evaluated and analysed with its own profile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import soundfile as sf
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.plugins import manager as plugins

from .conftest import SR, voice

EXAMPLE = Path(__file__).parent / "example_plugin" / "ser_loudness.py"


def _install(site: Path) -> None:
    """What `pip install -e .` of the guide's pyproject leaves behind: the module and an entry point."""
    dist = site / "ser_loudness-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ser-loudness\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[ser_core]\nloudness = ser_loudness\n")
    shutil.copy(EXAMPLE, site / "ser_loudness.py")


def test_the_guide_plugin_works_end_to_end(corpus, tmp_path, monkeypatch):
    _install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugins.reset()
    runner = CliRunner()
    listing = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    mine = next(p for p in listing["plugins"] if p["name"] == "loudness")
    assert (mine["distribution"], mine["version"], mine["profiles"]) == ("ser-loudness", "0.1.0", ["loudness"])

    trained = runner.invoke(app, ["train", "--profile", "loudness", "-d", str(corpus), "--no-progress"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", "--profile", "loudness", "-d", str(corpus), "-f", "json", "--no-progress"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["uar"] >= 0.9  # loud and fast against quiet and slow

    clip = tmp_path / "clip.wav"
    sf.write(clip, voice(110.0, 2.5, 0.08, 2.0, 11, 0.01), SR)
    analysed = runner.invoke(app, ["analyze", str(clip), "--profile", "loudness"])
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert (result["profile"], result["backend_id"], result["label"]) == ("loudness", "loudness", "sad")
