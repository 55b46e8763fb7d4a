"""/followup, /alerts and /jobs as a person sees them in headless Chromium: at 1280 px every
column (name, date, magnitude ± error or "> limit", filter, observatory) is on screen without
scrolling sideways, even with a 97-character alert name; at 390 px each row is a card with the
column names beside the values and nothing wider than the phone. axe-core finds no serious
violation. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from tests.web import test_browser_e2e as e2e
from tests.web.test_browser_e2e import expect

pytestmark = e2e.pytestmark
browser, visitor = e2e.browser, e2e.visitor  # the fixtures

FITS = """(sel) => {
  const table = document.querySelector(sel);
  const cells = Array.from(table.querySelectorAll("tbody tr:first-child > *"));
  return {overflow: document.documentElement.scrollWidth - innerWidth,
          table: table.getBoundingClientRect().right,
          cells: cells.map(c => [c.dataset.label || "name", c.getBoundingClientRect().right]),
          display: getComputedStyle(table.querySelector("tbody tr")).display};
}"""


def _fits(page, selector: str, width: int) -> dict:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)
    got = page.evaluate(FITS, selector)
    assert got["overflow"] <= 1, (width, got)
    assert all(right <= width for _, right in got["cells"]), (width, got)
    return got


def test_lists_fit_at_1280_and_stack_on_a_phone(visitor, make):
    page = visitor.page
    tag = make.token()
    obs, key = make.observatory(f"Observatorio Astronómico Nacional de San Pedro Mártir {tag}")
    long_name = f"AT2026{tag}" + "x" * (97 - 6 - len(tag))
    make.alert(long_name)
    make.point(long_name, obs, 61000.5, 15.123, filt="r", survey="APASS")
    make.point(long_name, obs, 61001.5, 19.5, limit=True, filt="r", survey="APASS")

    visitor.go(f"/followup?alert={long_name[:20].lower()}")
    assert page.locator("#followups tbody tr").count() == 2
    text = page.inner_text("#followups")
    assert "15.123 ± 0.050" in text and "> 19.500" in text and "APASS" in text and obs in text
    assert _fits(page, "#followups", 1280)["display"] == "table-row"
    phone = _fits(page, "#followups", 390)
    assert phone["display"] == "block"  # a card per row
    first = page.locator("#followups tbody tr").first
    expect(first.locator("td[data-label=magnitude]")).to_be_visible()
    visitor.check("followup-list")

    visitor.go(f"/alerts?q={long_name[:20]}")
    text = page.inner_text("#alerts")
    assert "> 19.500" in text and obs in text  # the newest point: the limit
    _fits(page, "#alerts", 1280)
    assert _fits(page, "#alerts", 390)["display"] == "block"
    visitor.check("alert-list")

    page.goto(visitor.base + "/login")
    page.fill("#hashtag", key)
    page.click("button[type=submit]")
    page.click("#my-jobs")
    expect(page.locator("#jobs")).to_be_visible()
    assert page.locator("#jobs tbody tr").count() == 2
    _fits(page, "#jobs", 1280)
    assert _fits(page, "#jobs", 390)["display"] == "block"
    visitor.check("job-list")


#: Every download link's box and name, and whether any two of one group overlap.
DOWNLOADS = """() => Array.from(document.querySelectorAll(".downloads")).map(span => {
  const links = Array.from(span.querySelectorAll("a")).map(a => {
    const r = a.getBoundingClientRect();
    return {text: a.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            size: parseFloat(getComputedStyle(a).fontSize)};
  });
  const overlap = links.some((a, i) => links.some((b, j) => i < j && a.left < b.right
    && b.left < a.right && a.top < b.bottom && b.top < a.bottom));
  return {links, overlap};
})"""


def test_download_links_are_readable_on_a_phone_and_download(visitor, make):
    """Each page's CSV/VOTable/ECSV/FITS/JSON links fit a 390 px screen, in readable type, none
    over another, axe-clean; pressing one saves the file under its format's name."""
    page = visitor.page
    tag = make.token()
    obs, key = make.observatory(f"Download Observatory {tag}")
    name = make.alert(f"DLB{tag}")
    make.point(name, obs, 61000.5, 15.1, filt="V")
    page.goto(visitor.base + "/login")
    page.fill("#hashtag", key)
    page.click("button[type=submit]")
    for path, shot_name in [
        (f"/alerts?q=DLB{tag}", "alerts-downloads"),
        (f"/followup?alert=DLB{tag}", "followup-downloads"),
        ("/observatories?per_page=5", "observatories-downloads"),
        ("/jobs", "jobs-downloads"),
        (f"/alerts/{name}", "alert-downloads"),
    ]:
        visitor.go(path)
        page.set_viewport_size({"width": 390, "height": 844})
        groups = page.evaluate(DOWNLOADS)
        assert groups, path
        for group in groups:
            assert [link["text"] for link in group["links"]] == [
                "CSV", "VOTable", "ECSV", "FITS", "JSON"
            ], path  # fmt: skip
            assert not group["overlap"], (path, group)
            for link in group["links"]:
                assert link["left"] >= 0 and link["right"] <= 390, (path, link)
                assert link["size"] >= 12, (path, link)
        with page.expect_download() as saved:
            page.locator(".downloads a", has_text="FITS").last.click()
        assert saved.value.suggested_filename.endswith(".fits"), path
        visitor.check(shot_name)
