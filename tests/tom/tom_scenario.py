"""A TOM user's session with tom_calserv, run by the TOM's own interpreter (tests/tom/tomproject).

Reads its plan from the JSON file named by argv[1]: calserv's keys, the frames and targets; it
migrates a fresh SQLite TOM, logs in, stores the key on the profile page, uploads the frame as a
data product of each target (the TOM's own upload form), chooses "calibrate with calserv" and
prints what the TOM then holds, as JSON, for tests/tom/test_tom_calserv.py to check.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomproject.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from guardian.shortcuts import assign_perm  # noqa: E402
from tom_calserv.models import CalservCalibration, CalservProfile  # noqa: E402
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum  # noqa: E402
from tom_targets.models import Target, TargetName  # noqa: E402


def login(username: str, key: str) -> Client:
    """A user who sets their calserv key on their profile page, as a person would."""
    user = User.objects.create_user(username, f"{username}@example.org", "a-long-password-1")
    client = Client()
    client.force_login(user)
    profile = client.get("/users/profile/")
    assert profile.status_code == 200 and b"Set your calserv key" in profile.content
    resp = client.post("/calserv/key/", {"api_key": key})
    assert resp.status_code == 302, resp.content[:2000]
    return client


def run(plan: dict) -> dict:
    call_command("migrate", verbosity=0)
    out: dict = {"targets": {}}
    clients = {name: login(name, key) for name, key in plan["users"].items()}
    for spec in plan["targets"]:
        user = User.objects.get(username=spec["user"])
        client = clients[spec["user"]]
        target = Target.objects.create(name=spec["name"], type="SIDEREAL", ra=spec["ra"],
                                       dec=spec["dec"])  # fmt: skip
        for alias in spec.get("aliases", []):
            TargetName.objects.create(target=target, name=alias)
        assign_perm("tom_targets.view_target", user, target)
        page = client.get(f"/targets/{target.pk}/")
        assert b"Calibrate with calserv" in page.content, "no button on the target's page"
        frame = Path(spec.get("frame", plan["frame"]))
        with frame.open("rb") as f:  # the TOM's own upload form, as a data product of the target
            resp = client.post(
                "/dataproducts/data/upload/",
                {"target": target.pk, "data_product_type": "calserv_frame", "files": f,
                 "referrer": f"/targets/{target.pk}/"},
            )  # fmt: skip
        assert resp.status_code == 302, resp.content[:2000]
        dp = DataProduct.objects.get(target=target)
        form = {"data_product": dp.pk, "exptime": 60}
        if spec.get("mjd") is not None:  # else the FITS header's
            form["mjd"] = spec["mjd"]
        resp = client.post(f"/calserv/targets/{target.pk}/", form)
        assert resp.status_code == 302, resp.content[:3000]
        shown = client.get(f"/calserv/targets/{target.pk}/").content.decode()
        record = CalservCalibration.objects.get(data_product=dp)
        datum = PhotometryReducedDatum.objects.filter(target=target).first()
        out["targets"][spec["name"]] = {
            "status": record.status,
            "error": record.error,
            "alert": record.alert,
            "job_url": record.job_url,
            "page_shows_job": bool(record.job_url) and record.job_url in shown,
            "datum": None if datum is None else {
                "timestamp": datum.timestamp.isoformat(),
                "brightness": datum.brightness,
                "brightness_error": datum.brightness_error,
                "limit": datum.limit,
                "bandpass": datum.bandpass,
                "unit": datum.unit,
                "exposure_time": datum.exposure_time,
                "telescope": datum.telescope,
                "source_name": datum.source_name,
                "source_location": datum.source_location,
                "data_product": datum.data_product_id == dp.pk,
                "value": datum.value,
            },
        }  # fmt: skip
    with connection.cursor() as cursor:  # the keys as stored: encrypted, never the plain text
        cursor.execute(f"SELECT api_key FROM {CalservProfile._meta.db_table}")
        stored = b"".join(bytes(row[0]) for row in cursor.fetchall())
    out["keys_stored"] = sum(1 for p in CalservProfile.objects.all() if p.api_key)
    out["key_in_clear"] = any(key.encode() in stored for key in plan["users"].values())
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.loads(Path(sys.argv[1]).read_text()))))
