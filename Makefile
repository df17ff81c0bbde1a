# Switchboard: `make run` runs the platform, `make test` passes the tests. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
SERVICES := ingest policy routing metrics
AUDITED := policy routing metrics

.PHONY: help install run test test-unit test-integration test-e2e test-faults lint fmt docs audit-verify bench bench-smoke bench-ingest bench-langdetect bench-policy bench-metrics bench-audit token migrate clean

help:
	@echo "make run    - embedded Kafka broker + the four services on :8001-8004 (SQLite under ./var)"
	@echo "make test   - unit, integration (real broker, real DB) and end-to-end tests"
	@echo "make lint   - ruff check, ruff format --check, mypy --strict"
	@echo "make audit-verify - check every service's hash-chained audit log (exit 1 if tampered)"
	@echo "make token ROLE=responder DEPT=transport SUB=r1 - a development bearer token"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(PYTHON) -m uv sync --frozen
	@touch $@

run: install
	$(PY) -m shared.devrun

# Everything but the long fault tests (marker slow; `make test-faults` runs those).
test: install
	$(PY) -m pytest -m "not slow" --durations=25

test-unit: install
	$(PY) -m pytest -m "not kafka and not e2e"

test-integration: install
	$(PY) -m pytest -m "kafka and not e2e"

test-e2e: install
	$(PY) -m pytest -m e2e

# Every fault-injection test, long ones included (the short ones also run in `make test`); prints the
# results table (fault, posts, lost, duplicates, recovery seconds) at the end. See docs/reliability.md.
test-faults: install
	$(PY) -m pytest tests/faults --durations=10

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The platform beside its baselines (B0 Kafka relay, B2 HTTP ceiling), W1 ingest, W2 open-loop latency.
bench: install
	$(PY) -m bench.run --profile full

bench-smoke: install
	$(PY) -m bench.run --profile smoke

# Regenerate docs/configuration.md from the settings classes.
docs: install
	$(PY) -m scripts.configdoc

ROLE ?= agency_system
DEPT ?=
SUB ?= dev-user
token: install
	@test -f var/dev-secret || { echo "var/dev-secret is missing: start the platform once with 'make run'." >&2; exit 1; }
	@AUTH_DEV_SECRET=$$(cat var/dev-secret) $(PY) -m shared.auth --role $(ROLE) --dept "$(DEPT)" --sub $(SUB)

# Apply every service's migrations to the databases named by <SERVICE>_DATABASE_URL (and _SCHEMA).
migrate: install
	@for s in $(SERVICES); do \
	  up=$$(echo $$s | tr a-z A-Z); url_var=$${up}_DATABASE_URL; schema_var=$${up}_DATABASE_SCHEMA; \
	  url=$${!url_var:-sqlite+aiosqlite:///./var/$$s.db}; schema=$${!schema_var:-}; \
	  echo "migrating $$s"; \
	  $(PY) -m shared.db.migrations services/$$s/migrations upgrade --url "$$url" $${schema:+--schema "$$schema"} || exit 1; \
	done

# Walk every audited service's hash-chained audit log (docs/audit.md); non-zero if any entry was edited,
# deleted, reordered or cut off. Same database variables as `make migrate`; a missing SQLite file is skipped.
audit-verify: install
	@rc=0; for s in $(AUDITED); do \
	  up=$$(echo $$s | tr a-z A-Z); url_var=$${up}_DATABASE_URL; schema_var=$${up}_DATABASE_SCHEMA; \
	  url=$${!url_var:-sqlite+aiosqlite:///./var/$$s.db}; schema=$${!schema_var:-}; \
	  $(PY) -m shared.audit verify --name $$s --url "$$url" $${schema:+--schema "$$schema"} || rc=1; \
	done; exit $$rc

# Metrics query benchmark over 1M events (W5). The dataset is loaded once and kept (phase load), then
# measured (phase query); BENCH_ARGS="--phase drop" removes it. See docs/benchmarks.md.
BENCH_ARGS ?=
bench-metrics: install
	nice -n 10 $(PY) -m bench.metrics $(BENCH_ARGS)

# Ingest throughput (single and batch) against a validate-only ceiling; PostgreSQL too with BENCH_DATABASE_URL.
bench-ingest: install
	$(PY) -m bench.ingest

bench-langdetect: install
	$(PY) -m bench.ingest_langdetect

# Policy benchmark: in-process screenings/s and POST /v1/checks p50/p99 (about 30 s).
bench-policy: install
	$(PY) bench/policy.py $(BENCH_ARGS)

# What the audit trail costs per transaction, alone and with concurrent writers (about 30 s per database).
bench-audit: install
	$(PY) -m bench.audit

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# Routing benchmark: in-process decision rate, then assignments/s through the embedded broker (under 60 s each).
.PHONY: bench-routing
bench-routing: install
	$(PY) -m bench.routing
