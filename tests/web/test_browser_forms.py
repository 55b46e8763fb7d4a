"""The upload form and a failed job's page as a person sees them in headless Chromium: a file
larger than the server takes is refused before sending, with a message saying what is accepted
and the typed fields kept; a failed job's reason wraps on a phone, with its options and the
re-sending rule. axe-core and the 390 px overflow check run on both (Visitor.check)."""

from __future__ import annotations

from tests.helpers import DATA
from tests.web import test_browser_e2e as e2e
from tests.web.test_browser_e2e import expect

pytestmark = e2e.pytestmark
browser, visitor = e2e.browser, e2e.visitor  # the fixtures


def _login(visitor, key: str) -> None:
    visitor.go("/login")
    visitor.page.fill("#hashtag", key)
    visitor.page.click("button[type=submit]")


def test_an_over_size_file_is_refused_before_sending(visitor, make):
    page = visitor.page
    _, key = make.observatory()
    name = make.alert()
    _login(visitor, key)
    visitor.go(f"/submit?EventID={name}")
    limit = int(page.get_attribute("#sexCat", "data-max-bytes"))
    assert limit > 40_000_000  # the server's 50 MB, less room for the other fields
    frame = DATA / "gaia-demo" / "frame.cat"
    # the same check with a limit below this file's size (a 50 MB file is slow to hand over)
    page.evaluate("() => { document.getElementById('sexCat').dataset.maxBytes = '1000'; }")
    page.fill("#MJD", "61000.25")
    page.fill("#comment", "kept")
    page.set_input_files("#sexCat", str(frame))
    expect(page.locator("#file-error")).to_contain_text("FITS images up to 0 MB")
    expect(page.locator("#file-error")).to_contain_text("frame.cat is")
    page.click("#submit")
    page.wait_for_timeout(300)
    assert "/submit" in page.url  # nothing was sent
    assert page.input_value("#comment") == "kept" and page.input_value("#MJD") == "61000.25"
    visitor.check("upload-too-large")
    page.evaluate(f"() => {{ document.getElementById('sexCat').dataset.maxBytes = '{limit}'; }}")
    page.set_input_files("#sexCat", str(DATA / "gaia-demo" / "truth.json"))  # another file
    expect(page.locator("#file-error")).to_be_hidden()


def test_a_failed_job_page_on_a_phone(visitor, make):
    page = visitor.page
    obs, _ = make.observatory()
    name = make.alert()
    reason = "forceFilter=APASS/V: no APASS V stars matched the catalogue within 2″ " * 3
    job_id = make.failed_job(name, obs, reason.strip(), "N1_0042_R.fits.fz", force_filter="APASS/V")
    visitor.go(f"/jobs/{job_id}")
    assert page.inner_text("#file-name") == "N1_0042_R.fits.fz"
    assert "APASS/V" in page.inner_text("#job-options")
    assert "retried" in page.inner_text("#resend")
    page.set_viewport_size({"width": 390, "height": 844})
    wrapped = page.evaluate(
        "() => { const e = document.getElementById('error-log');"
        " return e.scrollWidth <= e.clientWidth + 1; }"
    )
    assert wrapped  # the whole reason is readable without scrolling it
    visitor.check("job-failed")
