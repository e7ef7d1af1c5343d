"""GraphiQL in a real browser: headless Chromium (the system's, never a downloaded one) opens
/graphql on `divide-support serve` on 127.0.0.1 with the network closed, a query typed there
with a bearer token in the headers editor answers, and nothing broke the Content-Security-Policy
or left 127.0.0.1.

Skips when Chromium is not installed, unless DIVIDE_SUPPORT_REQUIRE_BROWSER=1 (CI) makes that
a failure."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from browser import INTERNAL, chrome, start_server

from divide_support.core.actor import Role

QUERY = "{ me { email role } }"


@pytest.fixture
async def server(database, tmp_path):
    """`divide-support serve` on the test database, as production runs it (DATABASE_URL set)
    with GraphiQL and introspection switched on."""
    async for base in start_server(database, tmp_path, GRAPHIQL="true",
                                   GRAPHQL_INTROSPECTION="true"):
        yield base


def _editor_value(driver: Any, selector: str) -> str:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.CodeMirror.getValue() : null;",
        selector)


def _drive(base: str, token: str, screenshot: Path) -> dict[str, Any]:
    """Everything a person does, and what the browser saw meanwhile."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="divide-support-chromium-") as profile:
        driver = chrome(profile, width=1400, height=900)
        try:
            # A listener from before the page's first script: every CSP violation it reports.
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
                window.__cspViolations = [];
                document.addEventListener("securitypolicyviolation", (e) => {
                  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
                });"""})
            driver.get(f"{base}/graphql")
            wait = WebDriverWait(driver, 30)
            query_editor = ".graphiql-query-editor .CodeMirror"
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, query_editor))
            # the schema arrived (the documentation explorer can open)
            wait.until(lambda d: d.execute_script(
                "return !!document.querySelector('.graphiql-logo')"))

            # type the query
            driver.find_element(By.CSS_SELECTOR, query_editor).click()
            editor = driver.switch_to.active_element
            editor.send_keys(Keys.CONTROL, "a")
            editor.send_keys(Keys.DELETE)
            editor.send_keys(QUERY)
            typed_query = _editor_value(driver, query_editor)

            # the bearer token in the headers editor
            tabs = [b for b in driver.find_elements(By.CSS_SELECTOR, ".graphiql-editor-tools button")
                    if b.text.strip() == "Headers"]
            tabs[0].click()
            headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, headers_editor))
            driver.find_element(By.CSS_SELECTOR, headers_editor).click()
            driver.switch_to.active_element.send_keys(f'{{"Authorization": "Bearer {token}"}}')
            typed_headers = _editor_value(driver, headers_editor)

            driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
            response_editor = ".graphiql-response .CodeMirror"
            wait.until(lambda d: "email" in (_editor_value(d, response_editor) or ""))
            answer = _editor_value(driver, response_editor)

            # a dialog (it injects the one inline style the CSP allows by hash)
            driver.find_element(By.CSS_SELECTOR, "button[aria-label='Open settings dialog']").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".graphiql-dialog"))
            time.sleep(0.5)
            driver.save_screenshot(str(screenshot))
            violations = driver.execute_script("return window.__cspViolations")
            console = driver.get_log("browser")
            network = [json.loads(entry["message"])["message"]
                       for entry in driver.get_log("performance")]
            title = driver.title
        finally:
            driver.quit()
    return {"typed_query": typed_query, "typed_headers": typed_headers, "answer": answer,
            "violations": violations, "console": console, "network": network, "title": title}


async def test_graphiql_works_offline_under_the_csp(server, town, tmp_path):
    token = town.tokens[Role.COORDINATOR]
    seen = await asyncio.to_thread(_drive, server, token, tmp_path / "graphiql.png")

    assert seen["title"] == "GraphiQL — divide-support"
    assert seen["typed_query"] == QUERY, seen["typed_query"]
    assert json.loads(seen["typed_headers"]) == {"Authorization": f"Bearer {token}"}
    assert json.loads(seen["answer"]) == {
        "data": {"me": {"email": "hiratsuka-coordinator@example.jp", "role": "COORDINATOR"}}}

    assert seen["violations"] == []
    problems = [entry for entry in seen["console"]
                if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
                or "Permissions-Policy" in entry["message"]]
    assert problems == []

    requests = [event["params"] for event in seen["network"]
                if event["method"] == "Network.requestWillBeSent"]
    urls = [r["request"]["url"] for r in requests]
    left = [url for url in urls if not url.startswith(f"{server}/") and not url.startswith(INTERNAL)]
    assert left == [], "requests that left 127.0.0.1"
    assert not [e for e in seen["network"] if e["method"] == "Network.webSocketCreated"]
    loaded = {url.removeprefix(server) for url in urls if url.startswith(server)}
    assert {"/graphql", "/static/vendor/graphiql/graphiql.min.js",
            "/static/vendor/graphiql/graphiql.min.css", "/static/graphiql/graphiql-init.js",
            "/static/vendor/graphiql/react.production.min.js",
            "/static/vendor/graphiql/react-dom.production.min.js"} <= loaded
    # the query went out with the token from the headers editor
    sent = [r["request"] for r in requests if r["request"]["url"] == f"{server}/graphql"
            and r["request"]["method"] == "POST" and "me" in r["request"].get("postData", "")]
    assert sent and sent[-1]["headers"].get("Authorization") == f"Bearer {token}"
