"""The observers' side of tests/test_separate_hosts.py, run on the client host of that test.

Uploads a burst of catalogues to the web host (one line of JSON per accepted job, as soon as it is
accepted), waits for every job to end, then prints one line per job with its final JSON and the
size and first bytes of its plot, fetched through the web host.

Usage: python separate_hosts_client.py WEB_URL HASHTAG EVENT_ID CATALOGUE N
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests


def upload(web: str, hashtag: str, event: str, data: bytes, i: int) -> str:
    form = {
        "hashtag": hashtag,
        "EventID": event,
        "MJD": str(60000.0 + i),  # a distinct observation per upload: one follow-up row each
        "expTime": "60",
        "matchDist": "2",
        "noPlot": "0",
        "outputFormat": "json",
    }
    # Distinct bytes per upload (blank lines at the end): each is its own object in the store.
    files = {"sexCat": (f"frame-{i}.cat", data + b"\n" * i)}
    for attempt in range(5):
        r = requests.post(f"{web}/upload", data=form, files=files, timeout=60)
        if r.status_code == 202:
            job = r.json()["job_id"]
            print(json.dumps({"accepted": job, "i": i}), flush=True)
            return job
        time.sleep(0.5 * (attempt + 1))
    raise SystemExit(f"upload {i}: {r.status_code} {r.text[:500]}")


def main() -> None:
    web, hashtag, event, catalogue, n = sys.argv[1:6]
    data = open(catalogue, "rb").read()  # noqa: SIM115
    with ThreadPoolExecutor(4) as pool:
        jobs = list(pool.map(lambda i: upload(web, hashtag, event, data, i), range(int(n))))
    deadline = time.monotonic() + 120
    for job in jobs:
        while True:
            body = requests.get(f"{web}/jobs/{job}?outputFormat=json", timeout=30).json()
            if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        plot = None
        if body.get("image_link"):
            r = requests.get(body["image_link"], timeout=30)
            plot = {"status": r.status_code, "size": len(r.content), "head": r.content[:8].hex()}
        print(json.dumps({"final": body, "plot": plot}), flush=True)


if __name__ == "__main__":
    main()
