"""/docs renders in a real browser that cannot reach the internet, from assets the
API serves itself (issue 11: Swagger UI from a CDN was a blank page offline)."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.integration.service.stack import ServiceStack
from tests.support.browser import headless_chromium, is_local, requested_urls

pytestmark = pytest.mark.redis

# Swagger UI draws one block per operation; its path element carries the path as data.
SUBMIT = ".opblock-post .opblock-summary-path[data-path='/v1/executions']"


def test_swagger_ui_renders_the_operations_from_local_assets(api: ServiceStack) -> None:
    with headless_chromium() as browser:
        browser.get(f"{api.url}/docs")
        found = WebDriverWait(browser, 60).until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, SUBMIT))
        )
        assert found.text.replace("\u200b", "") == "/v1/executions"
        urls = requested_urls(browser)
    assert f"{api.url}/openapi.json" in urls
    assert any(url.endswith("/swagger-ui-bundle.js") for url in urls), urls
    assert [url for url in urls if not is_local(url)] == []


def test_no_redoc_page_that_would_reach_a_cdn(api: ServiceStack) -> None:
    # ReDoc's bundle fetches its logo from its CDN even when served locally, so it is not offered.
    assert httpx.get(f"{api.url}/redoc", timeout=10).status_code == 404
