"""``calserv-upload``: the overnight batch uploader.

    export CALSERV_HASHTAG=...            # or ~/.config/calserv/config.ini, or --hashtag-file
    calserv-upload night/ --event ivo://110610 --mjd 60999.85 --jobs 4
    calserv-upload --manifest night.csv --json > results.json
    find night/ -name '*.ldac' | calserv-upload - --event Gaia16aye

Exit status: 0 when every upload succeeded (or, with --no-wait, was accepted), 1 when any
failed, 2 for a usage or configuration error or a refused key (401/403: the batch stops at
once), 130 when interrupted (re-run to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from calserv_client.api import Client, RetryPolicy
from calserv_client.batch import ERROR, Batch, Options, is_failure
from calserv_client.config import KEY_HELP, ConfigError, load_settings
from calserv_client.inputs import (
    InputError,
    find_catalogues,
    force_filter_value,
    plan,
    read_manifest,
)
from calserv_client.state import DEFAULT_NAME, StateError, StateFile, default_state_path
from calserv_client.version import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _RefuseHashtag(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            "refusing --hashtag: a key on the command line is visible to every user (ps) and "
            f"kept in shell history; {KEY_HELP}"
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="calserv-upload",
        description="Upload SExtractor catalogues to calserv and collect calibrated magnitudes.",
        epilog=(
            "Metadata per file, first found wins: manifest row, FITS header (MJD-OBS/DATE-OBS, "
            "EXPTIME), command-line option. The key comes from CALSERV_HASHTAG, the config file "
            "([calserv] url=..., hashtag=...) or --hashtag-file, never from the command line."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        help="catalogue files, directories or glob patterns; - reads paths from stdin, one a line",
    )
    p.add_argument("--manifest", metavar="CSV", help="rows file,event,mjd[,exptime,filter,comment]")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into directories")
    meta = p.add_argument_group("upload parameters (the fields of POST /upload)")
    meta.add_argument("-e", "--event", help="alert IVORN (ivo://...) or name, for every file")
    meta.add_argument("--mjd", type=float, help="MJD for files without one in manifest/header")
    meta.add_argument("--exptime", type=float, help="exposure time in seconds (default: header)")
    meta.add_argument(
        "--filter", help="force a filter: V (any survey), APASS/V, or APASS/any; default automatic"
    )
    meta.add_argument("--match-dist", type=float, metavar="ARCSEC", help="crossmatch radius")
    meta.add_argument("--comment", help="comment stored with each observation")
    meta.add_argument("--dry-run", action="store_true", help="calibrate only, store no follow-up")
    meta.add_argument("--plot", action="store_true", help="render calibration plots (noPlot=0)")
    run = p.add_argument_group("running")
    run.add_argument("-j", "--jobs", type=int, default=4, help="concurrent requests (default 4)")
    run.add_argument("--no-wait", action="store_true", help="submit only; a re-run collects")
    run.add_argument(
        "--timeout", type=float, default=3600, help="seconds to wait for each job (default 3600)"
    )
    run.add_argument("--retry-failed", action="store_true", help="resend jobs that failed before")
    run.add_argument("--max-attempts", type=int, default=8, help="tries per request (default 8)")
    run.add_argument(
        "--state",
        metavar="FILE",
        help=f"resume file (default {DEFAULT_NAME} next to the inputs, or under "
        "$XDG_STATE_HOME/calserv/ when their directory is read-only)",
    )
    run.add_argument("--no-state", action="store_true", help="do not keep a resume file")
    conn = p.add_argument_group("server")
    conn.add_argument("--url", help="calserv URL (default $CALSERV_URL, config, or local)")
    conn.add_argument("--config", metavar="FILE", help="config file (~/.config/calserv/config.ini)")
    conn.add_argument("--hashtag-file", metavar="FILE", help="file holding the observatory key")
    conn.add_argument("--hashtag", nargs="?", action=_RefuseHashtag, help=argparse.SUPPRESS)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    out.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on stderr (there is none when stderr is not a terminal)",
    )
    out.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


# -- output -----------------------------------------------------------------------------------
def _mag(rec: dict) -> str:
    if rec.get("status") != "succeeded" or rec.get("mag") is None:
        return ""
    if rec.get("limit"):
        lim = rec.get("limiting_mag") if rec.get("limiting_mag") is not None else rec["mag"]
        return f">{lim:.3f} (limit)"
    err = rec.get("mag_err")
    return f"{rec['mag']:.3f} ± {err:.3f}" if isinstance(err, (int, float)) else f"{rec['mag']:.3f}"


def _short(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results: list[dict]) -> str:
    head = ("file", "alert", "status", "mag", "filter", "job", "error")
    rows = []
    for r in results:
        band = "/".join(x for x in (r.get("survey"), r.get("filter")) if x)
        rows.append(
            (
                _clip(_short(r.get("file", "")), 48),
                _clip(str(r.get("alert") or r.get("event") or ""), 28),
                r.get("status") or "",
                _mag(r),
                band,
                r.get("job_id") or "",
                _clip(" ".join(str(r.get("error") or "").split()), 90),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def summarize(results: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("status") or "?"] = counts.get(r.get("status") or "?", 0) + 1
    return {
        "files": len(results),
        "counts": counts,
        "resumed": sum(1 for r in results if r.get("resumed")),
    }


# -- main -------------------------------------------------------------------------------------
def _log_request(method: str, path: str, status: int | None, elapsed: float) -> None:
    stamp = time.strftime("%H:%M:%S")
    line = f"{stamp} {method} {path} -> {status or 'no connection'} in {elapsed * 1000:.0f} ms\n"
    sys.stderr.write(line)  # one write: lines from concurrent requests never interleave


def _stdin_paths(inputs: list[str]) -> list[str]:
    """`inputs` with `-` replaced by the paths read from stdin (one a line, blanks skipped)."""
    if "-" not in inputs:
        return inputs
    lines = [line.strip() for line in sys.stdin.read().splitlines()]
    out: list[str] = []
    for arg in inputs:
        out.extend((x for x in lines if x) if arg == "-" else [arg])
    return out


class _Progress:
    """A progress bar on stderr: files done, frames/s and the expected end (wall clock)."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True)

    def done(self, rec: dict) -> None:
        self.bar.update(1)
        rate = self.bar.format_dict.get("rate")
        left = self.bar.total - self.bar.n
        end = ""
        if rate and left:
            end = " ends ~" + time.strftime("%H:%M:%S", time.localtime(time.time() + left / rate))
        self.bar.set_postfix_str(f"{_short(rec.get('file', ''))[-30:]} {rec.get('status')}{end}")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def fail(msg: str, code: int = EXIT_USAGE) -> int:
        print(f"calserv-upload: error: {msg}", file=sys.stderr)
        return code

    if args.inputs.count("-") > 1:
        return fail("give - (paths on stdin) once")
    args.inputs = _stdin_paths(args.inputs)
    if not args.inputs and not args.manifest:
        return fail("give catalogue files, directories or globs, or --manifest CSV")
    if args.jobs < 1 or args.max_attempts < 1:
        return fail("--jobs and --max-attempts must be at least 1")
    try:
        settings = load_settings(args.url, args.config, args.hashtag_file)
    except ConfigError as e:
        return fail(str(e))
    try:
        files = find_catalogues(args.inputs, recursive=args.recursive) if args.inputs else []
        manifest = read_manifest(args.manifest) if args.manifest else []
    except InputError as e:
        return fail(str(e))
    items = plan(
        files,
        manifest,
        event=args.event,
        mjd=args.mjd,
        exptime=args.exptime,
        force_filter=force_filter_value(args.filter),
        comment=args.comment,
        dry_run=args.dry_run,
    )
    client = Client(
        settings.url,
        settings.hashtag,
        retry=RetryPolicy(max_attempts=args.max_attempts),
        on_response=_log_request if args.verbose else None,
    )
    opts = Options(
        match_dist=args.match_dist,
        dry_run=args.dry_run,
        no_plot=not args.plot,
        jobs=args.jobs,
        wait=not args.no_wait,
        timeout=args.timeout,
        retry_failed=args.retry_failed,
    )
    state_path = Path(args.state) if args.state else default_state_path(files, args.manifest)
    if args.no_state:
        state_path = Path(os.devnull)
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        bar = _Progress(len(items))

    def on_done(rec: dict) -> None:
        if bar is not None:
            bar.done(rec)

    old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = EXIT_OK
    try:
        state = StateFile(state_path) if not args.no_state else _NullState()
        with state:
            batch = Batch(client, items, state, opts, on_done=on_done)
            try:
                results = batch.run()
            except KeyboardInterrupt:
                results = batch.results()
                code = EXIT_INTERRUPTED
            if bar is not None:
                bar.bar.update(len(batch.problems))
    except StateError as e:
        return fail(str(e))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if bar is not None:
            bar.bar.close()
    if batch.key_refused is not None:
        code = EXIT_USAGE
    elif code == EXIT_OK and any(is_failure(r, wait=opts.wait) for r in results):
        code = EXIT_FAILED
    summary = summarize(results)
    if args.json:
        json.dump(
            {
                "summary": {**summary, "exit_code": code, "state": str(state_path)},
                "results": results,
            },
            sys.stdout,
            indent=1,
            default=str,
        )
        sys.stdout.write("\n")
    else:
        print(format_table(results))
        counts = ", ".join(f"{n} {s}" for s, n in sorted(summary["counts"].items()))
        extra = f"; {summary['resumed']} already done in {state_path}" if summary["resumed"] else ""
        print(f"\n{summary['files']} files: {counts}{extra}")
        if code == EXIT_INTERRUPTED:
            print(f"interrupted: re-run the same command to resume ({state_path})")
        elif any(r.get("status") == ERROR for r in results):
            print("some uploads were refused or not sent; see the error column")
    if batch.key_refused is not None:
        fail(f"the server refused the observatory key, batch stopped: {batch.key_refused}")
    return code


class _NullState(StateFile):
    def __init__(self):
        super().__init__(Path(os.devnull))

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
