"""The page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium) draws a 7 on the canvas with real pointer events, and the prediction and
every layer's pictures appear. The screenshot goes to the test's folder; with
``LENET5_DEMO_SCREENSHOT=docs/demo.png`` also there, and ``LENET5_DEMO_CHECKPOINT`` serves a
trained checkpoint instead of an untrained one (how docs/demo.png is made)."""

import base64
import os
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium/chromedriver installed (apt-get install chromium chromium-driver; .ci/run does)",
)
# What the page draws: input, C1 6, S2 6, C3 16, S4 16, the C5 strip, F6 (+ the RBF code).
MAPS = {"rbf": 1 + 6 + 6 + 16 + 16 + 1 + 2, "linear": 1 + 6 + 6 + 16 + 16 + 1 + 1}


@pytest.fixture
def demo(make_checkpoint, tmp_path: Path):
    """``python -m lenet5.demo CKPT --port 0`` as a user starts it; yields its address."""
    checkpoint = os.environ.get("LENET5_DEMO_CHECKPOINT") or str(make_checkpoint("classic"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lenet5.demo", checkpoint, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 120)
        line = process.stdout.readline() if ready else ""
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert found, f"the demo did not start: {line!r} {process.stderr.read() if process.poll() else ''}"
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1320,860")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def draw_a_seven(driver, pad) -> None:
    """Mouse down, the bar from left to right, the stroke down to the lower left, mouse up: real
    input events, which Chromium turns into the pointer events the page listens to."""
    from selenium.webdriver.common.action_chains import ActionChains

    strokes = ActionChains(driver, duration=40)
    strokes.move_to_element_with_offset(pad, -80, -90).click_and_hold()
    for _ in range(8):
        strokes.move_by_offset(20, 0)
    for _ in range(10):
        strokes.move_by_offset(-10, 20)
    strokes.release().perform()


def test_drawing_a_digit_shows_the_prediction_and_every_layer(demo: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(demo + "/")
    state = "return document.body.dataset.state"
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(state) == "ready")
    pad = browser.find_element(By.ID, "pad")
    draw_a_seven(browser, pad)

    # The page's final answer is the server's answer for what is on the canvas now.
    drawn = base64.b64decode(browser.execute_script("return pad.toDataURL('image/png')").split(",", 1)[1])
    expected = httpx.post(demo + "/predict", content=drawn, timeout=60).json()
    digit = browser.find_element(By.ID, "digit")
    WebDriverWait(browser, 60).until(lambda d: digit.text == str(expected["digit"]))
    assert browser.execute_script(state) == "answered"

    maps = browser.find_elements(By.CSS_SELECTOR, "#layers canvas.map")
    assert len(maps) == MAPS[expected["head"]]
    # Every picture is drawn: its canvas has the layer's shape and more than one grey level
    # somewhere in each layer.
    levels = browser.execute_script(
        """return [...document.querySelectorAll('#layers .layer')].map(layer =>
             [...layer.querySelectorAll('canvas.map')].map(c => {
               const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               const seen = new Set(); for (let i = 0; i < data.length; i += 4) seen.add(data[i]);
               return [c.width, c.height, seen.size];
             }));"""
    )
    sizes = [[size[:2] for size in layer] for layer in levels]
    shapes = [(1, 32), (6, 28), (6, 14), (16, 10), (16, 5)]
    assert sizes[:5] == [[[side, side]] * count for count, side in shapes]
    assert sizes[5] == [[120, 1]]
    assert sizes[6][0] == [7, 12]
    assert all(max(size[2] for size in layer) > 1 for layer in levels), levels
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    assert len(bars) == 10 and "best" in bars[expected["digit"]].get_attribute("class")
    status = browser.find_element(By.ID, "status").text
    assert status.startswith(f"the network reads {expected['digit']} ")

    screenshot = tmp_path / "demo.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("LENET5_DEMO_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["LENET5_DEMO_SCREENSHOT"])
    print(f"page answered {status!r}; screenshot {screenshot}")

    browser.find_element(By.ID, "clear").click()
    assert digit.text == "?" and not browser.find_elements(By.CSS_SELECTOR, "#layers canvas.map")
