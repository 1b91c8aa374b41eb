"""Headless Chromium from Debian's packages, driven by Selenium with an explicit driver path (Selenium
Manager would try to download one)."""

from __future__ import annotations

import json
import shutil
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def available() -> str | None:
    """None when the browser can run, else what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    return f"{', '.join(missing)} not installed: run tests/servers/install.sh" if missing else None


def start(user_data_dir: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                     "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
                     f"--user-data-dir={user_data_dir}", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL fetched since the last call (from the DevTools performance log), leaving out the browser's
    own chrome:// pages (its new-tab page loads lazily) and inline data: URLs, which fetch nothing."""
    urls = []
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("chrome://", "data:")):
                urls.append(url)
    return urls
