"""Both storage backends behave alike: a local directory and a real S3-compatible server (moto)."""

from __future__ import annotations

import io
import os

import pytest

from blobstore import BlobNotFound, check_key, open_store, parse_url
from blobstore.keys import plot_key, upload_key
from tests.helpers import MotoServer


@pytest.fixture(scope="module")
def s3_server():
    server = MotoServer("calserv-blobs")
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    server = request.getfixturevalue("s3_server")
    for name, value in MotoServer.CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # A prefix of its own per test: the server (and its bucket) is shared by the module.
    return open_store(f"s3://calserv-blobs/{tmp_path.name}", server.endpoint)


def test_a_committed_object_reads_back_as_a_stream(store):
    data = os.urandom(3 * (1 << 20) + 17)  # several write chunks, not a multiple of any
    with store.writer() as w:
        for i in range(0, len(data), 1 << 20):
            w.write(data[i : i + (1 << 20)])
        w.commit(upload_key("ab" * 32))
    with store.open(upload_key("ab" * 32)) as f:
        assert f.read(10) == data[:10]
        assert f.read() == data[10:]


def test_bytes_not_committed_leave_nothing_behind(store):
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"half an upload")
        raise RuntimeError("client went away")
    assert store.list("uploads/") == []
    if hasattr(store, "root"):
        assert os.listdir(store.root) == []  # not even the temporary file


def test_put_replaces_and_missing_keys_are_not_found(store):
    store.put(plot_key("job1"), b"first")
    store.put(plot_key("job1"), b"second")
    with store.open(plot_key("job1")) as f:
        assert f.read() == b"second"
    with pytest.raises(BlobNotFound):
        store.open(plot_key("job2"))
    with pytest.raises(FileNotFoundError):  # BlobNotFound is one
        store.open("uploads/zz/none.cat")


def test_list_and_delete(store):
    store.put("lightcurves/1-1.png", b"a")
    store.put("lightcurves/1-2.png", b"b")
    store.put("plots/x.png", b"c")
    assert store.list("lightcurves/") == ["lightcurves/1-1.png", "lightcurves/1-2.png"]
    store.delete("lightcurves/1-1.png")
    store.delete("lightcurves/never.png")
    assert store.list("lightcurves/") == ["lightcurves/1-2.png"]
    assert store.list("nothing/") == []


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a//b", "plots/../../x", "a/./b"])
def test_keys_cannot_leave_the_store(store, key):
    with pytest.raises(ValueError, match="bad blob key"):
        check_key(key)
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_urls():
    assert parse_url("/srv/var") == ("file", "/srv/var", "")
    assert parse_url("file:///srv/var") == ("file", "/srv/var", "")
    assert parse_url("s3://bucket/a/b/") == ("s3", "bucket", "a/b")
    assert parse_url("s3://bucket") == ("s3", "bucket", "")
    for bad in ("var", "s3:///x", "gs://b/x", "s3://k:s@b/x"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_a_plot_rendered_in_memory_is_a_png(store):
    """The worker renders plots into memory and puts them: nothing on the worker's disk."""
    png = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    store.put(plot_key("j"), png.getvalue())
    with store.open(plot_key("j")) as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
