"""The observatory pages and the light curve's offsets in headless Chromium against the real web
tier: the history plots render, and every page passes axe-core, fits a phone and raises no CSP
violation (the checks of `test_browser_e2e.Visitor`)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from db.models import Followup, Job, Observatory
from db.session import session_scope
from tests.web.conftest import make_alert, make_observatory, make_point

# The browser, the checked tab and the skip marks of the observer journey's test.
from tests.web.test_browser_e2e import browser, expect, pytestmark, visitor  # noqa: F401
from web.alert_registry import alert_key
from workers.instrument import rebuild


@pytest.fixture(scope="module")
def histories(app):
    """Two observatories (one with spaces in its name) with 8 frames each of one alert, their
    results carrying a colour term and FWHM, and their models built."""
    rng = np.random.default_rng(3)
    with app.app_context():
        names = [make_observatory(f"Hist Obs {rng.integers(1e6)}")[0], make_observatory()[0]]
        alert = make_alert()
        for night in range(8):
            for k, name in enumerate(names):
                point = make_point(
                    alert, name, 60200.0 + night + 0.1 * k,
                    15.0 + 0.1 * k + rng.normal(0, 0.01), mag_err=0.01, filt="R",
                )  # fmt: skip
                result = {"colour_term": 0.05 + rng.normal(0, 0.01), "colour_term_err": 0.01,
                          "fwhm": 1.8}  # fmt: skip
                job = select(Followup.job_id).where(Followup.id == point).scalar_subquery()
                with session_scope() as s:
                    s.execute(update(Job).where(Job.id == job).values(result=result))
    with session_scope() as s:
        ids = [s.scalar(select(Observatory.id).where(Observatory.name == n)) for n in names]
        for i in ids:
            assert rebuild(s, i, "R").n_frames == 8
    return {"names": names, "ids": ids, "alert": alert}


def test_observatory_pages_in_a_browser(visitor, histories):  # noqa: F811
    page = visitor.page
    visitor.go("/observatories?sort=-npoints")
    expect(page.locator("#observatories")).to_contain_text(histories["names"][0])
    visitor.check("observatories")

    key = alert_key(histories["ids"][0], histories["names"][0])
    assert key.startswith(f"{histories['ids'][0]}-")  # a name with spaces: <id>-<slug>
    page.locator(f"a[href='/observatories/{key}']").click()
    expect(page.locator("#instrument")).to_contain_text("+0.05")
    expect(page.locator("#observatory-history[data-ready='1']")).to_be_attached()
    expect(page.locator("#observatory-history canvas").first).to_be_visible()
    expect(page.locator("#frames tbody tr")).to_have_count(8)
    visitor.check("observatory")

    visitor.go(f"/alerts/{histories['alert']}")
    expect(page.locator("#offsets")).to_contain_text(histories["names"][0])
    expect(page.locator("#lightcurve-interactive[data-ready='1']")).to_be_attached()
    visitor.check("alert-offsets")
