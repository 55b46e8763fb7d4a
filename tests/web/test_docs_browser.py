"""`/docs` in headless Chromium: Swagger UI renders every operation from the local assets with no
Content-Security-Policy violation (the page's CSP allows no inline or remote script)."""

from __future__ import annotations

import shutil

import pytest

from tests.web.test_browser_e2e import CHROMIUM, CHROMIUM_ARGS, shot

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (deploy/bootstrap.sh installs it for `make test`)",
)


def test_docs_page_renders_the_api_under_a_strict_csp(live_server):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        remote: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_server) or remote.append(r.url))
        page.goto(f"{live_server}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        shot(page, "api-docs")
        browser.close()
    assert any("/upload" in p for p in paths) and any("/jobs/{job_id}" in p for p in paths)
    assert not [m for m in console if "Content Security Policy" in m], console
    assert not [u for u in remote if not u.startswith("data:")], remote
