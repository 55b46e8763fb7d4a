"""Where a catalogue lives: a local directory or a URL (``http(s)://``, ``s3://``) read through
fsspec, and the on-disk cache of remote partitions shared by the worker processes of a machine.

Remote catalogues are treated as immutable: a partition file, once downloaded, is valid for as
long as the catalogue's ``properties`` text is unchanged (its hash is part of the cache key), so
many workers on many machines can share one object store and each fetch a partition at most
once. Publishing a new version means a new ``properties`` (``hats-import`` stamps a creation
date) or a new URL.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import secrets
import shutil
import threading
import time
from pathlib import Path

import fsspec

from refcats.layout import RefcatError
from refcats.stats import FETCH_BUCKETS

REMOTE_SCHEMES = ("http://", "https://", "s3://")


def is_remote(location: str) -> bool:
    return location.startswith(REMOTE_SCHEMES)


class Location:
    """A directory of a catalogue or collection.

    Parameters
    ----------
    url : a local path or a URL
    storage_options : fsspec options of the filesystem (e.g. ``endpoint_url``, ``anon``)
    """

    def __init__(self, url: str, storage_options: dict | None = None, _fs=None, _path=None):
        self.url = str(url).rstrip("/") or "/"
        self.storage_options = dict(storage_options or {})
        self.remote = is_remote(self.url)
        if _fs is not None:
            self.fs, self.path = _fs, _path
        elif self.remote:
            opts = dict(self.storage_options)
            if self.url.startswith("s3://"):
                client = dict(opts.pop("client_kwargs", {}) or {})
                if "endpoint_url" in opts:
                    client["endpoint_url"] = opts.pop("endpoint_url")
                opts["client_kwargs"] = client
            self.fs, self.path = fsspec.core.url_to_fs(self.url, **opts)
        else:
            self.fs, self.path = fsspec.filesystem("file"), os.path.realpath(self.url)

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def child(self, relative: str) -> Location:
        """The location ``relative`` below this one (``..`` allowed)."""
        path = _join(self.path, relative)
        if not self.remote:
            path = os.path.realpath(path)
        return Location(_join(self.url, relative), self.storage_options, _fs=self.fs, _path=path)

    def file(self, relative: str) -> str:
        """Filesystem path of a file below this location."""
        return posixpath.join(self.path, relative)

    def read_text(self, relative: str) -> str | None:
        """Text of a file below this location, None if it does not exist."""
        try:
            return self.fs.cat_file(self.file(relative)).decode("utf-8")
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None

    def is_dir(self) -> bool:
        try:
            return self.fs.isdir(self.path)
        except (FileNotFoundError, OSError):
            return False

    def parquet_files(self, relative: str) -> list[str]:
        """Parquet files in the directory ``relative`` (a partition written with suffix ``/``)."""
        try:
            found = self.fs.find(self.file(relative))
        except FileNotFoundError:
            return []
        return sorted(f for f in found if f.endswith((".parquet", ".parq", ".pq")))


def _join(base: str, relative: str) -> str:
    """``base/relative`` normalised, keeping a URL scheme's ``//``."""
    scheme, sep, rest = base.rpartition("://")
    return f"{scheme}{sep}" + posixpath.normpath(posixpath.join(rest, relative))


class PartitionCache:
    """Local copies of remote partition files, least recently used evicted past ``max_bytes``.

    Safe for several processes sharing ``directory``: files appear by atomic rename, and an
    evicted file that another process still has open stays readable until it is closed.
    """

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.fetches = 0
        self.fetch_seconds = 0.0
        #: Fetches at most each `refcats.stats.FETCH_BUCKETS` bound long (cumulative).
        self.fetch_buckets = [0] * len(FETCH_BUCKETS)
        self._lock = threading.Lock()

    def local_path(self, location: Location, path: str, version: str) -> str:
        """A local file holding ``path`` of ``location``'s filesystem, downloaded if needed."""
        if not location.remote:
            return path
        digest = hashlib.sha256(f"{location.url}\n{version}\n{path}".encode()).hexdigest()
        target = self.directory / digest[:2] / f"{digest}{Path(path).suffix}"
        if target.is_file():
            os.utime(target)  # mark as recently used
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        t0 = time.perf_counter()
        try:
            location.fs.get_file(path, str(part))
            os.replace(part, target)
        except FileNotFoundError as exc:
            raise RefcatError(f"{location.url}: partition file {path} is missing") from exc
        finally:
            part.unlink(missing_ok=True)
        took = time.perf_counter() - t0
        with self._lock:
            self.fetches += 1
            self.fetch_seconds += took
            for i, upper in enumerate(FETCH_BUCKETS):
                self.fetch_buckets[i] += took <= upper
        self._evict(keep=target)
        return str(target)

    def nbytes(self) -> int:
        return sum(f.stat().st_size for f in self._files())

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [f for f in self.directory.glob("*/*") if not f.name.startswith(".")]

    def _evict(self, keep: Path) -> None:
        files = []
        for f in self._files():
            try:
                st = f.stat()
            except FileNotFoundError:  # evicted by another process
                continue
            files.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in files)
        for _, size, f in sorted(files, key=lambda t: t[0]):
            if total <= self.max_bytes:
                break
            if f == keep:
                continue
            f.unlink(missing_ok=True)
            total -= size

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
