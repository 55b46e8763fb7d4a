"""calserv's version, shown in every page's footer and part of cached light curves' ETags."""

VERSION = "0.5.0"
