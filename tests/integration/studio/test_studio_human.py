"""The studio in headless Chromium: a spec imported from a file (nested termination), a
problem shown next to its field, and a user proxy that asks its question in the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.integration.studio.conftest import Studio
from tests.integration.studio.page import tab, typed, wait_for, wait_text
from tests.support.scripted_openai import ScriptedOpenAI

SPEC = """\
version: 1
models:
  main: {{base_url: "{url}", model: helper-model, api_key_env: STUDIO_MAIN_KEY}}
agents:
  - {{type: assistant, name: helper, model: main, system_message: Ask the human for their name.}}
  - {{type: user_proxy, name: human}}
team: {{type: round_robin}}
termination:
  type: or
  conditions:
    - type: and
      conditions:
        - {{type: text_mention, text: THANKS, sources: [helper]}}
        - {{type: max_messages, max_messages: 3}}
    - {{type: max_messages, max_messages: 8}}
"""


def test_import_a_spec_and_answer_the_user_proxy_in_the_page(
    browser: webdriver.Chrome, studio: Studio, llm: ScriptedOpenAI, tmp_path: Path
) -> None:
    def greet(body: dict[str, Any]) -> str:
        assert "Ada" in str(body["messages"])  # the page's answer reached the model
        return "Hello Ada! THANKS"

    llm.script("helper-model", ["What is your name?", greet])
    driver = browser
    driver.get(studio.url)
    wait_for(driver, "body[data-ready='1']")
    tab(driver, "connections")
    typed(driver, "#model-name", "main")
    typed(driver, "#model-url", llm.url)
    typed(driver, "#model-model", "helper-model")
    typed(driver, "#model-key", "k-123")
    driver.find_element(By.CSS_SELECTOR, "#model-form button").click()
    wait_for(driver, 'tr[data-endpoint="main"]')

    tab(driver, "build")
    spec_file = tmp_path / "team.yaml"
    spec_file.write_text(SPEC.format(url=llm.url))
    driver.find_element(By.ID, "import-file").send_keys(str(spec_file))
    wait_text(driver, "#spec-status", "spec is valid")
    nested = Select(driver.find_element(By.NAME, "termination.conditions.0.type"))
    assert nested.first_selected_option.get_attribute("value") == "and"

    # A bad name typed in the form: the server's problem appears next to that field.
    name = driver.find_element(By.NAME, "agents.0.name")
    name.clear()
    name.send_keys("1helper")
    wait_text(driver, '.problem[data-for="agents.0.name"]', "should match pattern")
    assert "invalid" in (name.get_attribute("class") or "")
    assert "name: 1helper" in (driver.find_element(By.ID, "spec-text").get_attribute("value") or "")
    name.clear()
    name.send_keys("helper")
    wait_text(driver, "#spec-status", "spec is valid")

    tab(driver, "play")
    typed(driver, "#task", "Greet the human by name.")
    driver.find_element(By.ID, "run").click()
    question = wait_for(driver, ".card.input-request")
    question.find_element(By.TAG_NAME, "textarea").send_keys("Ada")
    question.find_element(By.TAG_NAME, "button").click()
    end = wait_for(driver, ".card.end")
    assert end.get_attribute("data-status") == "finished"
    assert "THANKS" in end.text
    human = driver.find_element(By.CSS_SELECTOR, '.card[data-source="human"]')
    assert "Ada" in human.text
    assert "answered" in (question.get_attribute("class") or "")
