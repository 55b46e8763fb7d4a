"""Flower, with every page behind its password: `python -m workers.flower [flower options]`.

Flower asks for its basic-auth password (FLOWER_BASIC_AUTH) on its pages and API, but serves its
Prometheus `/metrics` (worker names, task counts and names) and `/healthcheck` to anyone who can
reach the port, which on a shared host is every local user. Here both ask for the same password,
as Flower's own pages do (`tornado.web.authenticated` over its basic-auth check);
tests/test_flower.py checks it against the installed Flower.
"""

from __future__ import annotations

import sys

import tornado.web
from celery.bin.celery import main as celery_main
from flower.views.monitor import Healthcheck, Metrics

from workers.celery_app import end_now


def _protect() -> None:
    for handler in (Metrics, Healthcheck):
        handler.get = tornado.web.authenticated(handler.get)


if __name__ == "__main__":
    _protect()
    sys.argv = ["celery", "-A", "workers.celery_app", "flower", *sys.argv[1:]]
    try:
        celery_main()
    except SystemExit as stop:
        end_now(stop.code)
