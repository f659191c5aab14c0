"""``t2v serve`` in a real browser: headless Chromium types a prompt, clicks Generate, waits for the
video to load and takes a screenshot; with T2V_UPDATE_DOCS=1 it becomes docs/serve_screenshot.png (a
plain test run leaves the tracked files alone). Skipped without selenium, chromium and chromedriver
(Debian/Ubuntu: apt-get install chromium chromium-driver)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "serve_screenshot.png"
PROMPT = "a large red circle moving left"  # the demo prompt, a seen pair
START_S, GENERATE_S = 180, 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"t2v serve exited: {server.stdout.read()}")
        try:
            if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"t2v serve did not answer within {START_S} s")


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "t2v.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_generates_a_video_that_plays(server_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server_url)
    wait = WebDriverWait(browser, GENERATE_S)
    prompt = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#prompt textarea"))
    prompt.clear()
    prompt.send_keys(PROMPT)
    browser.find_element(By.CSS_SELECTOR, "#generate").click()
    ready = "const v = document.querySelector('#result-video video'); return v ? v.readyState : -1;"
    wait.until(lambda d: d.execute_script(ready) >= 2)  # HAVE_CURRENT_DATA: the first frame is decoded
    wait.until(lambda d: "Checker" in d.find_element(By.CSS_SELECTOR, "#result-info").text)
    wait.until(lambda d: d.execute_script("const i = document.querySelector('#result-sheet img');"
                                          "return i !== null && i.complete && i.naturalWidth > 0;"))
    size = browser.execute_script("const v = document.querySelector('#result-video video');"
                                  "return [v.videoWidth, v.videoHeight, v.duration];")
    assert size[:2] == [64, 64] and size[2] > 1.5, size  # 16 frames at 8 fps
    time.sleep(1)  # let the video play a little, so the screenshot shows it moving
    browser.set_window_size(1280, browser.execute_script("return document.documentElement.scrollHeight") + 140)
    screenshot = DOCS_SCREENSHOT if os.environ.get("T2V_UPDATE_DOCS") == "1" else tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
