# Developer entry points. The local stack's state lives under $(LOCAL) (RECSYS_LOCAL_DIR moves it,
# RECSYS_PORT_OFFSET shifts every port), so several isolated stacks can run side by side.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements-stack.txt requirements-dev.txt
VENV_STAMP := $(VENV)/.requirements-installed
LOCAL := $(or $(RECSYS_LOCAL_DIR),$(CURDIR)/.local)
STACK := $(PY) -m include.stack
# Recipes that talk to the stack run with its env file sourced (connections, RECSYS_*, AIRFLOW_*).
WITH_ENV := set -a; . "$(LOCAL)/env"; set +a;
# e.g. make test PYTEST_ARGS="tests/integration -x"
PYTEST_ARGS ?= tests/

.PHONY: help venv up down status demo test test-unit lint bench plots

help:
	@echo "make venv       create .venv and install the pinned requirements (again only when they change)"
	@echo "make up         start the local stack (Postgres, SeaweedFS, Tansu, recsys API/worker) and bootstrap it"
	@echo "make airflow    up, plus Airflow (api-server, scheduler, dag-processor, triggerer); prints the UI URL and login"
	@echo "                (EXECUTOR=celery: CeleryExecutor over Redis with two Celery workers, worker1 and worker2)"
	@echo "make prometheus up, plus Prometheus scraping the platform and the journey metrics, with the alert rules; prints its login"
	@echo "make down       stop the local stack (and Airflow, if it runs); its data persists under $(LOCAL)"
	@echo "make status     each component's address, pid and health (exit 1 if one is not healthy)"
	@echo "make demo       up, then the whole onboarding journey once at the platform's scale; prints what each stage proved"
	@echo "                (DATE=YYYY-MM-DD and CONF='{\"tenant\": \"acme\"}' pass a logical date and params)"
	@echo "make test-unit  fast tests, no servers"
	@echo "make lint       ruff check and ruff format --check (CI runs it before the tests)"
	@echo "make test       up, the whole test suite against the stack, then down (always)"
	@echo "make bench      up, then every performance figure next to a ceiling measured in the same run (~10 min);"
	@echo "                writes bench/results/<timestamp>.json and latest.json, flags > 20% regressions vs bench/baseline.json"
	@echo "                (BENCH_SCALE=10x runs one journey at 10x scale instead, ~10-20 min; BENCH_SCALE=100x one at 100x,"
	@echo "                stopped past 30 min or 12 GB PSS naming the stage it was in; BENCH_REPS=N repetitions;"
	@echo "                BENCH_ONLY=transfer,serving picks parts of journey, transfer, training, serving)"
	@echo "make plots      PNG charts of bench/results/latest.json next to it (stage timings, latency by concurrency)"

venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	$(PY) -m plugins.journey.docs_assets
	touch $@

up: venv
	$(STACK) up

# Airflow runs as four more components of the stack, so `make status` shows them and `make down` stops them.
# EXECUTOR=celery: CeleryExecutor, with Redis as its broker and two Celery workers as two more components.
EXECUTOR ?= local
.PHONY: airflow
airflow: venv
	$(STACK) up --airflow --executor "$(EXECUTOR)"

# Prometheus scrapes the platform's /metrics and the journey's (Airflow's api-server, after `make airflow`)
# and evaluates include/observability/alerts.yml; `make status` shows it and `make down` stops it.
.PHONY: prometheus
prometheus: venv
	$(STACK) up --prometheus

down:
	$(STACK) down

status:
	$(STACK) status

DATE ?= $(shell date -u +%F)
CONF ?= {}
demo: up
	$(WITH_ENV) $(PY) -m include.demo --date "$(DATE)" --conf '$(CONF)'

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-unit: venv
	$(PY) -m pytest tests/unit

# The stack is stopped whatever pytest's outcome, and pytest's exit code is the target's (5, no tests
# collected, counts as a failure like any other non-zero code).
test: venv
	$(STACK) up || { $(STACK) down; exit 1; }
	$(WITH_ENV) rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; $(STACK) down; exit $$rc

# Benchmarks are not tests: nothing here asserts a time. Their extra tools (wrk, zstandard) are installed
# only for these targets; the stack is left running, like `make demo`.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): requirements-bench.txt $(VENV_STAMP)
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

bench: venv $(BENCH_STAMP)
	$(STACK) up
	$(WITH_ENV) $(PY) -m bench

plots: $(BENCH_STAMP)
	$(PY) -m bench.plots
