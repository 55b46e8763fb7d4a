"""The store named by a URL: a local directory or an S3-compatible bucket."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from blobstore.base import BlobStore
from blobstore.local import LocalStore


def parse_url(url: str) -> tuple[str, str, str]:
    """`(scheme, location, prefix)`: `("file", "/srv/var", "")` or `("s3", "bucket", "pre/fix")`;
    ValueError naming what to write instead."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        path = parts.path if parts.scheme else url
        if parts.netloc not in ("", "localhost") or not Path(path).is_absolute():
            raise ValueError(
                f"{url!r}: a local store is an absolute directory (/srv/calserv/var or file:///...)"
            )
        return "file", path, ""
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment or parts.username:
            raise ValueError(
                f"{url!r}: write s3://bucket/prefix (credentials go in the AWS_* variables)"
            )
        return "s3", parts.netloc, parts.path.strip("/")
    raise ValueError(f"{url!r}: the store is a local directory or s3://bucket/prefix")


@cache
def open_store(url: str, endpoint_url: str | None = None) -> BlobStore:
    """The store at `url` (one object per URL and process); `endpoint_url` points s3:// at a
    non-AWS server (MinIO, Ceph, moto)."""
    scheme, location, prefix = parse_url(url)
    if scheme == "file":
        return LocalStore(location)
    from blobstore.s3 import S3Store  # s3fs is imported only where it is used

    return S3Store(location, prefix, endpoint_url)
