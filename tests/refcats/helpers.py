"""Helpers of the reference-store tests: brute-force answers to compare the store with."""

import pyarrow as pa

from refcats.sky import angular_distance_deg


def brute_cone(table: pa.Table, ra: float, dec: float, radius: float) -> set[int]:
    """source_ids within ``radius`` degrees of (ra, dec), by a full haversine scan."""
    d = angular_distance_deg(ra, dec, table.column("ra").to_numpy(), table.column("dec").to_numpy())
    return set(table.column("source_id").to_numpy()[d <= radius].tolist())


def ids(table: pa.Table) -> set[int]:
    return set(table.column("source_id").to_numpy().tolist())
