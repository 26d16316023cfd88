"""The chat page of ``kb serve`` in real headless Chromium (Debian's chromium + chromedriver via
selenium): a question, a follow-up that needs it, citations that open the atom, the console
clean and every request local; with a bearer key, the page asks for it and keeps it per tab."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.paths import TESTS_DIR
from tests.service.test_service import Server, export_bundle, make_workspace

CHROMIUM, CHROMEDRIVER = (shutil.which(n) for n in ("chromium", "chromedriver"))
ARTIFACTS = TESTS_DIR / "artifacts"
ATOM = "podman-build-hangs-when-the-dockerfile-contains-the-useradd-command"
KEY_ENV = "KB_TEST_CHAT_PAGE_KEY"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (apt)"),
]
pytest.importorskip("selenium")
pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from bundle_support import embedder

    base = tmp_path_factory.mktemp("chatpage")
    ws = make_workspace(base / "ws")
    return ws, export_bundle(ws, base / "dist" / "kb-chat.duckdb", embedder=embedder())


def serve(bundle, **flags):
    from bundle_support import embedder

    from pipeline.config import Settings
    from pipeline.service.app import create_app

    ws, path = bundle
    return Server(create_app(path, Settings.load(ws, **flags), embedder=embedder()))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions", "--disable-sync",
                "--no-first-run", "--window-size=1100,900"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


def _ask(browser, question: str, n: int):
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, "question")
    box.send_keys(question)
    browser.find_element(By.ID, "send").click()
    return _wait(lambda: (t := browser.find_elements(By.CSS_SELECTOR, ".turn.assistant")) and len(t) >= n
                 and t[n - 1].find_elements(By.CSS_SELECTOR, ".badge") and t[n - 1], what=f"answer {n}")  # fmt: skip


def test_ask_follow_up_and_open_a_citation(bundle, browser):
    from selenium.webdriver.common.by import By

    with serve(bundle) as srv:
        browser.get_log("performance")
        browser.get(srv.url + "/")
        assert browser.title == "kb chat"
        off = _ask(browser, "How do I back up Argo CD with Velero?", 1)
        assert "uncertain" in off.find_element(By.CSS_SELECTOR, ".badge").text
        assert off.find_elements(By.CSS_SELECTOR, ".citations") == []
        assert off.find_elements(By.CSS_SELECTOR, ".suggestions li")  # listed apart, not as citations
        first = _ask(browser, "podman build hangs at a useradd step", 2)
        assert "answered" in first.find_element(By.CSS_SELECTOR, ".badge").text
        follow = _ask(browser, "how do I fix that?", 3)
        assert "(about: podman build hangs at a useradd step)" in follow.find_element(By.CSS_SELECTOR, ".answered").text
        assert "uncertain" not in follow.find_element(By.CSS_SELECTOR, ".badge").text
        link = follow.find_element(By.CSS_SELECTOR, ".citations a")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "chat-page.png"))
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        link.click()
        _wait(lambda: browser.current_url.endswith(f"/v1/atoms/{ATOM}"), what="the atom")
        assert ATOM in browser.page_source
        urls = set()
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.add(message["params"]["request"]["url"])
        assert urls and all(u.startswith((srv.url, "data:")) for u in urls), sorted(urls)


def test_with_a_bearer_key_the_page_asks_for_it(bundle, browser, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.setenv(KEY_ENV, "s3cret")
    with serve(bundle, **{"serve.api_key_env": KEY_ENV}) as srv:
        browser.get(srv.url + "/")
        _wait(lambda: browser.find_element(By.ID, "key-box").is_displayed(), what="the key prompt")
        browser.find_element(By.ID, "key").send_keys("s3cret")
        browser.find_element(By.ID, "key-save").click()
        _wait(lambda: not browser.find_element(By.ID, "key-box").is_displayed(), what="the key accepted")
        answer = _ask(browser, "podman build hangs at a useradd step", 1)
        assert answer.find_elements(By.CSS_SELECTOR, ".citations a")
        assert browser.execute_script("return sessionStorage.getItem('kb-bearer-key')") == "s3cret"
        assert browser.execute_script("return localStorage.length") == 0
