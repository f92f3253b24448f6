"""The page in a real browser: headless Debian Chromium driven by selenium (chromedriver).

Loads the page, moves the seed and jaw sliders and checks that the image the page shows
changes (pixel difference of element screenshots), uploads a non-JSON file as the
settings file and sees the error message, and keeps a screenshot as an artefact (its
path is printed). Skips without gradio, selenium, chromium or chromedriver; the whole
browser part runs under a 60 s deadline, and the fixture stops the server.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                       "chromium-driver)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1300,1000"]


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _status(driver) -> str:
    return driver.find_element(By.ID, "status").text


def _wait_status(driver, predicate, what: str, timeout: float = 25, settle: float = 1.0) -> str:
    """Wait until the status satisfies `predicate` and then stays the same for `settle` seconds
    (so a render still queued behind cannot overwrite it later)."""
    import time

    end = time.monotonic() + timeout
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(_status(d)))
        stable_since, last = time.monotonic(), _status(driver)
        while time.monotonic() - stable_since < settle:
            if time.monotonic() > end:
                raise TimeoutException()
            time.sleep(0.2)
            now = _status(driver)
            if now != last:
                stable_since, last = time.monotonic(), now
    except TimeoutException:
        raise AssertionError(f"{what}: status is {_status(driver)!r} after {timeout} s") from None
    if not predicate(last):
        raise AssertionError(f"{what}: status changed on to {last!r}")
    return last


def _shown_image(driver) -> np.ndarray:
    """Pixels of the image element as the browser shows it."""
    img = driver.find_element(By.CSS_SELECTOR, "#image img")
    return np.asarray(Image.open(io.BytesIO(img.screenshot_as_png)).convert("RGB"), dtype=np.int16)


def _press(driver, elem_id: str, key) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=range]").send_keys(key)


def test_page_in_chromium(served_demo, browser, tmp_path, capsys, deadline):
    artefacts = Path(tempfile.gettempdir()) / "next3d-demo-artefacts"
    artefacts.mkdir(exist_ok=True)
    with deadline(60, "browser test"):
        browser.get(served_demo.url)
        first_status = _wait_status(browser, lambda s: "rendered in" in s, "first render")
        assert first_status.startswith("seed 0 · 64×64")
        assert "This network is untrained" in browser.find_element(By.ID, "untrained").text
        before = _shown_image(browser)
        assert before.std() > 1.0  # an image, not an empty box

        _press(browser, "seed", Keys.ARROW_RIGHT)
        _wait_status(browser, lambda s: s.startswith("seed 1 ·"), "seed slider")
        after_seed = _shown_image(browser)
        assert after_seed.shape == before.shape and np.abs(after_seed - before).mean() > 2.0

        _press(browser, "jaw", Keys.END)
        status = _wait_status(browser, lambda s: "face changed" in s, "jaw slider")
        assert status.startswith("seed 1 ·")
        after_jaw = _shown_image(browser)
        assert np.abs(after_jaw - after_seed).max() > 0  # the mouth region moved

        not_settings = tmp_path / "holiday.png"
        not_settings.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        upload = browser.find_element(By.CSS_SELECTOR, "#settings_upload input[type=file]")
        browser.execute_script("arguments[0].style.display = 'block';", upload)
        upload.send_keys(str(not_settings))
        status = _wait_status(browser, lambda s: "Error" in s, "non-settings upload")
        assert "settings file holiday.png: not a JSON settings file" in status
        assert "Traceback" not in browser.page_source

        # The server still renders after the error.
        _press(browser, "seed", Keys.ARROW_RIGHT)
        _wait_status(browser, lambda s: s.startswith("seed 2 ·"), "seed slider after an error")

        shot = artefacts / "demo_page.png"
        browser.save_screenshot(str(shot))
        assert Image.open(shot).size[0] > 0
    with capsys.disabled():
        print(f"\nbrowser screenshot: {shot}")


def test_photo_tab_in_chromium(served_demo, browser, synthetic_photo, tmp_path, deadline):
    """Photo tab (present when next3d.fitting and dlib are installed): a synthetic face gives the
    crop and fit overlay; a non-image gives an error message."""
    pytest.importorskip("dlib")
    pytest.importorskip("next3d.fitting")
    with deadline(60, "browser photo test"):
        browser.get(served_demo.url)
        _wait_status(browser, lambda s: "rendered in" in s, "first render")
        tab = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Photo" in b.text)
        tab.click()

        def photo_status(d):
            return d.find_element(By.ID, "photo_status").text

        def upload(path):
            el = browser.find_element(By.CSS_SELECTOR, "#photo_upload input[type=file]")
            browser.execute_script("arguments[0].style.display = 'block';", el)
            el.send_keys(str(path))

        upload(synthetic_photo[0])
        WebDriverWait(browser, 40, poll_frequency=0.3).until(lambda d: "fitted" in photo_status(d)
                                                             or "Error" in photo_status(d))
        assert photo_status(browser).startswith("fitted: synthetic_face.png"), photo_status(browser)
        overlay = browser.find_element(By.CSS_SELECTOR, "#photo_overlay img")
        pixels = np.asarray(Image.open(io.BytesIO(overlay.screenshot_as_png)).convert("RGB"), dtype=np.int16)
        assert pixels.std() > 5.0  # a picture, not an empty box

        browser.find_element(By.CSS_SELECTOR, "#photo_upload button[aria-label='Clear']").click() \
            if browser.find_elements(By.CSS_SELECTOR, "#photo_upload button[aria-label='Clear']") else None
        notes = tmp_path / "notes.png"
        notes.write_text("a shopping list, not a photo")
        upload(notes)
        WebDriverWait(browser, 20, poll_frequency=0.3).until(lambda d: "Error" in photo_status(d))
        assert "notes.png" in photo_status(browser) and "Traceback" not in browser.page_source
