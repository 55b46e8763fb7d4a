# calserv: `make run` serves everything locally, `make test` runs the whole suite.
# Both set up a fresh machine on their own (Debian packages, .venv, PostgreSQL + Redis under ./var).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app web
export CALSERV_VAR_DIR ?= $(CURDIR)/var
export CALSERV_PG_PORT ?= 5433
export CALSERV_REDIS_PORT ?= 6380

.PHONY: run test install services stop migrate demo lint lock lock-check bench clean tom-venv

# The development environment: runtime + tests + supervisord, from the hashed lock (deploy/bootstrap.sh).
$(VENV)/.installed: requirements-dev.lock deploy/bootstrap.sh
	CALSERV_DEV=1 deploy/bootstrap.sh
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

# supervisord runs web, worker, sweeper and Flower, restarting any that dies (deploy/run.sh).
run: demo
	deploy/run.sh

# The test database's and Redis's URLs (with the generated passwords) come from
# config.local_database_url and config.local_redis_url (Redis database 1).
test: services .venv-tom/.installed
	@(command -v chromium >/dev/null && [ -f node_modules/axe-core/axe.min.js ]) || CALSERV_TEST_BROWSER=1 deploy/bootstrap.sh
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# After editing requirements.txt or requirements-dev.txt: pin every dependency, with hashes
# (deploy/lock.sh). `make lock-check` (CI) fails when the locks and the requirements disagree.
lock: install
	deploy/lock.sh

lock-check: install
	deploy/lock.sh --check

# A TOM Toolkit 3 environment for tests/tom (tomtoolkit pins numpy and astropy older than
# calserv's, so a TOM runs apart, as in production); pip check keeps it consistent.
.venv-tom/.installed: tom_calserv/requirements-test.txt
	[ -x .venv-tom/bin/python ] || python3 -m venv .venv-tom
	.venv-tom/bin/pip install -q --no-deps -r tom_calserv/requirements-test.txt
	.venv-tom/bin/pip check
	touch $@

tom-venv: .venv-tom/.installed

.venv-bench/.installed: requirements.lock bench/requirements-bench.txt
	[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
	.venv-bench/bin/pip install -q --no-deps --require-hashes -r requirements.lock
	.venv-bench/bin/pip install -q -r bench/requirements-bench.txt
	touch $@

# Speed and memory targets live here, not in tests; each prints a table (bench/results/).
bench: services .venv-bench/.installed
	$(PY) bench/bench_refcats.py
	.venv-bench/bin/python bench/bench_calib.py
	$(PY) bench/bench_pulls.py
	$(PY) bench/bench_load.py
	$(PY) bench/bench_plot.py
	$(PY) bench/bench_storage.py
	$(PY) bench/bench_web_start.py
	$(PY) bench/bench_instrument.py

clean: stop
	rm -rf var
