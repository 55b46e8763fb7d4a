"""The whole browser story in headless Chromium against the real web tier (gunicorn) and a real
worker: log in, add an alert with an awkward name, upload a catalogue with an ISO date, watch the
job page update itself, explore the interactive light curve, sort and filter the lists, withdraw
the point; and the bad paths (bad hashtag, javascript: URL, past-the-end page, unknown alert).

Every page is checked with axe-core (vendored by npm: package.json) for serious or critical
accessibility violations, must not overflow a 390 px screen sideways, must raise no CSP violation,
and is screenshotted at 1280 and 390 px into tests/artifacts/."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ARTIFACTS, DATA, ROOT
from web.dates import date_obs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
GAIA = DATA / "gaia-demo"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists() and shutil.which("chromium") is None,
        reason="Debian's chromium is not installed (deploy/bootstrap.sh installs it for make test)",
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="axe-core is not installed: `npm install` (deploy/bootstrap.sh)"
    ),
]


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def shot(page, name: str) -> None:
    """A full-page screenshot into tests/artifacts/ (also used by test_docs_browser.py)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class Visitor:
    """A browser tab that records console errors (CSP violations among them) and checks pages."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(20_000)
        # Injected by the DevTools protocol, so the page's CSP does not apply to axe itself.
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str, status: int = 200):
        resp = self.page.goto(self.base + path)
        assert resp.status == status, (path, resp.status)
        return resp

    def check(self, name: str) -> None:
        """axe-core, no sideways overflow at 390 px, no CSP errors; screenshots at both widths."""
        page = self.page
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(150)  # let the Bokeh plot re-layout
            shot(page, f"{name}-{width}")
            if width == 390:
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, f"{name}: the page is {overflow}px wider than a phone"
        page.set_viewport_size({"width": 1280, "height": 900})
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
                 .filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => ({id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
        )
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"
        csp = [e for e in self.errors if "Content Security Policy" in e or "Refused to" in e]
        assert csp == [], f"{name}: {csp}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def visitor(browser, live_server):
    v = Visitor(browser, live_server)
    yield v
    v.close()


def _post(url: str, fields: dict, file: Path) -> dict:
    """A script's multipart upload (curl -F), with only the standard library."""
    boundary = secrets.token_hex(8)
    parts = []
    for k, v in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="sexCat"; filename="{file.name}"'
        "\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + file.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        url,
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_observer_journey(visitor, observatory, worker):
    page = visitor.page
    truth = json.loads((GAIA / "truth.json").read_text())
    name = f"SN 2026/{secrets.token_hex(2)} “Ω”"

    visitor.go("/")
    assert "photometric calibration server" in page.content()
    assert page.locator("nav[aria-label=Main] a[aria-current=page]").inner_text() == "calserv"
    visitor.check("home")

    # a wrong hashtag is refused on the form, then the right one logs in
    page.click("#login-link")
    page.fill("#hashtag", "not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("#form-error")).to_be_visible()
    visitor.check("login-error")
    page.fill("#hashtag", observatory["hashtag"])
    page.click("button[type=submit]")
    assert page.inner_text("#who") == observatory["name"]

    # a javascript: URL is refused; an alert with '/', quotes and unicode in its name is added
    visitor.go("/newevent")
    page.fill("#EventID", f"ivo://browser/{secrets.token_hex(4)}")
    page.fill("#name", name)
    page.fill("#ra", str(truth["target_ra"]))
    page.fill("#dec", str(truth["target_dec"]))
    page.fill("#url", "javascript:alert(document.domain)")
    page.click("#newevent-form button[type=submit]")
    expect(page.locator("#form-error")).to_contain_text("url must be an http(s) address")
    visitor.check("newevent-error")
    page.fill("#url", "https://example.org/alert")
    page.click("#newevent-form button[type=submit]")
    page.wait_for_url(re.compile(r"/alerts/\d+-sn-2026-"))
    alert_url = page.url
    assert page.inner_text("h1") == name
    assert page.get_attribute("a[rel~=noopener]", "href") == "https://example.org/alert"
    visitor.check("alert-empty")

    # upload with an ISO date: the form shows the MJD it will send
    page.click("text=upload a catalogue")
    assert page.input_value("#EventID") == name
    page.set_input_files("#sexCat", str(GAIA / "frame.cat"))
    iso = date_obs(truth["mjd"])  # e.g. 2025-11-28T20:24:00.000Z
    page.fill("#MJD", iso[:19])
    expect(page.locator("#mjd-preview")).to_contain_text(f"Will send MJD {truth['mjd']:.6f}")
    page.fill("#expTime", "60")
    page.fill("#comment", "from the browser")
    visitor.check("upload-form")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    assert page.get_attribute("#job-status", "aria-live") == "polite"
    expect(page.locator("#status")).to_have_text(re.compile("^(succeeded|failed)$"), timeout=90_000)
    assert page.inner_text("#status") == "succeeded", page.content()
    mag = float(page.inner_text("#mag").split("±")[0])
    assert abs(mag - truth["target_mag"]) <= 0.03
    assert iso in page.inner_text("#job-facts")
    job_url = page.url
    visitor.check("job")

    # the same observation sent by a script with noPlot=1 is the same job
    job_id = job_url.rsplit("/", 1)[1]
    again = _post(
        visitor.base + "/upload",
        {
            "EventID": name,
            "hashtag": observatory["hashtag"],
            "MJD": str(truth["mjd"]),
            "expTime": "60",
            "matchDist": "",
            "forceFilter": "no",
            "noPlot": "1",
            "outputFormat": "json",
        },
        GAIA / "frame.cat",
    )
    assert again["job_id"] == job_id

    # the interactive light curve: BokehJS from calserv, under the CSP, one point
    page.goto(alert_url)
    expect(page.locator("#lightcurve-interactive[data-ready='1']")).to_be_attached()
    expect(
        page.locator("#lightcurve-interactive .bk-Figure, #lightcurve-interactive div").first
    ).to_be_visible()
    assert page.locator("#points tbody tr").count() == 1
    assert "from the browser" in page.inner_text("#points")
    visitor.check("alert")

    # lists: sort by a column, filter by band
    visitor.go("/alerts?observed_only=1")
    page.click("#alerts th a:text('points')")
    assert page.get_attribute("#alerts th[aria-sort]", "aria-sort") == "ascending"
    visitor.check("alerts")
    visitor.go("/followup")
    page.fill("input[name=band]", "G")
    page.click("#followup-filter button")
    assert name in page.inner_text("#followups")
    visitor.check("followup")

    # withdraw the point: asked first, told what happened, and undone
    page.goto(alert_url)
    page.click("#points details.withdraw summary")
    page.click("#points form.withdraw button")
    page.wait_for_url(alert_url)
    assert page.inner_text("#npoints") == "0"
    expect(page.locator("#flash-withdrawn")).to_contain_text("has left the light curve")
    expect(page.locator("text=No follow-up data yet")).to_be_visible()
    visitor.check("withdrawn")
    page.click("#undo-withdraw")
    page.wait_for_url(alert_url)
    assert page.inner_text("#npoints") == "1"
    expect(page.locator("#flash-restored")).to_be_visible()

    # the observatory's own jobs: the browser upload is listed with its file name
    page.click("#my-jobs")
    expect(page.locator("#jobs")).to_contain_text("frame.cat")
    assert page.locator(f"#jobs a[href='/jobs/{job_id}']").count() == 1
    visitor.check("jobs")

    page.click("#logout")
    assert page.locator("#login-link").count() == 1


def test_bad_paths(visitor):
    page = visitor.page
    visitor.go("/alerts/NoSuchAlert", status=404)
    assert "unknown alert" in page.inner_text("h1")
    visitor.check("error-404")
    visitor.go("/alerts?page=999", status=404)
    visitor.go("/followup?sort=secret", status=422)
    # the login page guards the forms of logged-in observers
    visitor.go("/submit")
    assert "/login" in page.url
    visitor.check("login")
    visitor.go("/newevent")
    assert "/login" in page.url


def test_stored_javascript_url_never_runs(visitor, make):
    """A row stored before URLs were checked: no link, and a click on anything runs nothing."""
    name = make.alert(url="javascript:document.title='pwned'")
    visitor.go(f"/alerts/{name}")
    assert page_has_no_javascript_links(visitor.page)
    assert visitor.page.title() != "pwned"


def page_has_no_javascript_links(page) -> bool:
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
    return not any(h.strip().lower().startswith("javascript:") for h in hrefs)


def test_interactive_light_curve(visitor, make):
    """Two observatories, three filters, a deep upper limit: BokehJS (served by calserv) draws
    it under the strict script policy, magnitudes inverted, the limit at its value, and the
    page's legend names the filters, observatories and limits."""
    tag = make.token()
    north, _ = make.observatory(f"North {tag}")
    south, _ = make.observatory(f"South {tag}")
    name = make.alert(f"Curve{tag}")
    for i, (obs, filt, survey) in enumerate(
        [(north, "V", "APASS"), (south, "G", "GaiaDR3"), (north, "r", "APASS")] * 3
    ):
        make.point(name, obs, 60100.0 + i, 15.0 + 0.1 * i, filt=filt, survey=survey)
    make.point(name, south, 60110.0, 21.5, limit=True, filt="G", survey="GaiaDR3")
    visitor.go(f"/alerts/{name}")
    page = visitor.page
    expect(page.locator("#lightcurve-interactive[data-ready='1']")).to_be_attached()
    plot = page.evaluate(
        """() => {
             const fig = Bokeh.documents[0].roots()[0];
             return {start: fig.y_range.start, end: fig.y_range.end,
                     label: fig.left[0].axis_label};
           }"""
    )
    assert plot["start"] > plot["end"]  # inverted: brighter up
    assert plot["start"] > 21.5  # the deep limit is drawn at its value, inside the range
    legend = {
        kind: page.locator(f"#lightcurve-legend button[data-kind={kind}]").all_inner_texts()
        for kind in ("filter", "observatory", "limit")
    }
    assert legend == {"filter": ["G", "V", "r"], "observatory": [north, south],
                      "limit": ["upper limit"]}  # fmt: skip
    assert plot["label"] == "magnitude (Vega: G, V; AB: r)"
    visitor.check("alert-interactive")
