"""The floor of bench_load.py: a bare Flask endpoint doing one Postgres query, under the same
gunicorn settings as calserv, so that calserv's CPU per request can be read against the least
any Flask + Postgres request costs on this machine.

    gunicorn -c deploy/gunicorn.conf.py --pythonpath bench floor_app:app   (CALSERV_DATABASE_URL)
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
_engine = create_engine(os.environ["CALSERV_DATABASE_URL"], isolation_level="AUTOCOMMIT")
_QUERY = text("SELECT id, state FROM jobs WHERE id = :id")


@app.get("/floor/<job_id>")
def floor(job_id: str):
    with _engine.connect() as conn:
        row = conn.execute(_QUERY, {"id": job_id}).first()
    return jsonify(id=job_id, state=None if row is None else row.state, q=request.args.get("q"))
