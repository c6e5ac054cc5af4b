"""Headless Chromium for tests: Debian's chromium and chromedriver, driven by Selenium, offline.

Shared by every test that loads a page in a real browser (the API's /docs, the studio). The
driver is named explicitly and `SE_OFFLINE` is set, so Selenium Manager never downloads a driver
or a browser. Chromium is kept on this machine: every name resolves to nothing and every
non-loopback request goes to a closed local port, so a page that reaches for a CDN fails as it
would offline, and its attempt still shows in `requested_urls`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# What a page may load without leaving the machine: loopback, and the browser's own schemes.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension", "devtools"})

# Chromium phones home on its own (component updates, safe browsing, metrics): all of it is off,
# and whatever remains meets a resolver that finds nothing and a proxy that is not there.
_QUIET = (
    "--headless=new",
    "--no-sandbox",  # tests run as root, where Chromium's own sandbox refuses to start
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # loopback bypasses a proxy by default
    "--window-size=1280,1024",
)


def chromium_options() -> webdriver.ChromeOptions:
    """The options `headless_chromium` starts with; a test may add its own before starting."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in _QUIET:
        options.add_argument(argument)
    # The DevTools network events: every request the page made, answered or not.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return options


@contextmanager
def headless_chromium(
    options: webdriver.ChromeOptions | None = None,
) -> Iterator[webdriver.Chrome]:
    """A started headless Chromium, quit on exit; skipped (failed under CI) if not installed."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists() and shutil.which(binary.name) is None:
            missing(f"{binary} is not installed (scripts/setup.sh installs chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options or chromium_options())
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for since the last call (the performance log drains on read)."""
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[no-untyped-call]
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def is_local(url: str) -> bool:
    """True for a URL that stays on this machine: loopback, or a scheme with no network."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK_HOSTS
