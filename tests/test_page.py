"""The web page in a real browser: headless Chromium (Debian's, with its chromedriver) driven by
Selenium types sentences, and the translations, n-best lists and heat map must appear, equal
to the export's own. `.ci/run` installs Chromium; elsewhere the test is skipped without it."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.inference.exported import load_export
from tests.serving import running_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="no chromium and chromedriver (apt-get install chromium chromium-driver)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    # A driver path given: Selenium Manager, which would download one, is not run.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _expected(export_dir, texts):
    export = load_export(export_dir)
    out = export.signatures["translate_options"](
        text=tf.constant(texts),
        beam_size=tf.constant(3),
        alpha=tf.constant(0.6),
        n_best=tf.constant(2),
    )
    best = out["translations"].numpy()[:, 0]
    attention = export.signatures["attention"](text=tf.constant(texts), translation=best)
    return out, {key: value.numpy() for key, value in attention.items()}


def _set(browser, element_id, text):
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _heatmap(browser):
    from selenium.webdriver.common.by import By

    table = browser.find_element(By.ID, "heatmap")
    columns = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")][1:]
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    pieces = [row.find_element(By.TAG_NAME, "th").text for row in rows]
    weights = [
        [float(cell.get_attribute("data-weight")) for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in rows
    ]
    return columns, pieces, weights


def test_the_page_translates_and_shows_the_nbest_list_and_the_heat_map(tiny_run, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    texts = ["dreihundert", "siebenhundertelf"]
    export_dir = tiny_run[0] / "export"
    out, attention = _expected(export_dir, texts)
    with running_server(export_dir) as (url, _):
        browser.get(url + "/")
        browser.find_element(By.ID, "source").send_keys("\n".join(texts))
        _set(browser, "beam-size", "3")
        _set(browser, "n-best", "2")
        browser.find_element(By.ID, "translate").click()
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".result")) == len(texts))
        wait.until(lambda b: b.find_element(By.ID, "attention").is_displayed())
        results = browser.find_elements(By.CSS_SELECTOR, ".result")
        for i, result in enumerate(results):
            best = result.find_element(By.CLASS_NAME, "translation").text
            assert best == out["translations"].numpy()[i, 0].decode("utf-8")
            items = [li.text for li in result.find_elements(By.CSS_SELECTOR, ".nbest li")]
            assert items == [
                f"{t.decode('utf-8')}{s:.4f}"
                for t, s in zip(out["translations"].numpy()[i], out["scores"].numpy()[i])
            ]
        for i in (0, 1):  # the first sentence's map is shown; a click shows another's
            results[i].click()
            columns, pieces, weights = _heatmap(browser)
            source, target = attention["source_lengths"][i], attention["target_lengths"][i]
            assert columns == [p.decode() for p in attention["source_pieces"][i, :source]]
            assert pieces == [p.decode() for p in attention["target_pieces"][i, :target]]
            np.testing.assert_allclose(weights, attention["attention"][i, :target, :source])
        assert attention["source_lengths"][1] > 1 and attention["target_lengths"][1] > 1
        _set(browser, "n-best", "5")  # more than the beam: the server's error is shown
        browser.find_element(By.ID, "translate").click()
        wait.until(lambda b: b.find_element(By.ID, "error").text)
        assert "n_best=5: must be at most beam_size=3" in browser.find_element(By.ID, "error").text
