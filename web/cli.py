"""Admin commands: `flask --app web observatory|alert|refcat|jobs ...`."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from db.models import Observatory
from db.session import session_scope
from web import keys
from web.alert_registry import add_alert
from web.errors import ApiError
from web.hygiene import single_line


def _session():
    """A transaction on the app's database (commands run inside the app context)."""
    return session_scope(current_app.config["DATABASE_URL"])


@click.group(cls=AppGroup)
def observatory() -> None:
    """Observatories and their API keys (hashtags)."""


@observatory.command("add")
@click.argument("name")
@click.option("--lon", type=float, required=True, help="East longitude, degrees")
@click.option("--lat", type=float, required=True, help="Latitude, degrees")
@click.option("--filters", default="", help="Comma-separated filter names, e.g. R,V")
def observatory_add(name: str, lon: float, lat: float, filters: str) -> None:
    """Register an observatory; the last line printed is its new hashtag (shown once)."""
    if not (-180 <= lon <= 360 and -90 <= lat <= 90):
        raise click.BadParameter("lon must be in [-180, 360] and lat in [-90, 90]")
    try:
        single_line("name", name)  # shown on pages, in job JSON and in CSV downloads
    except ApiError as e:
        raise click.BadParameter(f"{e.error}: {e.detail}") from None
    with _session() as s:
        if s.scalars(select(Observatory).where(Observatory.name == name)).first():
            raise click.ClickException(f"observatory {name!r} exists; use `observatory rotate`")
        obs = Observatory(
            name=name,
            lon=lon,
            lat=lat,
            filters=[f.strip() for f in filters.split(",") if f.strip()],
        )
        key = keys.set_key(obs)
        s.add(obs)
    click.echo(f"observatory {name} added; its hashtag (store it now, it is not kept):")
    click.echo(key)


@observatory.command("rotate")
@click.argument("name")
def observatory_rotate(name: str) -> None:
    """Issue a new hashtag for NAME; the old one stops working. Last line: the new hashtag."""
    with _session() as s:
        obs = s.scalars(select(Observatory).where(Observatory.name == name)).first()
        if obs is None:
            raise click.ClickException(f"no observatory {name!r}")
        key = keys.set_key(obs)
    click.echo(f"observatory {name}: new hashtag (the old one is revoked):")
    click.echo(key)


@observatory.command("revoke")
@click.argument("name")
def observatory_revoke(name: str) -> None:
    """Revoke NAME's hashtag; its data stay."""
    with _session() as s:
        obs = s.scalars(select(Observatory).where(Observatory.name == name)).first()
        if obs is None:
            raise click.ClickException(f"no observatory {name!r}")
        obs.revoked = True
    click.echo(f"observatory {name}: hashtag revoked")


@observatory.command("list")
def observatory_list() -> None:
    with _session() as s:
        for o in s.scalars(select(Observatory).order_by(Observatory.name)):
            state = "revoked" if o.revoked else "active"
            filters = ",".join(o.filters or [])
            click.echo(f"{o.name}\t{o.lon:.4f}\t{o.lat:.4f}\t{filters}\t{state}")


@click.group(cls=AppGroup)
def alert() -> None:
    """Alerts (transients to follow up)."""


@alert.command("add")
@click.argument("ivorn")
@click.option("--name", required=True)
@click.option("--ra", type=float, required=True, help="degrees")
@click.option("--dec", type=float, required=True, help="degrees")
@click.option("--url", default=None)
def alert_add(ivorn: str, name: str, ra: float, dec: float, url: str | None) -> None:
    """Insert an alert by IVORN."""
    with _session() as s:
        try:
            a = add_alert(s, ivorn, name, ra, dec, url=url)
        except ApiError as e:
            raise click.ClickException(f"{e.error}: {e.detail}") from None
        click.echo(f"alert {a.name} ({a.ivorn}) at {a.ra:.5f} {a.dec:+.5f} added")


@alert.command("import-csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def alert_import_csv(file: str) -> None:
    """Load or refresh alerts from a Gaia Science Alerts list (alerts.csv) or a TNS CSV export;
    idempotent. A file with a row it cannot read is refused whole."""
    from feeds.parse import FeedFormatError, parse
    from feeds.sync import upsert

    with click.open_file(file, encoding="utf-8-sig") as fh:
        text = fh.read()
    try:
        parsed = parse(text)
    except FeedFormatError as e:
        raise click.ClickException(f"{file}: {e}") from None
    if parsed.rejected:
        raise click.ClickException(f"{file}: nothing imported; " + "; ".join(parsed.rejected[:5]))
    with _session() as s:
        report = upsert(s, parsed)
    click.echo(
        f"{report.read} alerts read: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged"
    )


@alert.command("sync-feed")
@click.argument("url")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="seconds, in all")
def alert_sync_feed(url: str, timeout: float) -> None:
    """Sync the alerts with the list at URL now, as the beat task does (CALSERV_ALERT_FEED_URL):
    new alerts added, changed ones updated, alerts gone from it removed unless observed."""
    from feeds.sync import sync_feed

    report = sync_feed(url, timeout)
    if report is None:
        raise click.ClickException(f"{url}: not synced; see /healthz or the log for why")
    click.echo(
        f"{report.read} alerts read: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.kept} kept (observed), "
        f"{len(report.rejected)} rows not read"
    )
    for line in report.rejected[:20]:
        click.echo(f"  {line}")


@click.group(cls=AppGroup)
def jobs() -> None:
    """Calibration jobs."""


@jobs.command("sweep")
def jobs_sweep() -> None:
    """Re-send jobs that the queue lost."""
    from db.dispatch import sweep

    stale_after = timedelta(seconds=current_app.config["STALE_JOB_SECONDS"])
    sent = sweep(stale_after)
    click.echo(f"re-sent {len(sent)} job(s)" + "".join(f"\n{job_id}" for job_id in sent))


class _RefcatGroup(click.Group):
    """`flask refcat ...`: the `refcats.cli` group, imported when one of its commands runs (it
    loads numpy and pyarrow, which the web app itself never needs); its commands default to the
    app's store root."""

    def __init__(self, root: str):
        super().__init__("refcat", help="Reference catalogues (HATS HEALPix store).")
        self._root = root

    @staticmethod
    def _group() -> click.Group:
        from refcats.cli import refcat

        return refcat

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        ctx.default_map = {**(ctx.default_map or {}), name: {"root": self._root}}
        return self._group().get_command(ctx, name)


def register(app: Flask) -> None:
    """Add the command groups; `refcat` commands default to the app's store root."""
    for group in (observatory, alert, _RefcatGroup(app.config["REFCAT_DIR"]), jobs):
        app.cli.add_command(group)
