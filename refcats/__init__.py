"""calserv reference catalogues: a HATS-compatible HEALPix store of photometric surveys.

Layout (one directory per survey under the store root, calserv's ``refcat_dir`` setting)::

    ROOT/SURVEY -> .SURVEY@v<time>/     symlink to the current version (atomic re-ingest)
        properties                      HATS key=value: obs_collection, dataproduct_type=object,
                                        hats_nrows, hats_col_ra/dec, hats_order, moc_sky_fraction,
                                        calserv_bands=G,BP,RP, calserv_npartitions, ...
        partition_info.csv              Norder,Npix
        dataset/Norder=k/Dir=D/Npix=n.parquet   HEALPix NESTED, rows sorted by _healpix_29,
                                        columns _healpix_29, [source_id], ra, dec, <b>, <b>_err
        margin/                         HATS margin catalogue (dataproduct_type=margin,
                                        hats_margin_threshold in arcsec, same partitions)

Build one with ``flask --app web refcat ingest SURVEY FILE --bands ...`` (`refcats.ingest`),
the Gaia demo with ``refcat build-demo`` (`refcats.gaia_demo`), query with `RefStore`.

Dropping in an existing HATS catalogue (made by ``hats-import``): copy or symlink its
directory to ``ROOT/NAME``. The catalogue's ``properties`` (or ``hats.properties``) give the
RA/Dec column names (``hats_col_ra``/``hats_col_dec``); bands are taken from ``calserv_bands``
if you add that key, else every column ``X`` with an ``X_err`` partner (add
``calserv_bands=V,B`` to the properties to choose). A margin catalogue is used when found as
``ROOT/NAME/margin``, as sibling ``ROOT/NAME_margin`` (``dataproduct_type=margin``) or, for a
HATS collection directory (``collection.properties``), as its ``default_margin``. Without a
margin, queries read every partition the cone touches, which is equally exact.
"""

from refcats.layout import RefcatError, SurveyInfo

__all__ = ["RefcatError", "SurveyInfo"]
