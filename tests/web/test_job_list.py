"""`GET /jobs`: an observatory's own jobs, newest first and paged, with the name each file was
sent under; for its logged-in browser and, as JSON or CSV, for a script with its key. Another
observatory's jobs never show."""

from __future__ import annotations

import io

from tests.helpers import DATA

FRAME = (DATA / "gaia-demo" / "frame.cat").read_bytes()


def upload(client, hashtag: str, alert: str, mjd: float, filename: str) -> str:
    resp = client.post(
        "/upload",
        data={
            "EventID": alert,
            "MJD": str(mjd),
            "outputFormat": "json",
            "sexCat": (io.BytesIO(FRAME), filename),
        },
        headers={"Authorization": f"Token {hashtag}"},
    )
    assert resp.status_code in (200, 202), resp.get_data(as_text=True)
    return resp.get_json()["job_id"]


def test_an_observatory_lists_its_own_jobs_newest_first(client, make):
    obs, key = make.observatory()
    _, other_key = make.observatory()
    alert = make.alert()
    sent = [
        upload(client, key, alert, 61000.1 + i, name)
        for i, name in enumerate(["n1-0001.cat", "/home/obs/night/n1-0002.cat", "dir/n1-0003.cat"])
    ]
    upload(client, other_key, alert, 61000.1, "theirs.cat")
    auth = {"Authorization": f"Token {key}"}
    page = client.get("/jobs?format=json", headers=auth).get_json()
    assert page["total"] == 3
    assert [j["job_id"] for j in page["items"]] == sent[::-1]
    assert [j["file_name"] for j in page["items"]] == ["n1-0003.cat", "n1-0002.cat", "n1-0001.cat"]
    first = page["items"][-1]
    assert first["alert"] == alert and first["status"] in ("queued", "running", "succeeded")
    assert first["mjd"] == 61000.1 and first["date_obs"].startswith("2025-")
    assert first["status_url"].endswith(f"/jobs/{sent[0]}")
    second = client.get("/jobs?format=json&per_page=2&page=2", headers=auth).get_json()
    assert [j["job_id"] for j in second["items"]] == [sent[0]]
    assert client.get("/jobs?format=json&per_page=2&page=3", headers=auth).status_code == 404
    none = client.get("/jobs?format=json&state=failed", headers=auth).get_json()
    assert none["total"] == 0
    assert client.get("/jobs?format=json&state=lost", headers=auth).status_code == 422
    csv = client.get("/jobs?format=csv", headers=auth).get_data(as_text=True)
    assert csv.splitlines()[0].startswith("job_id,status,created_at") and "n1-0002.cat" in csv
    # the job itself names its file and lists every option
    job = client.get(f"/jobs/{sent[1]}?outputFormat=json").get_json()
    assert job["file_name"] == "n1-0002.cat"
    assert set(job["options"]) == {
        "MJD", "expTime", "matchDist", "forceFilter", "dryRun", "noPlot", "comment"
    }  # fmt: skip
    # the browser of the observatory sees the same list
    make.login(client, key)
    html = client.get("/jobs").get_data(as_text=True)
    assert "n1-0003.cat" in html and "theirs.cat" not in html and f"Jobs of {obs}" in html


def test_without_a_key_or_login(client):
    resp = client.get("/jobs?format=json")
    assert resp.status_code == 401 and resp.get_json()["error"] == "hashtag is missing"
    resp = client.get("/jobs")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?next=")
    resp = client.get("/jobs?format=json", headers={"Authorization": "Token nope"})
    assert resp.status_code == 401
