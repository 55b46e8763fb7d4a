"""The batch client finds FITS images (plain, .fits.gz, .fz) and reads their MJD and exposure."""

from __future__ import annotations

from calserv_client.inputs import find_catalogues, fits_metadata
from tests.synth_image import synth_frame


def test_images_are_found_and_their_headers_read(tmp_path):
    frame, _ = synth_frame((0, 30), None, shape=(128, 128))
    frame.header["MJD-OBS"], frame.header["EXPTIME"] = 60999.5, 30.0
    names = {"a.fits": None, "b.fits.gz": "gzip", "c.fz": "rice"}
    for name, compression in names.items():
        (tmp_path / name).write_bytes(frame.to_fits(compression))
    (tmp_path / "notes.txt").write_text("not a frame")
    found = find_catalogues([str(tmp_path)])
    assert [f.name for f in found] == sorted(names)
    for f in found:
        assert fits_metadata(f) == {"mjd_start": 60999.5, "exptime": 30.0}, f.name
