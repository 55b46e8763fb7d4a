"""Simulated fields with known truth, for tests and benchmarks only (never the service).

`simfields.render` draws FITS frames (stars through a TAN WCS, sky, noise, saturation);
`simfields.sextractor` measures such frames with the real Source Extractor, giving the catalogue
and the reference survey with their truth. The worker's warm-up frame is `calib.simulate`'s,
which stays in the library.
"""
