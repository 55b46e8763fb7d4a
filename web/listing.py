"""Paged lists answered as HTML, JSON (`{"items", "page", "per_page", "total"}`) or CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify, render_template, request

from web.errors import ApiError, parse_bounded
from web.hygiene import csv_cell
from web.negotiation import TABLE_FORMATS, negotiate
from web.tables import TableInfo, table_response

MAX_PER_PAGE = 500
#: What every list is served as; HTML (the first) for browsers and plain calls.
LIST_FORMATS = ("html", "json", "csv", *TABLE_FORMATS)


@dataclass(frozen=True)
class Paging:
    """1-based page number and page size, as asked for by `?page=&per_page=`."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def pages(self, total: int) -> int:
        return max(1, -(-total // self.per_page))

    def check(self, total: int) -> None:
        """404 for a page past the last one (page 1 of an empty list exists)."""
        if self.page > self.pages(total):
            raise ApiError(
                404, f"no page {self.page}", f"there are {self.pages(total)} pages of {total}"
            )


@dataclass(frozen=True)
class Sort:
    """The order a list is shown in: `key` as given in `?sort=` (`mjd`, `-mjd`), and the SQL."""

    key: str
    clauses: tuple

    @property
    def column(self) -> str:
        return self.key.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.key.startswith("-")


def sort_arg(columns: Mapping[str, Any], default: Sequence[str]) -> Sort:
    """`?sort=<column>` or `?sort=-<column>` (descending) over `columns` (name → SQL column),
    then `default` as tie-breakers; 422 naming the sortable columns for anything else."""
    raw = request.args.get("sort", "").strip()
    keys = [raw, *default] if raw else list(default)
    clauses = []
    for key in keys:
        expr = columns.get(key.lstrip("-"))
        if expr is None:
            raise ApiError(
                422, f"cannot sort by {key[:40]!r}", f"sort by one of {', '.join(columns)}"
            )
        clauses.append(expr.desc().nulls_last() if key.startswith("-") else expr.asc().nulls_last())
    return Sort(key=keys[0], clauses=tuple(clauses))


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    return parse_bounded(name, raw, int, lo, hi)


def paging(default_per_page: int = 50) -> Paging:
    return Paging(
        page=_int_arg("page", 1, 1, 10**6),
        per_page=_int_arg("per_page", default_per_page, 1, MAX_PER_PAGE),
    )


def float_arg(name: str) -> float | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    return parse_bounded(name, raw, float, -1e9, 1e9)  # finite: NaN and inf are refused


def flag_arg(name: str) -> bool:
    return request.args.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def csv_response(rows: Iterable[dict], columns: Sequence[str], filename: str) -> Response:
    """`rows` as a CSV download; text cells a spreadsheet would run as formulas are neutralised."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else csv_cell(row[k]) for k in columns})
    resp = Response(buf.getvalue(), mimetype="text/csv")
    # The name comes from user data (an alert's name): only safe characters reach the header.
    safe_name = re.sub(r"[^\w.+-]", "_", filename, flags=re.ASCII)
    resp.headers["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    return resp


def list_response(
    items: list[dict],
    total: int,
    pg: Paging,
    template: str,
    columns: Sequence[str],
    filename: str,
    **context,
) -> Response:
    """The page of `items` in the requested format (HTML, JSON, CSV or an astronomy table);
    HTML gets `items, total, paging, pages`; `filename` is the download's name (`alerts.csv`)."""
    fmt = negotiate(LIST_FORMATS)
    if fmt == "json":
        return jsonify(items=items, page=pg.page, per_page=pg.per_page, total=total)
    if fmt == "csv":
        return csv_response(items, columns, filename)
    if fmt in TABLE_FORMATS:
        stem = filename.rsplit(".", 1)[0]
        info = TableInfo(
            title=f"calserv {stem}, page {pg.page}",
            facts={"total": total, "page": pg.page, "per_page": pg.per_page},
            truncated=len(items) < total,
        )
        return table_response(items, columns, fmt, info, stem)
    args = {k: v for k, v in request.args.items() if k not in ("page", "format", "outputFormat")}
    html = render_template(
        template,
        items=items,
        total=total,
        paging=pg,
        pages=pg.pages(total),
        query_args=args,
        **context,
    )
    return Response(html, mimetype="text/html")
