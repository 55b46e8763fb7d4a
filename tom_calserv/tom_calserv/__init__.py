"""tom_calserv: calibrate a TOM target's frames (SExtractor catalogues, RA/DEC/MAG tables, FITS
images) with a calserv server, and keep each result as the target's photometry."""
