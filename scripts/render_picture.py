"""Render the HTML timeline page once in headless Chromium and keep the PNG in docs/.

    python scripts/render_picture.py [--out docs/timeline.png]

The recording: eight RAVDESS clips of one actor with different emotions, 0.5 s apart (English,
so the transcript is readable). `ser analyze --format html` writes the page; Chromium
(`apt-get install chromium`) takes the screenshot with networking disabled, which also proves the
page needs nothing from outside.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

from ser_core.pipeline.audio import SAMPLE_RATE, load_audio

CLIPS = [  # RAVDESS actor 03: emotion codes 01 neutral, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust
    "03-01-01-01-01-01-03", "03-01-05-02-02-01-03", "03-01-05-02-01-02-03", "03-01-04-02-01-01-03",
    "03-01-04-02-02-02-03", "03-01-03-02-01-01-03", "03-01-06-02-02-01-03", "03-01-07-02-01-01-03",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "timeline.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    folder = corpora_dir() / "ravdess" / "Actor_03"
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    signal = np.concatenate([part for name in CLIPS for part in (load_audio(folder / f"{name}.flac"), pause)])
    with tempfile.TemporaryDirectory() as tmp:
        wav, page = Path(tmp) / "ravdess-actor03.wav", Path(tmp) / "timeline.html"
        sf.write(wav, signal, SAMPLE_RATE)
        subprocess.run(  # run in the temporary folder so the page names the file, not the folder
            [sys.executable, "-m", "ser_core", "analyze", wav.name, "--format", "html", "--output", str(page)],
            check=True,
            cwd=tmp,
        )
        shutil.copyfile(page, args.out.with_suffix(".html"))
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--proxy-server=127.0.0.1:9",
             f"--screenshot={args.out}", "--window-size=1500,620", page.as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
    print(f"wrote {args.out} and {args.out.with_suffix('.html')}")


if __name__ == "__main__":
    main()
