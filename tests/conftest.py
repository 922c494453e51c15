"""Shared test setup: headless Debian Chromium for dash[testing]'s dash_duo browser tests."""
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_setup_options():
    """Chrome options for dash_duo (called by dash[testing]'s pytest plugin)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1440,900"):
        options.add_argument(arg)
    return options


def pytest_collection_modifyitems(config, items):
    """Browser tests need Chromium and chromedriver; CI installs them and must run them."""
    if shutil.which("chromedriver") and os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI: chromium and chromedriver are required for the browser tests")
    skip = pytest.mark.skip(reason="chromium/chromedriver not installed (bash scripts/install.sh --test)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
