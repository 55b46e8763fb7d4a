"""`/docs` in headless Chromium: Swagger UI renders every operation from the local assets with no
Content-Security-Policy violation (the page's CSP allows no inline or remote script), inside the
site's layout (viewport, navigation), with no serious axe-core violation and no sideways scroll
on a phone; its assets arrive compressed and cacheable for a year."""

from __future__ import annotations

import shutil

import pytest

from tests.web.test_browser_e2e import AXE, CHROMIUM, CHROMIUM_ARGS, shot

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (deploy/bootstrap.sh installs it for `make test`)",
)
SERIOUS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""


def test_docs_page_renders_the_api_under_a_strict_csp(live_server):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(path=str(AXE))
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        remote: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_server) or remote.append(r.url))
        encodings: dict[str, tuple] = {}
        page.on(
            "response",
            lambda r: encodings.__setitem__(
                r.url.split("?")[0].rsplit("/", 1)[-1],
                (r.headers.get("content-encoding"), r.headers.get("cache-control")),
            ),
        )
        page.goto(f"{live_server}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        shot(page, "api-docs")
        viewport = page.get_attribute("meta[name=viewport]", "content")
        nav = page.locator("nav[aria-label=Main] a").all_inner_texts()
        violations = page.evaluate(SERIOUS)
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(200)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        shot(page, "api-docs-390")
        browser.close()
    assert any("/upload" in p for p in paths) and any("/jobs/{job_id}" in p for p in paths)
    assert any(p.strip() == "/jobs" for p in paths)
    assert not [m for m in console if "Content Security Policy" in m], console
    assert not [u for u in remote if not u.startswith("data:")], remote
    assert viewport == "width=device-width, initial-scale=1"
    assert nav[:4] == ["calserv", "Alerts", "Observatories", "Follow-up"]
    assert violations == [], violations
    assert overflow <= 1
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "calserv.css", "docs.js"):
        encoding, cache = encodings[name]
        if name != "docs.js":  # under 500 bytes: not worth compressing
            assert encoding in ("br", "gzip"), (name, encoding)
        assert "max-age=31536000" in cache and "immutable" in cache, (name, cache)
