"""A real headless browser for the dashboard's tests: Debian's chromium and chromium-driver, driven by selenium.

Without them the tests are skipped with the reason, except in CI (`CI` set), where a missing browser is a failure:
.ci/run installs both.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from berth_cli.client import Api
from berth_cli.ui import UiServer

CHROMIUM = os.environ.get("BERTH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BERTH_CHROMEDRIVER", "/usr/bin/chromedriver")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (requirements-dev.txt)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and shutil.which(os.path.basename(path)) is None:
            return f"{path} is missing: apt-get install {package} (.ci/run does)"
    return None


def require_browser() -> None:
    """Skip the test outside CI when the browser is missing; fail it in CI."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the dashboard's browser tests must run in CI: {missing}")
        pytest.skip(f"no headless browser: {missing}")


@contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A headless chromium session (see require_browser)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium") or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver_path = CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which("chromedriver") or CHROMEDRIVER
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def dashboard(api: Api, refresh_seconds: float = 1.0) -> Iterator[UiServer]:
    """`berth ui`'s server on a free loopback port, in a thread, stopped on exit."""
    server = UiServer(api, port=0, refresh_seconds=refresh_seconds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def console_errors(driver: Any) -> list[str]:
    """What the page logged as errors (a script error, a refused resource) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def wait_for(what: str, check: Callable[[], Any], seconds: float = 60.0, every: float = 0.2) -> Any:
    """Poll `check` until it returns something true; fail naming `what` (and the last error) when it never does."""
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # selenium's stale elements and the like, while the page re-renders
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))
