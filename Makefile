# calserv: `make run` serves everything locally, `make test` runs the whole suite.
# Both set up a fresh machine on their own (Debian packages, .venv, PostgreSQL + Redis under ./var).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app web
export CALSERV_VAR_DIR ?= $(CURDIR)/var
export CALSERV_PG_PORT ?= 5433
export CALSERV_REDIS_PORT ?= 6380
# A developer's machine: the built-in secret key and pepper are accepted (production refuses them).
export CALSERV_ENV ?= development

.PHONY: run test install services stop migrate demo lint bench clean

$(VENV)/.installed: requirements.txt deploy/bootstrap.sh
	deploy/bootstrap.sh
	touch $@

install: $(VENV)/.installed

services: install
	deploy/services.sh start

stop:
	deploy/services.sh stop

migrate: services
	$(VENV)/bin/alembic upgrade head

demo: migrate
	$(FLASK) refcat build-demo

run: demo
	deploy/run.sh

test: services
	@command -v chromium >/dev/null || CALSERV_TEST_BROWSER=1 deploy/bootstrap.sh
	CALSERV_DATABASE_URL=postgresql+psycopg2://calserv@127.0.0.1:$(CALSERV_PG_PORT)/calserv_test \
	CALSERV_REDIS_URL=redis://127.0.0.1:$(CALSERV_REDIS_PORT)/1 \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

.venv-bench/.installed: requirements.txt bench/requirements-bench.txt
	[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
	.venv-bench/bin/pip install -q -r requirements.txt -r bench/requirements-bench.txt
	touch $@

# Speed and memory targets live here, not in tests; each prints a table (bench/results/).
bench: services .venv-bench/.installed
	$(PY) bench/bench_refcats.py
	.venv-bench/bin/python bench/bench_calib.py
	$(PY) bench/bench_load.py
	$(PY) bench/bench_plot.py

clean: stop
	rm -rf var
