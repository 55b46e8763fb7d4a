import json
from pathlib import Path

import pytest
from astropy.table import Table

from calib import RefCatalog

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def load_sample(name: str, survey: str):
    folder = DATA / name
    table = Table.read(folder / "ref.csv", format="ascii.csv", guess=False)
    ref = RefCatalog.from_columns(survey, {c: table[c] for c in table.colnames})
    truth = json.loads((folder / "truth.json").read_text())
    return folder, ref, truth


@pytest.fixture(scope="session")
def gaia_demo():
    return load_sample("gaia-demo", "GaiaDR3")


@pytest.fixture(scope="session")
def synth_deep():
    return load_sample("synth-deep", "SYNTH")
