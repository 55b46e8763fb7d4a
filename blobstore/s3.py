"""The S3-compatible backend (AWS S3, MinIO, Ceph RGW, moto...) through s3fs.

s3fs rather than boto3: the reference stores already read remote HATS catalogues through fsspec
and s3fs, so one S3 stack (credentials, endpoint, retries) serves both; it streams reads in ranged
GETs and switches to multipart uploads by itself for large objects. Credentials and region come
from the standard AWS chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
instance roles...); the endpoint from the store's settings or `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import s3fs

from blobstore.base import BlobNotFound, BlobStore, BlobWriter, StoreUnavailable, check_key


@contextlib.contextmanager
def _reachable(store: S3Store, key: str) -> Iterator[None]:
    """botocore's and s3fs's errors (after their own retries) as :class:`StoreUnavailable`; a
    missing key stays :class:`BlobNotFound`."""
    try:
        yield
    except FileNotFoundError:
        raise BlobNotFound(key) from None
    except ValueError:
        raise
    except Exception as e:
        raise StoreUnavailable(f"{store.url}/{key}: {type(e).__name__}: {e}") from e


class S3Writer(BlobWriter):
    """Spooled to a local temporary file (the key is known only at the end), then one PUT (or a
    multipart upload for large objects): the object exists whole or not at all."""

    def __init__(self, store: S3Store):
        self._store = store
        self._tmp = tempfile.NamedTemporaryFile(prefix="calserv-blob-")  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        self._tmp.write(chunk)

    def commit(self, key: str) -> None:
        self._tmp.flush()
        with _reachable(self._store, key):
            self._store.fs.put_file(self._tmp.name, self._store.path(key))

    def discard(self) -> None:
        self._tmp.close()


class S3Store(BlobStore):
    """Objects under `s3://<bucket>/<prefix>/<key>`."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._options = {
            "endpoint_url": endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
            "use_listings_cache": False,  # other hosts write: never answer from a stale listing
        }
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @property
    def fs(self) -> s3fs.S3FileSystem:
        # fsspec caches the instance per process (and drops it in a forked child), so gunicorn and
        # Celery's prefork children each get their own connections.
        return s3fs.S3FileSystem(**self._options)

    def path(self, key: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, check_key(key)) if p)

    def writer(self) -> S3Writer:
        return S3Writer(self)

    def put(self, key: str, data: bytes) -> None:
        with _reachable(self, key):
            self.fs.pipe_file(self.path(key), data)

    def open(self, key: str) -> BinaryIO:
        # One HEAD here, then ranged GETs as the caller reads.
        with _reachable(self, key):
            return self.fs.open(self.path(key), "rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(BlobNotFound), _reachable(self, key):
            self.fs.rm_file(self.path(key))

    def list(self, prefix: str) -> list[str]:
        base = self.path(prefix.rstrip("/"))
        root = self.path("x")[:-1]
        try:
            with _reachable(self, prefix):
                return sorted(p[len(root) :] for p in self.fs.find(base))
        except BlobNotFound:
            return []
