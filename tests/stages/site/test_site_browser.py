"""The review site in a real browser: Debian's headless Chromium, driven by selenium over HTTP.

An atom page's source timestamp opens the transcript page at that second of the recording
(``#t=12``); a clicked timestamp seeks the player too. The recording is a 40 s WAV made with
ffmpeg at test time. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pipeline.config import Settings
from pipeline.reporting import Reporter
from pipeline.stages import site
from pipeline.workspace import Workspace, sha256_file
from tests.paths import TESTS_DATA, TESTS_DIR

DATA = TESTS_DATA / "site"
ARTIFACTS = TESTS_DIR / "artifacts"
CHROMIUM, CHROMEDRIVER, FFMPEG = (shutil.which(n) for n in ("chromium", "chromedriver", "ffmpeg"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (apt)"),
    pytest.mark.skipif(not FFMPEG, reason="needs ffmpeg (apt) to make the test recording"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The test workspace with a recording for Alice's interview, built and served on loopback."""
    root = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(DATA / "workspace", root)
    folder = root / "interviews" / "2026-03-04-alice"
    wav = folder / "recording.wav"
    subprocess.run(
        [
            FFMPEG,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=40",
            "-ac",
            "1",
            "-ar",
            "8000",
            str(wav),
        ],
        check=True,
    )
    meta = yaml.safe_load((folder / "interview.yaml").read_text(encoding="utf-8"))
    meta["media"] = [
        {
            "kind": "recording",
            "file": "recording.wav",
            "sha256": sha256_file(wav),
            "bytes": wav.stat().st_size,
            "format": "wav",
        }
    ]
    (folder / "interview.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    ws = Workspace.at(root)
    site.run(Settings.load(root), ws, Reporter(), strict=True)
    handler = functools.partial(_QuietHandler, directory=str(root / "build" / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root / "build" / "site"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


def _current_time(driver) -> float:
    return float(
        driver.execute_script("var a = document.querySelector('audio.kb-audio'); return a ? a.currentTime : -1;")
    )


def test_source_timestamp_opens_the_transcript_at_that_second(served, browser):
    base, built = served
    assert (built / "interviews/2026-03-04-alice/recording.wav").is_file()
    ARTIFACTS.mkdir(exist_ok=True)
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/atoms/error/argocd-sync-context-deadline-exceeded.html")
    assert "Sync fails with" in browser.title
    link = browser.find_element(By.CSS_SELECTOR, ".kb-sources a.kb-time")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    browser.save_screenshot(str(ARTIFACTS / "site-atom-page.png"))
    link.click()
    _wait(lambda: browser.current_url.endswith("/interviews/2026-03-04-alice.html#t=12"), what="the transcript page")
    _wait(lambda: abs(_current_time(browser) - 12.0) < 0.25, what="audio.currentTime == 12")
    highlighted = browser.find_element(By.CSS_SELECTOR, ".kb-seg.kb-current")
    assert highlighted.get_attribute("id") == "t-12"
    browser.save_screenshot(str(ARTIFACTS / "site-transcript-t12.png"))

    # a timestamp clicked on the transcript page seeks (and plays) from there
    stamp = browser.find_element(By.CSS_SELECTOR, '.kb-turn a.kb-time[href="#t=31"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", stamp)
    stamp.click()
    _wait(lambda: 31.0 <= _current_time(browser) < 34.0, what="audio.currentTime == 31 after a click")
    assert browser.current_url.endswith("#t=31")
    assert browser.find_element(By.CSS_SELECTOR, ".kb-seg.kb-current").get_attribute("id") == "t-31"
    browser.save_screenshot(str(ARTIFACTS / "site-transcript-t31.png"))


def test_pages_load_without_errors_or_outside_requests(served, browser):
    """Every request the browser makes goes to the local server, and the console stays clean."""
    import json

    base, _ = served
    browser.get_log("performance")  # drop what earlier tests left
    for page, shot in [
        ("review-queue.html", "site-review-queue.png"),
        ("coverage.html", "site-coverage.png"),
        ("browse/tags.html", None),
        ("interviews/2026-03-04-alice.html#t=20", None),
    ]:
        browser.get(f"{base}/{page}")
        _wait(lambda: browser.execute_script("return document.readyState") == "complete", what=page)
        if shot:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / shot))
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], (page, severe)
    time.sleep(0.5)
    urls = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    assert urls and all(u.startswith((base, "data:", "blob:")) for u in urls), sorted(urls)


def test_kb_site_serve_answers_over_http(tmp_path):
    import os
    import signal
    import socket
    import sys
    import urllib.request

    root = tmp_path / "ws"
    shutil.copytree(DATA / "workspace", root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--workspace",
            str(root),
            "site",
            "--serve",
            "--dev-addr",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:

        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/review-queue.html", timeout=2) as resp:
                    return resp.read().decode("utf-8")
            except OSError:
                return None

        html = _wait(page, timeout=60, what="kb site --serve")
        assert "Review queue" in html and "Sync storm after a cluster upgrade" in html
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert b"Serving the review site on http://127.0.0.1" in err
