"""`/alerts?ra=&dec=&radius=`: the alerts within a cone, nearest first."""

from __future__ import annotations

import astropy.units as u
from astropy.coordinates import SkyCoord

from db.models import Alert
from db.session import session_scope


def test_cone_search_finds_the_alerts_within_the_radius_nearest_first(client, make):
    tag = make.token()
    centre = SkyCoord(359.9995, 10.0, unit="deg")
    with session_scope() as s:  # across RA 0: 2", 4" and 20" from the centre
        for name, (east, north) in {"near": (2, 0), "mid": (0, -4), "far": (-20, 0)}.items():
            at = centre.spherical_offsets_by(east * u.arcsec, north * u.arcsec)
            ra, dec = float(at.ra.wrap_at(360 * u.deg).deg), float(at.dec.deg)
            s.add(Alert(ivorn=f"ivo://test/c{name}{tag}", name=f"Cone{name}{tag}", ra=ra, dec=dec))
    url = "/alerts?ra=359.9995&dec=10&format=json&radius="
    names = [a["name"] for a in client.get(url + "5").get_json()["items"]]
    assert [n for n in names if n.endswith(tag)] == [f"Conenear{tag}", f"Conemid{tag}"]
    names = [a["name"] for a in client.get(url + "30").get_json()["items"]]
    assert [n for n in names if n.endswith(tag)] == [
        f"Cone{n}{tag}" for n in ("near", "mid", "far")
    ]


def test_a_cone_needs_both_coordinates_and_a_sane_radius(client):
    for query in (
        "ra=10",
        "dec=10",
        "ra=400&dec=0",
        "ra=1&dec=1&radius=0",
        "ra=1&dec=1&radius=1e5",
    ):
        resp = client.get(f"/alerts?{query}&format=json")
        assert resp.status_code == 422, query
