"""The `refcat` click group, driven as an operator would through CliRunner."""

import pyarrow.csv as pacsv
from click.testing import CliRunner

from refcats.cli import refcat
from refcats.synth import synth_table


def test_ingest_and_list(tmp_path):
    table = synth_table(2000, ra=10, dec=20, radius_deg=1, seed=1)
    names = ["source_id", "RAJ2000", "DEJ2000", "Bmag", "e_Bmag", "Vmag", "e_Vmag"]
    table = table.rename_columns([*names, "R", "R_err", "I", "I_err"])
    pacsv.write_csv(table, tmp_path / "cat.csv")
    root = str(tmp_path / "store")
    runner = CliRunner()
    result = runner.invoke(
        refcat,
        ["ingest", "APASS", str(tmp_path / "cat.csv"), "--bands", "R,I", "--ra-col", "RAJ2000",
         "--dec-col", "DEJ2000", "--band", "V:Vmag:e_Vmag", "--band", "B:Bmag:e_Bmag",
         "--partition-rows", "500", "--root", root],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "APASS: 2000 stars, bands R,I,V,B" in result.output

    result = runner.invoke(refcat, ["list", "--root", root])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "survey", "status", "bands", "rows", "partitions", "orders", "sky", "%", "location",
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["APASS", "ok", "R,I,V,B", "2000"]


def test_errors_are_click_exceptions(tmp_path):
    (tmp_path / "bad.csv").write_text("ra,dec,V,V_err\n1,99,3,0.1\n")
    runner = CliRunner()
    result = runner.invoke(
        refcat, ["ingest", "X", str(tmp_path / "bad.csv"), "--bands", "V", "--root", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "Error: bad.csv: 1 row(s) in this chunk have coordinates out of range" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        refcat, ["ingest", "X", str(tmp_path / "bad.csv"), "--band", "V", "--root", str(tmp_path)]
    )
    assert result.exit_code == 2 and "BAND:MAGCOL" in result.output
    result = runner.invoke(refcat, ["list", "--root", str(tmp_path / "none")])
    assert result.exit_code == 0 and "no reference surveys" in result.output


def test_build_demo_uses_configured_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CALSERV_REFCAT_DIR", str(tmp_path / "cfg"))
    runner = CliRunner()
    result = runner.invoke(refcat, ["build-demo"])
    assert result.exit_code == 0, result.output
    assert "GaiaDR3: 482176 stars" in result.output
    assert (tmp_path / "cfg" / "GaiaDR3" / "GaiaDR3" / "properties").is_file()
    result = runner.invoke(refcat, ["list"])
    assert "GaiaDR3" in result.output and "482176" in result.output
