"""The storage interface both backends implement, and the rules every key follows."""

from __future__ import annotations

import abc
import logging
import time
from typing import BinaryIO

log = logging.getLogger(__name__)
#: Waits between the tries of :meth:`BlobStore.put_retrying`: a disk that an operator or a
#: cleanup frees, or a store that a restart or a network blip took away, is usually back within
#: seconds; a longer outage is the caller's to handle (a job keeps its result without the image).
RETRY_WAITS_S = (0.5, 1.0, 2.0, 4.0)


class BlobNotFound(FileNotFoundError):
    """No object under this key."""


class StoreUnavailable(Exception):
    """The store could not be reached or refused the request (network, credentials, server
    error); nothing was written. Worth retrying."""


class StoreFull(OSError):
    """The store refused the bytes for lack of space (ENOSPC/EDQUOT); nothing was kept."""


def check_key(key: str) -> str:
    """`key` if it is a relative `/`-separated name without `.`/`..` parts; ValueError if not."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad blob key {key!r}: use a relative name like 'plots/<job>.png'")
    return key


class BlobWriter(abc.ABC):
    """Bytes written in chunks, kept only when :meth:`commit` names their key.

    Used as a context manager: leaving it without a commit (an error, a rejected upload) leaves
    nothing behind.
    """

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self, key: str) -> None:
        """Make the bytes durable under `key` (replacing any object there); returns once a crash
        can no longer lose them."""

    @abc.abstractmethod
    def discard(self) -> None: ...

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class BlobStore(abc.ABC):
    """A flat namespace of immutable objects addressed by key."""

    #: The URL the store was opened from, without credentials (for logs and error messages).
    url: str

    @abc.abstractmethod
    def writer(self) -> BlobWriter:
        """A writer for bytes whose key is known only at the end (uploads: by their sha256)."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` durably under `key`."""
        with self.writer() as w:
            w.write(data)
            w.commit(key)

    def put_retrying(self, key: str, data: bytes, waits_s: tuple[float, ...] = RETRY_WAITS_S):
        """:meth:`put`, tried again after each of `waits_s` while the store is full
        (:class:`StoreFull`) or unreachable (:class:`StoreUnavailable`); the last error is raised
        when every try failed. Putting the same key again is safe: a put replaces the object."""
        for wait in (*waits_s, None):
            try:
                return self.put(key, data)
            except (StoreFull, StoreUnavailable) as e:
                if wait is None:
                    raise
                log.warning("event=store_put_retry key=%s wait_s=%.1f error=%r", key, wait, str(e))
                time.sleep(wait)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A binary file reading the object as a stream; :class:`BlobNotFound` if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if present."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """The keys starting with `prefix` (a directory-like prefix ending in `/`)."""
