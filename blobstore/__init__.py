"""Where calserv keeps its files: raw uploads, calibration plots, cutouts, light-curve images.

One small interface (:class:`BlobStore`) with two backends, chosen by a URL:

- a local directory (`/srv/calserv/var` or `file:///srv/calserv/var`, the default): files are
  written to a temporary name, fsync'd, renamed into place and their directory fsync'd, so a
  committed key survives a power cut;
- an S3-compatible object store (`s3://bucket/prefix`) through s3fs: a key exists once its PUT has
  been answered, which the object store promises is durable.

Keys are relative, `/`-separated names (`uploads/ab/ab12….cat`, `plots/<job>.png`; see
:mod:`blobstore.keys`). This package imports nothing else of calserv, so the web tier and the
workers share it without depending on each other.
"""

from __future__ import annotations

from blobstore.base import (
    BlobNotFound,
    BlobStore,
    BlobWriter,
    StoreFull,
    StoreUnavailable,
    check_key,
)
from blobstore.open import open_store, parse_url

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "BlobWriter",
    "StoreFull",
    "StoreUnavailable",
    "check_key",
    "open_store",
    "parse_url",
]
