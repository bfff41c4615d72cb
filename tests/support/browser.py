"""Debian's chromium, headless, driven by selenium through Debian's chromedriver (a test tool's download of a
browser of its own fails here)."""

from __future__ import annotations

import shutil
from typing import Any


def browser(javascript: bool = True) -> Any:
    """A new headless chromium (a selenium WebDriver); `javascript` False runs no script at all."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise RuntimeError("the browser tests need Debian's chromium and chromium-driver: run scripts/setup.sh as "
                           "root, or apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,2000"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(driver), options=options)
