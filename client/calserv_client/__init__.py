"""calserv client: upload SExtractor catalogues to calserv and collect calibrated magnitudes.

Library use::

    from calserv_client import Client
    c = Client("http://127.0.0.1:5000", hashtag)
    job = c.upload("frame.cat", "ivo://110610", mjd=59000.5)
    result = c.wait(job["job_id"])   # result["mag"], result["mag_err"], result["filter"], ...

The command line batch uploader is ``calserv-upload`` (`calserv_client.cli`).
"""

from calserv_client.api import (
    DEFAULT_URL,
    CalservError,
    Client,
    Interrupted,
    RetryPolicy,
    parse_retry_after,
)
from calserv_client.config import ConfigError, load_settings
from calserv_client.version import __version__ as __version__

__all__ = [
    "DEFAULT_URL",
    "CalservError",
    "Client",
    "ConfigError",
    "Interrupted",
    "RetryPolicy",
    "load_settings",
    "parse_retry_after",
]
