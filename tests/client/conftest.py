"""Fixtures for the batch client: an alert at the Gaia demo truth position and a tiny scripted
HTTP server for the retry logic (the real web tier is `live_server` from tests/conftest.py)."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from tests.client.clienthelpers import GAIA, FakeCalserv


@pytest.fixture(scope="session")
def gaia_truth(app) -> dict:
    """An alert (unique IVORN) at the target of the Gaia demo frame; the truth plus `ivorn`."""
    truth = json.loads((GAIA / "truth.json").read_text())
    tag = secrets.token_hex(4)
    ivorn, name = f"ivo://client-test/gaia-{tag}", f"ClientGaia{tag}"
    result = app.test_cli_runner().invoke(
        args=[
            "alert",
            "add",
            ivorn,
            "--name",
            name,
            "--ra",
            str(truth["target_ra"]),
            "--dec",
            str(truth["target_dec"]),
        ]
    )
    assert result.exit_code == 0, result.output
    return {**truth, "ivorn": ivorn, "name": name}


@pytest.fixture()
def key_env(observatory, monkeypatch) -> dict:
    """os.environ for a CLI subprocess: the key in CALSERV_HASHTAG, no user config file."""
    env = {
        **os.environ,
        "CALSERV_HASHTAG": observatory["hashtag"],
        "XDG_CONFIG_HOME": "/nonexistent",
    }
    env.pop("CALSERV_CONFIG", None)
    env.pop("CALSERV_URL", None)
    return env


@pytest.fixture()
def fake_calserv():
    fake = FakeCalserv()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
