# Tallypass — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app app
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test install install-dev serve worker beat lint bench-pos bench-pkpass screenshots fuzz-api clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Tallypass needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: set up everything on a bare machine (SQLite, outbox mode) and serve on http://$(HOST):$(PORT)
run: install
	$(FLASK) dev-certs
	$(FLASK) db upgrade
	TALLYPASS_BASE_URL=$${TALLYPASS_BASE_URL:-http://$(HOST):$(PORT)} $(FLASK) demo --if-empty
	@echo
	@echo "  Tallypass is starting on http://$(HOST):$(PORT)"
	@echo "    health check   http://$(HOST):$(PORT)/healthz"
	@echo "    POS API        http://$(HOST):$(PORT)/api/v1/pos/  (signed; see README.md)"
	@echo "    dashboard      http://$(HOST):$(PORT)/dashboard/  (make an account: .venv/bin/flask --app app user create EMAIL --role admin)"
	@echo
	TALLYPASS_BASE_URL=$${TALLYPASS_BASE_URL:-http://$(HOST):$(PORT)} $(FLASK) run --host $(HOST) --port $(PORT)

## test: the whole suite (PostgreSQL when TALLYPASS_TEST_DATABASE_URL is set, SQLite otherwise) and lint
test: install-dev
	$(VENV)/bin/ruff check app tests bench migrations passes
	$(PY) -m pytest

## serve: production-style web process (set TALLYPASS_* first); threaded workers keep connections alive
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
THREADS ?= 8
serve: install
	$(VENV)/bin/gunicorn --worker-class gthread --workers $(WORKERS) --threads $(THREADS) --bind $(HOST):$(PORT) 'app:create_app()'

## worker / beat: Celery processes (need TALLYPASS_BROKER_URL)
worker: install
	$(VENV)/bin/celery -A app.celery_app worker --loglevel INFO
beat: install
	$(VENV)/bin/celery -A app.celery_app beat --loglevel INFO

lint: install-dev
	$(VENV)/bin/ruff check app tests bench migrations passes

bench-pos: install
	$(PY) bench/pos.py

bench-pkpass: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/pkpass.py

## fuzz-api: schemathesis over the marketer API (every check and phase, stateful too) for longer than the
## bounded run inside `make test`: more examples and steps, more seeds, and the coverage phase of the segment
## rule trees too. Needs PostgreSQL (TALLYPASS_TEST_DATABASE_URL); fails on any finding.
FUZZ_SEEDS    ?= 7 42 1234 2024 31337
FUZZ_EXAMPLES ?= 100
FUZZ_STEPS    ?= 30
fuzz-api: install-dev
	TALLYPASS_FUZZ_SEEDS="$(FUZZ_SEEDS)" TALLYPASS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TALLYPASS_FUZZ_STEPS=$(FUZZ_STEPS) \
	TALLYPASS_FUZZ_TREES=1 $(VENV)/bin/pytest -q tests/web/test_openapi.py -k schemathesis

## screenshots: retake docs/screenshots/ with headless Chromium (needs PostgreSQL, TALLYPASS_TEST_DATABASE_URL)
screenshots: install-dev
	TALLYPASS_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest -q tests/browser

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
