"""Offsets between observatories' systems, alignment and outliers, on simulated light curves
with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calib.intercalibration import Point, outliers, pair_offsets, system_offsets


def true_mag(mjd):
    return 16.0 + 1.5 * (1 - np.exp(-(mjd - 60000.0) / 20.0))


def simulate(seed: int, offsets: dict[str, float], nights: int = 40, bad: int = 0):
    """Each observatory observes most nights (R), its own offset plus noise; `bad` points are
    0.5-1 mag off."""
    rng = np.random.default_rng(seed)
    points, truth = [], []
    for night in range(nights):
        for obs, off in offsets.items():
            if rng.uniform() < 0.25:
                continue
            mjd = 60000.0 + night + rng.uniform(0.0, 0.3)
            err = rng.uniform(0.01, 0.04)
            points.append(
                Point(obs, "R", mjd, float(true_mag(mjd) + off + rng.normal(0, err)), err)
            )
            truth.append(False)
    for i in rng.choice(len(points), bad, replace=False):
        p = points[i]
        shift = rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
        points[i] = Point(p.observatory, p.filter, p.mjd, p.mag + shift, p.err)
        truth[i] = True
    return points, truth


OFFSETS = {"A": 0.0, "B": 0.12, "C": -0.08, "D": 0.25}


def test_pair_offsets_recover_the_systems_difference():
    points, _ = simulate(1, OFFSETS)
    pairs = {(p.observatory_a, p.observatory_b): p for p in pair_offsets(points)}
    assert set(pairs) == {("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")}
    for (a, b), p in pairs.items():
        truth = OFFSETS[a] - OFFSETS[b]
        assert p.offset == pytest.approx(truth, abs=4 * p.offset_err + 0.01), (a, b)
        assert p.n_pairs >= 15 and 0 < p.offset_err < 0.02


def test_alignment_removes_the_offsets_and_reduces_the_scatter():
    points, _ = simulate(2, OFFSETS)
    systems = {s.observatory: s for s in system_offsets(points, pair_offsets(points))}
    reference = systems["A"].reference
    for obs, s in systems.items():
        assert s.offset == pytest.approx(OFFSETS[obs] - OFFSETS[reference], abs=0.02)
    raw = [p.mag - true_mag(p.mjd) for p in points]
    aligned = [p.mag - systems[p.observatory].offset - true_mag(p.mjd) for p in points]
    assert np.std(aligned) < 0.5 * np.std(raw)


def test_systems_never_on_the_same_night_are_tied_through_a_third():
    rng = np.random.default_rng(3)
    points = []
    for night in range(30):  # A and B on even nights, B and C on odd nights
        for obs in ("A", "B") if night % 2 == 0 else ("B", "C"):
            mjd = 60000.0 + night + 0.1
            off = {"A": 0.0, "B": 0.1, "C": 0.3}[obs]
            points.append(Point(obs, "V", mjd, 15.0 + off + rng.normal(0, 0.01), 0.01))
    points.append(Point("E", "V", 60100.0, 15.0, 0.01))  # never shares a night
    pairs = pair_offsets(points)
    assert {(p.observatory_a, p.observatory_b) for p in pairs} == {("A", "B"), ("B", "C")}
    systems = {s.observatory: s for s in system_offsets(points, pairs)}
    assert systems["A"].reference == "B"  # most points
    assert systems["C"].offset == pytest.approx(0.2, abs=0.01)
    assert systems["A"].offset == pytest.approx(-0.1, abs=0.01)
    assert systems["E"].offset is None and systems["E"].offset_err is None


def test_outliers_are_found_and_good_points_kept():
    points, truth = simulate(4, OFFSETS, nights=60, bad=8)
    flags = outliers(points, pair_offsets(points))
    judged = np.array([
        sum(q.observatory != p.observatory and abs(q.mjd - p.mjd) <= 0.5 for q in points) >= 2
        for p in points
    ])  # fmt: skip
    truth, flags = np.array(truth), np.array(flags)
    assert truth[judged].sum() >= 4
    assert flags[truth & judged].all()  # recall among the points that can be judged
    assert not flags[~judged].any()
    assert flags[~truth].mean() < 0.02  # false alarms


def test_one_other_point_cannot_make_an_outlier():
    points = [Point("A", "R", 60000.1, 15.0, 0.01), Point("B", "R", 60000.2, 16.0, 0.01)]
    assert outliers(points, pair_offsets(points)) == [False, False]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("ABC"),
            st.sampled_from("RV"),
            st.floats(60000, 60003),
            st.floats(10, 20) | st.just(math.nan),
            st.floats(0, 0.5) | st.just(math.inf),
        ),
        max_size=30,
    )
)
def test_any_light_curve_is_handled(rows):
    points = [Point(*r) for r in rows]
    pairs = pair_offsets(points)
    assert all(math.isfinite(p.offset) for p in pairs)
    systems = system_offsets(points, pairs)
    assert all(s.offset is None or math.isfinite(s.offset) for s in systems)
    assert len(outliers(points, pairs)) == len(points)
