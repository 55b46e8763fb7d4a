"""What the pages tell an observer: text filters match substrings in any case, a withdrawal asks
first, says what happened and can be undone, a failed job's page names its file, options, reason
and log and tells the re-sending rule, and an over-size upload brings the form back with its
fields and what is accepted."""

from __future__ import annotations

import io
import re


def test_text_filters_match_substrings_in_any_case(client, make):
    tag = make.token()
    obs, _ = make.observatory(f"Skinakas {tag}")
    name = make.alert(f"SN2026x{tag}")
    make.point(name, obs, 61000.5, 15.0)
    queries = (
        f"alert=sn2026X{tag[:4]}",
        f"alert=IVO://TEST/SN2026x{tag}",
        f"observatory=SKINAKAS%20{tag}",
    )
    for query in queries:
        items = client.get(f"/followup?format=json&{query}").get_json()["items"]
        assert [i["alert"] for i in items] == [name], query
    assert client.get(f"/followup?format=json&alert=zz{tag}").get_json()["total"] == 0


def test_withdraw_asks_says_what_happened_and_can_be_undone(client, make):
    obs, key = make.observatory()
    name = make.alert()
    point = make.point(name, obs, 61000.5, 15.123)
    make.login(client, key)
    page = client.get(f"/alerts/{name}").get_data(as_text=True)
    assert re.search(r'<details class="withdraw"><summary>Withdraw', page)  # asks first
    assert "Yes, withdraw the point" in page
    resp = client.post(f"/followup/{point}/withdraw", follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert 'id="flash-withdrawn"' in page and "15.123" in page
    assert client.get(f"/alerts/{name}?format=json").get_json()["npoints"] == 0
    assert f'action="/followup/{point}/restore"' in page
    page = client.post(f"/followup/{point}/restore", follow_redirects=True).get_data(as_text=True)
    assert 'id="flash-restored"' in page
    assert client.get(f"/alerts/{name}?format=json").get_json()["npoints"] == 1
    _, other_key = make.observatory()
    make.login(client, other_key)
    assert client.post(f"/followup/{point}/restore").status_code == 403


def test_failed_job_page_names_file_options_reason_and_log(client, make):
    obs, _ = make.observatory()
    name = make.alert()
    reason = "no stars of APASS/V matched the catalogue; " + "a long reason " * 20
    job_id = make.failed_job(
        name, obs, reason, "night-0042.cat",
        force_filter="APASS/V", match_dist=3.0, exptime=30.0, no_plot=True, comment=None,
    )  # fmt: skip
    html = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert '<td id="file-name" class="wrap">night-0042.cat</td>' in html
    options = html[
        html.index('id="job-options"') : html.index("</table>", html.index("job-options"))
    ]
    shown = (
        ("forceFilter", "APASS/V"),
        ("matchDist", "3.0"),
        ("expTime", "30.0"),
        ("noPlot", "yes"),
        ("dryRun", "no"),
        ("comment", "not given"),
    )
    for name_, value in shown:
        assert re.search(
            rf"<code>{name_}</code></th><td[^>]*>(<span[^>]*>)?{re.escape(value)}", options
        ), name_
    assert '<pre class="log wrap" id="error-log"' in html and reason.strip() in html
    assert 'id="job-log"' in html and "failed after 1 attempt:" in html
    resend = html[html.index('id="resend"') :]
    assert "retried" in resend and "new job" in resend and "afresh" not in html


def test_over_size_upload_brings_the_form_back(database, make):
    from web import create_app

    app = create_app(overrides={"TESTING": True, "WTF_CSRF_ENABLED": False,
                                "MAX_CONTENT_LENGTH": 200_000})  # fmt: skip
    client = app.test_client()
    with app.app_context():
        _, key = make.observatory()
    make.login(client, key)
    form = client.get("/submit").get_data(as_text=True)
    assert 'data-max-bytes="134464"' in form  # the script's own check: the limit less the fields
    fields = {"EventID": "Gaia16aye", "MJD": "61000.25", "expTime": "45", "comment": "night 3",
              "forceFilter": "any/V", "outputFormat": "html"}  # fmt: skip
    big = {**fields, "sexCat": (io.BytesIO(b"x" * 300_000), "frame.fits")}
    resp = client.post("/submit", data=big)
    assert resp.status_code == 413
    html = resp.get_data(as_text=True)
    assert 'id="upload-form"' in html and "the file is larger than 0.2 MB" in html
    assert "FITS image" in html and "not the image" not in html
    for value in ("Gaia16aye", "61000.25", "45", "night 3", "any/V"):
        assert f'value="{value}"' in html, value
    huge = {**fields, "sexCat": (io.BytesIO(b"x" * 900_000), "frame.fits")}
    resp = client.post("/submit", data=huge)
    assert resp.status_code == 413 and 'id="upload-form"' not in resp.get_data(as_text=True)
