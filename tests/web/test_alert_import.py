"""`flask --app web alert import-csv FILE`: the Gaia Science Alerts list, upserted by name."""

from __future__ import annotations

from sqlalchemy import select

from db.models import Alert
from db.session import session_scope
from feeds.parse import parse

HEADER = (
    "#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,Published,Comment,TNSid\n"
)


def gaia_csv(tag: str, mag: str = "15.52") -> str:
    return HEADER + (
        f"Gaia{tag}a,2016-08-05 11:21:22,295.00471,47.75811,{mag},16.65,0.21,unknown,"
        f'2016-08-09 10:29:08,"Brightening of a known star, candidate microlensing",AT2016dbn\n'
        f"Gaia{tag}b, 2016-08-06 01:02:03, 12.5, -30.25, 19.01, , , SN Ia, 2016-08-07 09:00:00, ,\n"
    )


def test_import_is_idempotent_and_updates(runner, tmp_path, make):
    tag = make.token()
    f = tmp_path / "alerts.csv"
    f.write_text(gaia_csv(tag))
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code == 0, result.output
    assert "2 alerts read: 2 added, 0 updated, 0 unchanged" in result.output

    again = runner.invoke(args=["alert", "import-csv", str(f)])
    assert "0 added, 0 updated, 2 unchanged" in again.output

    f.write_text(gaia_csv(tag, mag="14.90"))
    third = runner.invoke(args=["alert", "import-csv", str(f)])
    assert "0 added, 1 updated, 1 unchanged" in third.output

    with session_scope() as s:
        a = s.scalars(select(Alert).where(Alert.name == f"Gaia{tag}a")).one()
        assert a.ivorn == f"ivo://gaia-alerts/Gaia{tag}a"
        assert (a.ra, a.dec, a.alert_mag) == (295.00471, 47.75811, 14.90)
        assert a.comment == "Brightening of a known star, candidate microlensing"
        assert a.url == f"https://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia{tag}a"
        b = s.scalars(select(Alert).where(Alert.name == f"Gaia{tag}b")).one()
        assert b.classification == "SN Ia" and b.comment is None and b.dec == -30.25


def test_known_alert_keeps_its_ivorn(runner, tmp_path, make):
    tag = make.token()
    make.alert(f"Gaia{tag}a")  # inserted earlier, e.g. by /newevent, with ivo://test/...
    f = tmp_path / "alerts.csv"
    f.write_text(gaia_csv(tag))
    assert "1 added, 1 updated" in runner.invoke(args=["alert", "import-csv", str(f)]).output
    with session_scope() as s:
        a = s.scalars(select(Alert).where(Alert.name == f"Gaia{tag}a")).one()
        assert a.ivorn == f"ivo://test/Gaia{tag}a" and a.ra == 295.00471


def test_bad_files_are_refused_whole(runner, tmp_path, make):
    tag = make.token()
    f = tmp_path / "bad.csv"
    f.write_text("name,ra\nfoo,1\n")
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code != 0 and "the header names neither" in result.output

    f.write_text(gaia_csv(tag) + f"Gaia{tag}c,2016-01-01,abc,1,1,,,,,,\n")
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code != 0 and "line 4: RaDeg 'abc' is not a number" in result.output
    f.write_text(gaia_csv(tag) + f"Gaia{tag}c,2016-01-01,400,1,1,,,,,,\n")
    result = runner.invoke(args=["alert", "import-csv", str(f)])
    assert result.exit_code != 0 and "ra/dec out of range" in result.output
    with session_scope() as s:  # nothing of a refused file is kept
        assert s.scalars(select(Alert).where(Alert.name.like(f"Gaia{tag}%"))).all() == []


def test_parse_skips_blank_and_comment_lines():
    text = HEADER + "\n# a note\nGaia99zz,2099-01-01,1.0,2.0,,,,,,,\n"
    (a,) = parse(text).alerts
    assert (a.name, a.ra, a.dec, a.alert_mag, a.published) == (
        "Gaia99zz",
        1.0,
        2.0,
        None,
        "2099-01-01",
    )
