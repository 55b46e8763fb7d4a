"""Helpers of the reference-store tests: brute-force answers to compare the store with."""

from pathlib import Path

import pyarrow as pa

from refcats.layout import Pixel, parse_partition_info, parse_properties
from refcats.sky import angular_distance_deg


def brute_cone(table: pa.Table, ra: float, dec: float, radius: float) -> set[int]:
    """source_ids within ``radius`` degrees of (ra, dec), by a full haversine scan."""
    d = angular_distance_deg(ra, dec, table.column("ra").to_numpy(), table.column("dec").to_numpy())
    return set(table.column("source_id").to_numpy()[d <= radius].tolist())


def ids(table: pa.Table) -> set[int]:
    return set(table.column("source_id").to_numpy().tolist())


def pixels(collection) -> list[Pixel]:
    """Partitions of the object catalogue of a survey built by calserv (a collection)."""
    collection = Path(collection)
    props = parse_properties((collection / "collection.properties").read_text())
    catalog = collection / props["hats_primary_table_url"]
    return parse_partition_info((catalog / "partition_info.csv").read_text())


def collection_location(where: str, collection: Path, request) -> tuple[str, list[str]]:
    """Where a test collection is registered from (``local``, ``http`` or ``s3``, served by the
    fixtures of those names) and the extra `refcat register` options that place needs."""
    if where == "local":
        return str(collection), []
    if where == "http":
        return f"{request.getfixturevalue('http_server').url}/{collection.name}", []
    s3 = request.getfixturevalue("s3_server")
    return f"s3://{s3.bucket}/viz", s3.cli_options()
