"""`JobParams`: the one typed form of a job's options, from the upload form to the worker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.job_params import JobParams
from db.observations import job_identity

#: A job row's `params` as the previous version wrote it (`dataclasses.asdict` of its form type).
STORED = {
    "match_dist": 2.0,
    "mjd": 60000.5,
    "exptime": 60.0,
    "comment": "seeing 1.2",
    "dry_run": False,
    "force_filter": "APASS/V",
    "no_plot": True,
}

numbers = st.none() | st.floats(0, 1e6, allow_nan=False)
texts = st.none() | st.text(max_size=50)


@given(
    st.builds(
        JobParams,
        mjd=numbers,
        match_dist=numbers,
        exptime=numbers,
        comment=texts,
        dry_run=st.booleans(),
        force_filter=texts,
        no_plot=st.booleans(),
    )
)
def test_the_stored_json_reads_back_as_the_same_params(params):
    stored = json.loads(json.dumps(params.to_json()))  # as the JSONB column gives it back
    assert JobParams.from_json(stored) == params


def test_a_row_of_the_previous_version_loads_with_every_option():
    params = JobParams.from_json(STORED)
    assert (params.mjd, params.match_dist, params.exptime) == (60000.5, 2.0, 60.0)
    assert (params.comment, params.force_filter) == ("seeing 1.2", "APASS/V")
    assert (params.dry_run, params.no_plot) == (False, True)
    assert params.to_json() == STORED


def test_missing_options_take_their_defaults_and_unknown_ones_are_ignored():
    assert JobParams.from_json({}) == JobParams()
    assert JobParams.from_json(None) == JobParams()
    newer = {**STORED, "instrument": "a field a newer web tier added"}
    assert JobParams.from_json(newer) == JobParams.from_json(STORED)


@pytest.mark.parametrize(
    "bad", [{"mjd": "yesterday"}, {"match_dist": [2]}, {"dry_run": "perhaps"}, {"comment": 3}]
)
def test_a_value_of_the_wrong_type_is_refused(bad):
    with pytest.raises(ValueError):
        JobParams.from_json(bad)


def test_the_params_cannot_change_on_their_way():
    with pytest.raises(ValueError):
        JobParams().mjd = 1.0  # frozen: what the form parsed is what the worker reads


def test_the_identity_leaves_out_presentation_and_matches_stored_jobs():
    """An identical upload after an upgrade still finds the job it made before: the identity is
    the dict the previous version hashed into the idempotency key."""
    params = JobParams.from_json(STORED)
    identity = job_identity(params)
    assert identity == {k: v for k, v in STORED.items() if k not in ("comment", "no_plot")}
    restyled = params.model_copy(update={"comment": "other", "no_plot": False})
    assert job_identity(restyled) == identity
    refiltered = params.model_copy(update={"force_filter": "GaiaDR3/G"})
    assert job_identity(refiltered) != identity
