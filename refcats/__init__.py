"""calserv reference catalogues: HATS catalogues of photometric surveys, built or registered.

`refcats.ingest` builds a survey under the store root (calserv's ``refcat_dir`` setting) as a
HATS collection — catalogue and margin side by side, published atomically (`refcats.layout`
shows the layout; `refcats.presets` the published survey formats it reads). `refcats.registry`
records existing HATS catalogues or collections used in place (local, ``http(s)://``, ``s3://``)
with their band maps. `refcats.store.RefStore` lists them, checks their health and answers cone
and footprint queries, reading remote partitions through `refcats.location`'s on-disk cache.
The ``flask --app web refcat`` commands are in `refcats.cli`; docs/reference-surveys.md is the
operator's guide.

The package itself imports nothing: the web tier reads `refcats.stats` without loading numpy.
"""
