"""The whole browser story in headless Chromium against the real web tier and a real worker:
log in, upload a catalogue through the form, watch the job page until it has succeeded, and see the
point on the alert's light curve. Screenshots of the main pages go to tests/artifacts/."""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path

import pytest

from tests.helpers import ARTIFACTS, DATA, add_alert

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

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (deploy/bootstrap.sh installs it for `make test`)",
)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_observer_uploads_through_the_browser_and_sees_the_light_curve(
    app, live_server, observatory, page
):
    truth = json.loads((GAIA / "truth.json").read_text())
    name = f"Browser{secrets.token_hex(3)}"
    add_alert(app, f"ivo://browser/{name}", name, truth["target_ra"], truth["target_dec"])

    page.goto(live_server + "/")
    assert "photometric calibration server" in page.content()
    shot(page, "home")

    # log in with the hashtag; the form carries its CSRF token
    page.click("#login-link")
    page.fill("#hashtag", observatory["hashtag"])
    shot(page, "login")
    page.click("button[type=submit]")
    assert page.inner_text("#who") == observatory["name"]

    # upload the demo frame through the form: 303 to the job page
    page.goto(f"{live_server}/alerts/{name}")
    page.click("text=upload a catalogue")
    assert page.input_value("#EventID") == name
    page.set_input_files("#sexCat", str(GAIA / "frame.cat"))
    page.fill("#MJD", str(truth["mjd"]))
    page.fill("#expTime", "60")
    page.fill("#comment", "from the browser")
    shot(page, "upload-form")
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    # the job page refreshes itself until the job has ended
    expect(page.locator("#status")).to_have_text(re.compile("^(succeeded|failed)$"), timeout=90_000)
    assert page.inner_text("#status") == "succeeded", page.content()
    mag = float(page.inner_text("#mag").split("±")[0])
    assert abs(mag - truth["target_mag"]) <= 0.03
    plot = page.locator("img[alt='calibration plot']")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.decode().then(() => img.naturalWidth)") > 100
    shot(page, "job")

    # the point is on the alert's light curve
    page.click(f"text={name}")
    page.wait_for_url(f"**/alerts/{name}")
    assert page.inner_text("#npoints") == "1"
    assert page.locator("#points tr").count() == 2
    width = page.locator("#lightcurve").evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width >= 700
    shot(page, "alert")

    page.goto(f"{live_server}/alerts?observed_only=1")
    assert page.locator(f"#alerts a:text-is('{name}')").count() == 1
    shot(page, "alerts")
    page.goto(f"{live_server}/followup")
    assert name in page.inner_text("#followups")
    shot(page, "followup")
    page.goto(f"{live_server}/newevent")
    shot(page, "newevent")

    page.click("#logout")
    assert page.locator("#login-link").count() == 1
