"""The page of `ser serve` in real headless Chromium (Playwright driving the system's chromium),
offline: upload the sample, watch it analysed, click a word and hear the audio jump there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from .conftest import served  # noqa: E402

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the browser comes from apt)")

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample.wav"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")


@pytest.fixture
def server(isolated):
    with served({"SER_WHISPER_MODEL": "tiny.en", "SER_VAD": "auto"}) as base:
        yield base


def test_upload_play_and_seek(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(server + "/")
            page.set_input_files("#file", str(SAMPLE))
            page.wait_for_selector("#words span[data-start]", timeout=180_000)
            assert page.locator("#rows tbody tr").count() >= 1
            assert page.locator("#timeline rect.segment").count() >= 1
            assert "sample.wav" in page.locator("#title").inner_text()
            assert page.locator("#downloads a").count() == 5
            # Click a word: the audio moves to the word's start, and the word is highlighted.
            page.wait_for_function("document.getElementById('audio').readyState >= 1")
            word = page.locator("#words span[data-start]").nth(2)
            start = float(word.get_attribute("data-start"))
            assert start > 0.5
            word.click()
            page.wait_for_function(f"Math.abs(document.getElementById('audio').currentTime - {start}) < 0.3")
            # A timeline row seeks too.
            page.locator("#rows tbody tr").first.click()
            page.wait_for_function("document.getElementById('audio').currentTime < 1.0")
            # The past analyses list the upload.
            assert "sample.wav: done" in page.locator("#past").inner_text()
            # Readable on a phone: nothing wider than the screen outside the scrolling boxes.
            page.set_viewport_size({"width": 375, "height": 700})
            assert page.evaluate("document.documentElement.scrollWidth") <= 380
            # Offline: every request stayed on this server (or the page's own blob of the upload).
            assert requests and all(url.startswith((server, "blob:", "data:")) for url in requests), requests
        finally:
            browser.close()
