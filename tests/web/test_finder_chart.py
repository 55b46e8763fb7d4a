"""The finder chart is drawn from calserv's own reference store: the stars of the richest survey
within 3′ of the alert (counted here independently from the survey's source table), served as
a PNG that is made once and then revalidated."""

from __future__ import annotations

import csv

import numpy as np
from astropy.coordinates import SkyCoord

from refcats.store import RefStore
from tests.helpers import DATA
from web.finder_chart import RADIUS_ARCMIN, richest_field

CENTRE = (150.17, 2.1)  # inside the synth-deep field


def _truth_count() -> int:
    with (DATA / "synth-deep" / "ref.csv").open() as f:
        rows = list(csv.DictReader(f))
    stars = SkyCoord([float(r["ra"]) for r in rows], [float(r["dec"]) for r in rows], unit="deg")
    return int((stars.separation(SkyCoord(*CENTRE, unit="deg")).arcmin < RADIUS_ARCMIN).sum())


def test_the_richest_survey_around_the_alert_is_drawn(refstore, tmp_path):
    field = richest_field(RefStore(refstore), *CENTRE)
    assert field.survey == "SYNTH" and field.band == "V"
    assert len(field.mag) == _truth_count() > 20
    assert np.all(np.hypot(field.east, field.north) <= RADIUS_ARCMIN + 1e-6)
    assert richest_field(RefStore(tmp_path), *CENTRE) is None  # no survey at all


def test_finder_png_is_served_and_revalidated(client, make, refstore):
    name = make.alert()
    with make.app.app_context():
        from db.models import Alert
        from db.session import session_scope

        with session_scope() as s:
            a = s.query(Alert).filter_by(name=name).one()
            a.ra, a.dec = CENTRE
    resp = client.get(f"/alerts/{name}/finder.png")
    assert resp.status_code == 200 and resp.data.startswith(b"\x89PNG")
    again = client.get(
        f"/alerts/{name}/finder.png", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status_code == 304
    page = client.get(f"/alerts/{name}").get_data(as_text=True)
    assert f'src="/alerts/{name}/finder.png"' in page
