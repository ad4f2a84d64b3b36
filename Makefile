# Entry points for people and tools alike. Each target installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# Locked dependencies (exact versions and their hashes): requirements/dev.lock for development
# and CI, requirements/prod.lock for a server. `make lock` after editing pyproject.toml.
LOCK ?= requirements/dev.lock
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

.PHONY: install install-prod lock lock-upgrade run worker webhook-worker serve test lint format bench bench-latency bench-profile soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Exactly the locked versions, each checked against its hash; then this project itself.
$(VENV)/.installed: pyproject.toml m2m-auth-kit/pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip install --quiet --no-deps -e ./m2m-auth-kit
	touch $@

install: $(VENV)/.installed

# A server's dependencies only (no test tools): what a deployment installs.
install-prod: | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/prod.lock
	$(BIN)/pip install --quiet --no-deps . ./m2m-auth-kit

# Refresh the lock files from pyproject.toml, keeping every version that still fits.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet "pip-tools>=7.4"
	$(PIP_COMPILE) $(LOCK_ARGS) --extra dev -o requirements/dev.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) -o requirements/prod.lock pyproject.toml

# The same, with every dependency at its newest allowed version.
lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

# Development server: SQLite, demo data created once, http://127.0.0.1:8000, and beside it the
# outbox worker (mails on the console) and a webhook worker; Ctrl-C stops all three.
run: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py bootstrap --demo
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py run_worker & worker=$$!; \
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py run_webhook_worker & hooks=$$!; \
	trap 'kill $$worker $$hooks 2>/dev/null; wait $$worker $$hooks' EXIT INT TERM; \
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The outbox worker in production (e-mails; as many as you like, on any machine): run it beside
# `make serve`, under the same environment, e.g. as a second systemd unit.
worker: install
	$(BIN)/python manage.py run_worker

# Webhook deliveries only (outbox kind webhook.deliver), so that they scale apart from mails;
# `run_worker` delivers them too, so `make run` needs no second worker.
webhook-worker: install
	$(BIN)/python manage.py run_webhook_worker

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
	@test "$${BENCH_BRIDGE:-ours}" != a2wsgi || $(BIN)/python -c "import a2wsgi" 2>/dev/null || $(BIN)/pip install --quiet a2wsgi
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
