"""Steps on the studio's page that both browser tests take: waiting for what the page shows,
switching tabs, typing and picking."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT_S = 120  # how long a step may take on a loaded machine; each wait ends when the page shows it


def wait_for(driver: webdriver.Chrome, css: str) -> WebElement:
    found: WebElement = WebDriverWait(driver, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def wait_text(driver: webdriver.Chrome, css: str, text: str) -> None:
    WebDriverWait(driver, WAIT_S).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )


def wait_for_value(driver: webdriver.Chrome, css: str, text: str, *, present: bool = True) -> None:
    """Until the field's value (a textarea's text) holds ``text`` (not ``present``: lacks it)."""
    has = ec.text_to_be_present_in_element_value((By.CSS_SELECTOR, css), text)
    WebDriverWait(driver, WAIT_S).until(has if present else ec.none_of(has))


def tab(driver: webdriver.Chrome, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#tabs button[data-tab="{name}"]').click()


def typed(driver: webdriver.Chrome, css: str, text: str) -> None:
    field = driver.find_element(By.CSS_SELECTOR, css)
    field.clear()
    field.send_keys(text)


def pick(driver: webdriver.Chrome, name: str, value: str) -> None:
    Select(driver.find_element(By.NAME, name)).select_by_value(value)
