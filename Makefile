# Entry points for people and tools alike. Each target installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test lint format bench bench-latency bench-profile soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e './m2m-auth-kit[django,drf,requests,httpx]'
	touch $@

install: $(VENV)/.installed

# Development server: SQLite, demo data created once, http://127.0.0.1:8000
run: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py bootstrap --demo
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production server (set SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, OAUTH_ISSUER first).
serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/python manage.py bootstrap
	$(BIN)/gunicorn -c gunicorn.conf.py

# The whole suite. Browser tests need Chromium: installed from Debian when missing.
test: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	   echo "warning: chromium could not be installed; browser tests will fail")
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Style, and the import rules of the Architecture section (import-linter, pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy --config-file m2m-auth-kit/pyproject.toml m2m-auth-kit/src/m2m_auth_kit

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Token endpoint benchmark against gunicorn on SQLite and PostgreSQL (database m2m_bench, created
# when missing; PostgreSQL must be running). BENCH_DURATION=10 BENCH_CONCURRENCY=1,8,32;
# BENCH_SCALE=1 also seeds 100,000 clients. Prints every figure; see bench/README.md.
bench: install
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@command -v openssl >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq openssl >/dev/null)
	$(BIN)/python bench/run.py

# Single-client warm latency (median, p99) on SQLite and PostgreSQL.
bench-latency: install
	$(BIN)/python bench/latency.py

# Where the token endpoint spends its time under load (py-spy is a development tool, not a dependency).
bench-profile: install
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@test -x $(BIN)/py-spy || $(BIN)/pip install --quiet py-spy
	$(BIN)/python bench/profile.py $(PROFILE_ARGS)

# 60 s of token requests and management API calls together from 4 processes (gunicorn on
# PostgreSQL, database m2m_soak): requests, errors, p50/p99. SOAK_ARGS="--seconds 120 --processes 8".
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) staticfiles
