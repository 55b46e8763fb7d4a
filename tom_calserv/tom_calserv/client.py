"""calserv's HTTP API as the plugin uses it: find or create the alert, upload a frame, wait for
its job. Every call sends the user's key in `Authorization: Token`, never in a URL."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

#: What calserv names a finished job.
FINISHED = ("succeeded", "failed")
#: The longest one long-poll holds (calserv's own cap).
MAX_WAIT_S = 60


class CalservError(Exception):
    """calserv refused or could not be reached; the message says what to fix."""


@dataclass
class CalservClient:
    base_url: str
    key: str
    timeout_s: float = 30.0

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.key}", "Accept": "application/json"}
        timeout = kwargs.pop("timeout", self.timeout_s)
        try:
            return requests.request(
                method, self.base_url.rstrip("/") + path, headers=headers, timeout=timeout, **kwargs
            )
        except requests.RequestException as e:
            raise CalservError(f"calserv at {self.base_url} is unreachable: {e}") from None

    @staticmethod
    def _json(resp: requests.Response, *ok: int) -> dict:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code not in ok:
            error = body.get("error") or f"HTTP {resp.status_code}"
            detail = body.get("detail")
            raise CalservError(f"calserv: {error}" + (f" ({detail})" if detail else ""))
        return body

    def find_alert(
        self, names: list[str], ra: float, dec: float, radius_arcsec: float
    ) -> dict | None:
        """The calserv alert named like the target (one of `names`, or an IVORN), else the
        nearest within `radius_arcsec` of its position, else None."""
        for name in names:
            found = self._json(
                self._call("GET", "/alerts", params={"q": name, "format": "json"}), 200
            )
            for alert in found["items"]:
                if name.lower() in (alert["name"].lower(), alert["ivorn"].lower()):
                    return alert
        cone = {"ra": ra % 360.0, "dec": dec, "radius": radius_arcsec, "format": "json"}
        items = self._json(self._call("GET", "/alerts", params=cone), 200)["items"]
        return items[0] if items else None

    def new_event(self, ivorn: str, name: str, ra: float, dec: float) -> dict:
        """Create the alert (`POST /newevent`); returns it as /alerts lists it."""
        form = {"EventID": ivorn, "name": name, "ra": repr(ra % 360.0), "dec": repr(dec)}
        resp = self._call("POST", "/newevent", data=form)
        if resp.status_code != 409:  # 409: made meanwhile (another user, another try): use it
            self._json(resp, 201)
        alert = self.find_alert([ivorn], ra, dec, 0.1)
        if alert is None:
            raise CalservError(f"calserv: alert {name!r} was not found after creating it")
        return alert

    def upload(
        self,
        event: str,
        filename: str,
        data: bytes,
        mjd: float,
        exptime: float | None = None,
        wait_s: int = 0,
    ) -> dict:
        """Queue the frame's calibration; the job's JSON (its `status_url` is the job's URL)."""
        form = {"EventID": event, "MJD": repr(mjd), "outputFormat": "json", "noPlot": "1"}
        if exptime is not None:
            form["expTime"] = repr(exptime)
        if wait_s:
            form["wait"] = str(min(wait_s, MAX_WAIT_S))
        resp = self._call(
            "POST",
            "/upload",
            data=form,
            files={"sexCat": (filename, data)},
            timeout=self.timeout_s + wait_s,
        )
        return self._json(resp, 200, 202)

    def wait(self, job: dict, seconds: float) -> dict:
        """The job's JSON once it has ended, or as it is after `seconds`; each request is a
        long poll that calserv ends as soon as the job does."""
        deadline = time.monotonic() + seconds
        while job["status"] not in FINISHED:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            body = {"ids": [job["job_id"]], "states": {job["job_id"]: job["status"]}}
            body["wait"] = min(MAX_WAIT_S, max(1, int(left)))
            resp = self._call("POST", "/jobs/status", json=body, timeout=body["wait"] + 30)
            changed = self._json(resp, 200)["jobs"]
            if changed:
                job = changed[0]
        return job
