"""The staff console in a real browser: `divide-support serve` on the test database, the
system's headless Chromium (never a downloaded one) driven by Selenium, axe-core (vendored in
tests/vendor/axe-core) run inside the page, screenshots in the test output folder.

Skips when Chromium is not installed, unless DIVIDE_SUPPORT_REQUIRE_BROWSER=1 (CI) makes that
a failure."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD
from conftest import database_url as _url
from test_cli import _free_port, _start_serve

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# Screenshots of the main pages land here (CI keeps the folder as the run's output).
OUTPUT = Path(os.environ.get("DIVIDE_SUPPORT_TEST_OUTPUT",
                             Path(__file__).resolve().parent.parent / "test-output"))
# Browser-internal schemes: nothing there goes over the network.
INTERNAL = ("data:", "blob:", "about:", "chrome:", "chrome-untrusted:", "devtools:",
            "chrome-extension:")


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    reason = (f"headless Chromium is not available ({', '.join(missing)} missing; "
              "apt-get install chromium chromium-driver)")
    if os.environ.get("DIVIDE_SUPPORT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and DIVIDE_SUPPORT_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.3)


async def start_server(database: Any, tmp_path: Path, **settings: str):
    """`divide-support serve` on the test database, as production runs it; yields its base
    URL and stops it afterwards."""
    require_browser()  # before a server is started for nothing
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(DATABASE_URL=_url(database, database.database), PUBLIC_BASE_URL=base,
               LOG_LEVEL="WARNING", SMS_BACKEND="console", **settings)
    process = await asyncio.to_thread(_start_serve, env, tmp_path, port)  # logs in tmp_path
    try:
        await asyncio.to_thread(wait_for, f"{base}/healthz", 120)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()


def chrome(profile: str, *, width: int = 1366, height: int = 768) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic",
                     f"--user-data-dir={profile}", f"--window-size={width},{height}",
                     "--lang=ja"):
        options.add_argument(argument)
    # the console (CSP reports land there too) and every network request
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Browser:
    """A person at the console: opens pages, fills fields by their label, presses buttons by
    their words, reads the page. Every page opened is checked with axe-core."""

    def __init__(self, base: str, driver: Any, name: str) -> None:
        self.base = base
        self.driver = driver
        self.folder = OUTPUT / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.checked: dict[str, list[dict[str, Any]]] = {}

    # --- moving around -------------------------------------------------------------------
    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base)

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def field(self, label: str, within: Any = None) -> Any:
        """The input a <label> with these words names (exact text, or the start of it)."""
        from selenium.webdriver.common.by import By

        scope = within or self.driver
        for candidate in scope.find_elements(By.TAG_NAME, "label"):
            words = candidate.text.replace("必須", "").strip()
            if words == label or words.startswith(label):
                target = candidate.get_attribute("for")
                if target:
                    return self.driver.find_element(By.ID, target)
                return candidate.find_element(By.CSS_SELECTOR, "input, select, textarea")
        raise AssertionError(f"no field labelled {label!r} on {self.path()}")

    def fill(self, label: str, value: str, within: Any = None) -> None:
        element = self.field(label, within)
        if element.tag_name == "select":
            from selenium.webdriver.support.ui import Select

            select = Select(element)
            try:
                select.select_by_visible_text(value)
            except Exception:
                select.select_by_value(value)
            return
        kind = element.get_attribute("type")
        if kind in ("checkbox", "radio"):
            if element.is_selected() != bool(value):
                element.click()
            return
        if kind in ("date", "datetime-local", "time"):
            # Chromium's date widgets take keystrokes, not text: set the value as a script would.
            self.driver.execute_script("arguments[0].value = arguments[1];", element, value)
            return
        element.clear()
        element.send_keys(value)

    def press(self, words: str, within: Any = None, *, navigates: bool = True) -> None:
        """Click the button or link with these words (the first one shown) and, as the pages
        have no scripts, wait for the next page to load (not for a download)."""
        from selenium.webdriver.common.by import By

        scope = within or self.driver
        for element in scope.find_elements(By.CSS_SELECTOR, "button, a, input[type=submit]"):
            label = (element.text or element.get_attribute("value") or "").strip()
            if label == words and element.is_displayed():
                self.driver.execute_script("window.__samePage = true;")
                element.click()
                if navigates:
                    self._wait_for_next_page()
                return
        raise AssertionError(f"no button or link {words!r} on {self.path()}")

    def _wait_for_next_page(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.driver.execute_script(
                "return window.__samePage === true || document.readyState !== 'complete';"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no new page after the click on {self.path()}")
            time.sleep(0.05)

    def row(self, words: str) -> Any:
        """The table row (or list item) that contains these words."""
        from selenium.webdriver.common.by import By

        for element in self.driver.find_elements(By.CSS_SELECTOR, "tr, li"):
            if words in element.text:
                return element
        raise AssertionError(f"no row with {words!r} on {self.path()}")

    def login(self, email: str, password: str = PASSWORD) -> None:
        self.open("/login")
        self.fill("メールアドレス", email)
        self.fill("パスワード", password)
        self.press("ログイン")

    # --- checks ----------------------------------------------------------------------------
    def check(self, name: str) -> None:
        """axe-core on the page as it is now (no violation of impact serious or critical),
        and a screenshot."""
        self.driver.execute_script(AXE.read_text("utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));")
        self.screenshot(name)
        self.checked[name] = result
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], f"accessibility problems on {name} ({self.path()}): {serious}"

    def screenshot(self, name: str) -> None:
        """The whole page, not just the window (the window keeps its size for the tests)."""
        width, height = self.driver.execute_script(
            "return [window.innerWidth, Math.max(document.documentElement.scrollHeight,"
            " window.innerHeight)];")
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": min(height, 6000), "deviceScaleFactor": 1,
            "mobile": False})
        try:
            self.driver.save_screenshot(str(self.folder / f"{name}.png"))
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def requests(self) -> list[str]:
        """Every URL the browser asked for since the last call."""
        events = [json.loads(entry["message"])["message"]
                  for entry in self.driver.get_log("performance")]
        return [event["params"]["request"]["url"] for event in events
                if event["method"] == "Network.requestWillBeSent"]

    def external(self, urls: list[str]) -> list[str]:
        return [url for url in urls
                if not url.startswith(f"{self.base}/") and not url.startswith(INTERNAL)]


def run_in_browser(base: str, name: str, walk: Any, *, width: int = 1366,
                   height: int = 768) -> Any:
    """Run `walk(browser)` in a fresh headless Chromium; returns what it returns."""
    with tempfile.TemporaryDirectory(prefix="divide-support-chromium-") as profile:
        driver = chrome(profile, width=width, height=height)
        driver.implicitly_wait(0)
        try:
            return walk(Browser(base, driver, name))
        finally:
            driver.quit()
