"""The alert-list reader on adversarial text: it raises only FeedFormatError, and every alert it
keeps is one calserv can store; rows it can read come back exactly."""

from __future__ import annotations

import csv
import io
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.parse import GAIA_COLUMNS, MAX_NAME, FeedFormatError, parse, tns_key

#: What calserv never stores in a name (web.hygiene's rule).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
GAIA_HEADER = "#" + ",".join(GAIA_COLUMNS) + "\n"
TNS_HEADER = '"ID","Name","RA","DEC","Obj. Type","Disc. Internal Name","Discovery Mag/Flux"\n'


def storable(alert) -> bool:
    return (
        0 < len(alert.name) <= MAX_NAME
        and not CONTROL.search(alert.name)
        and alert.name == alert.name.strip()
        and 0 <= alert.ra < 360
        and -90 <= alert.dec <= 90
        and (alert.alert_mag is None or math.isfinite(alert.alert_mag))
        and alert.ivorn.startswith("ivo://")
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["", GAIA_HEADER, TNS_HEADER]), st.text(max_size=400))
def test_any_text_is_read_or_refused_never_crashes(header, body):
    try:
        parsed = parse(header + body)
    except FeedFormatError:
        return
    assert all(storable(a) for a in parsed.alerts)
    assert all(r.startswith("line ") for r in parsed.rejected)


names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
    max_size=40,
).map(str.strip).filter(bool)  # fmt: skip
comments = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            names,
            st.floats(0, 360, exclude_max=True),
            st.floats(-90, 90),
            st.one_of(st.none(), st.floats(-5, 30)),
            comments.map(str.strip),
        ),
        max_size=8,
    )
)
def test_gaia_rows_come_back_exactly(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for name, ra, dec, mag, comment in rows:
        mag_text = "" if mag is None else repr(mag)
        writer.writerow([name, "2025-01-01 00:00:00", repr(ra), repr(dec), mag_text, "", "",
                         "unknown", "", comment, ""])  # fmt: skip
    parsed = parse(GAIA_HEADER + out.getvalue())
    kept = [r for r in rows if not r[0].startswith("#")]  # a leading # is a comment line
    assert parsed.rejected == []
    assert [(a.name, a.ra, a.dec, a.alert_mag) for a in parsed.alerts] == [
        (n, ra, dec, mag) for n, ra, dec, mag, _ in kept
    ]
    assert [a.comment for a in parsed.alerts] == [c or None for *_, c in kept]


def test_tns_names_and_sexagesimal_positions():
    assert [tns_key(n) for n in ("AT 2016dbs", "SN2016dbs", "2016dbs", "AT 16dbs", "")] == [
        "2016dbs", "2016dbs", "2016dbs", None, None,
    ]  # fmt: skip
    text = TNS_HEADER + '"1","AT 2025abc","00:00:00.000","-00:30:00.00","","ZTF25a","19.5"\n'
    (a,) = parse(text).alerts
    assert (a.ra, a.dec, a.tns_name, a.aliases, a.alert_mag) == (
        0.0,
        -0.5,
        "2025abc",
        ("ZTF25a",),
        19.5,
    )
    bad = TNS_HEADER + '"2","AT 2025abd","25:61:00","+91:00:00","","",""\n'
    assert parse(bad).alerts == [] and "minutes and seconds" in parse(bad).rejected[0]
