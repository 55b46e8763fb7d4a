"""The local-directory backend: a crash never leaves a half-written file under a key."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from blobstore.base import BlobNotFound, BlobStore, BlobWriter, StoreFull, check_key

_FULL = (errno.ENOSPC, errno.EDQUOT)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalWriter(BlobWriter):
    """A temporary file in the store's root (same filesystem), renamed into place on commit."""

    def __init__(self, root: Path):
        self._root = root
        try:
            fd, self._tmp = tempfile.mkstemp(dir=root, prefix=".incoming-")
        except OSError as e:
            raise _full(e) from None
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        try:
            self._out.write(chunk)
        except OSError as e:
            raise _full(e) from None

    def commit(self, key: str) -> None:
        final = self._root / check_key(key)
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            made = _make_parents(self._root, final.parent)
            os.replace(self._tmp, final)
        except OSError as e:
            raise _full(e) from None
        # The rename, and any directory made for it, durable before the caller commits a row.
        for d in (final.parent, *made):
            _fsync_dir(d)

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # flushing the rest may fail (a full disk): unwanted
            self._out.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


def _make_parents(root: Path, parent: Path) -> list[Path]:
    """Create `parent` under `root`; the directories whose entries changed (to fsync)."""
    missing = []
    d = parent
    while d != root and not d.is_dir():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        m.mkdir(exist_ok=True)
    return [m.parent for m in missing]


def _full(e: OSError) -> OSError:
    return StoreFull(e.errno, f"the store's disk is full: {e.strerror}") if e.errno in _FULL else e


class LocalStore(BlobStore):
    """Objects as files under one directory (`<root>/<key>`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.url = str(self.root)

    def writer(self) -> LocalWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        return LocalWriter(self.root)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.root / check_key(key), "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        (self.root / check_key(key)).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
