"""The web page at / in headless Chromium, against the real server process: type a sentence and
read its sentiment, type a prompt and read the generated text, ask why and see the words
coloured; screenshots are kept in test-artifacts/. Uses the system's chromium and chromedriver
(never a downloaded browser)."""

from __future__ import annotations

import shutil

import pytest
from conftest import ROOT
from serving_fixtures import CHARLM_TEXT, ServerProcess, shared_models, shared_neural_models

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(shared_models(tmp_path_factory, "both"), "--no-access-log") as server:
        yield server


@pytest.fixture(scope="module")
def neural_server(tmp_path_factory):
    """A server whose sentiment model can be explained (the pipeline's own lstm kind)."""
    with ServerProcess(shared_neural_models(tmp_path_factory), "--no-access-log") as server:
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--window-size=1100,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(browser, element_id: str, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        ec.visibility_of_element_located((By.ID, element_id)))


def type_into(browser, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def click(browser, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, element_id).click()


def test_sentiment_and_generation_in_the_page(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server.url + "/")
    assert browser.title == "textrnn"
    WebDriverWait(browser, 30).until(
        lambda b: "sentiment / tiny" in b.find_element(By.ID, "models").text)

    type_into(browser, "sentiment-text", "a great film, wonderful acting")
    click(browser, "sentiment-submit")
    assert wait_for(browser, "sentiment-label").text == "positive"
    probability = float(browser.find_element(By.ID, "sentiment-probability").text)
    assert 0.5 < probability <= 1.0

    type_into(browser, "sentiment-text", "terrible plot and bad music")
    click(browser, "sentiment-submit")
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "sentiment-label").text == "negative")
    assert float(browser.find_element(By.ID, "sentiment-probability").text) < 0.5

    type_into(browser, "prompt", "En un lugar")
    Select(browser.find_element(By.ID, "strategy")).select_by_value("greedy")
    type_into(browser, "length", "30")
    click(browser, "generate-submit")
    generated = wait_for(browser, "generated-text").text
    # textContent keeps every character; .text trims the ends of what is shown
    content = browser.find_element(By.ID, "generated-text").get_attribute("textContent")
    assert len(content) == 30 and set(content) <= set(CHARLM_TEXT), generated
    assert browser.find_element(By.ID, "generate-result").text.startswith("En un lugar")

    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serving-page.png"))


def test_page_shows_the_service_error(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    type_into(browser, "prompt", "ЖЖЖ")            # no character the model knows
    click(browser, "generate-submit")
    result = browser.find_element(By.ID, "generate-result")
    WebDriverWait(browser, 30).until(lambda b: "unknown_characters" in result.text)
    assert result.get_attribute("class") == "error"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "serving-page-error.png"))


def test_why_colours_each_word_by_its_attribution(neural_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(neural_server.url + "/")
    WebDriverWait(browser, 30).until(
        lambda b: "sentiment / lstm" in b.find_element(By.ID, "models").text)
    type_into(browser, "sentiment-text", "Great film, wonderful acting!")
    click(browser, "sentiment-explain")
    click(browser, "sentiment-submit")
    wait_for(browser, "sentiment-words")
    assert browser.find_element(By.ID, "sentiment-label").text == "positive"
    words = browser.find_elements(By.CSS_SELECTOR, "#sentiment-words .word")
    assert [w.text for w in words] == ["great", "film", "wonderful", "acting"]   # as read
    shades = {w.text: w.value_of_css_property("background-color") for w in words}
    assert all(shade.startswith("rgba(") and not shade.endswith(", 0)")
               for shade in shades.values()), shades
    strongest = max(words, key=lambda w: float(w.value_of_css_property("background-color")
                                               .rsplit(",", 1)[1].rstrip(")")))
    assert strongest.text in {"great", "wonderful"}
    assert "toward" in strongest.get_attribute("class")
    assert strongest.get_attribute("title").startswith(f"{strongest.text}: +")
    assert "towards positive" in strongest.get_attribute("title")
    legend = browser.find_element(By.ID, "sentiment-legend").text
    assert "pushed towards positive" in legend and "against it" in legend
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serving-page-explain.png"))


def test_why_is_off_when_the_model_cannot_be_explained(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")             # the tiny fixture model: not the project's kind
    WebDriverWait(browser, 30).until(
        lambda b: not b.find_element(By.ID, "sentiment-explain").is_enabled())
