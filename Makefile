# Every target sets up what it needs: a fresh machine needs only python3 (>= 3.11) and the package registries.
PYTHON ?= python3
# The supported range: both ends are tested, each in its own virtualenv.
NEWEST_AIRFLOW ?= 3.3.2
OLDEST_AIRFLOW ?= 3.0.6
VENV ?= .venv
OLDEST_VENV ?= .venv-airflow-oldest
DISTRIBUTED_VENV ?= .venv-distributed

PY := $(VENV)/bin/python
NEWEST_STAMP := $(VENV)/.installed-$(NEWEST_AIRFLOW)
OLDEST_STAMP := $(OLDEST_VENV)/.installed-$(OLDEST_AIRFLOW)
DISTRIBUTED_STAMP := $(DISTRIBUTED_VENV)/.installed-$(NEWEST_AIRFLOW)
PYTEST_ARGS ?= -q
# The browser test drives Debian's chromium; it is skipped, saying so, where chromium cannot be installed.
CHROMIUM ?= /usr/bin/chromium

.PHONY: venv test test-newest test-oldest test-distributed lint typecheck demo airflow emulator bench clean

comma := ,
# The newest Airflow is tested with OpenLineage installed (lineage through its real classes), the oldest without.
# install(venv, airflow version, extra pip arguments, extras beyond emulator and test)
define install
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(1)/bin/python -m uv pip install --quiet --python $(1)/bin/python -e ".[emulator,test$(4)]" "apache-airflow==$(2)" $(3)
	rm -f $(1)/.installed-*
	touch $(1)/.installed-$(2)
endef

$(NEWEST_STAMP): pyproject.toml
	$(call install,$(VENV),$(NEWEST_AIRFLOW),,$(comma)openlineage)

$(OLDEST_STAMP): pyproject.toml constraints/airflow-3.0.txt
	$(call install,$(OLDEST_VENV),$(OLDEST_AIRFLOW),-c constraints/airflow-3.0.txt)

# Airflow with Celery, Postgres, the Amazon provider (S3 through s3fs) and moto's S3 server.
$(DISTRIBUTED_STAMP): pyproject.toml
	$(call install,$(DISTRIBUTED_VENV),$(NEWEST_AIRFLOW),"apache-airflow-providers-celery>=3.24" "apache-airflow-providers-amazon[s3fs]" psycopg2-binary asyncpg "celery<5.7" "moto[server]")

venv: $(NEWEST_STAMP)

$(CHROMIUM):
	-(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed (apt-get as root): the browser test will be skipped"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy airflow_provider_clearsky

test-newest: venv $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

test-oldest: $(OLDEST_STAMP) $(CHROMIUM)
	$(OLDEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

## The README's test command: lint, types, then the whole suite on the newest and the oldest supported Airflow.
test: lint typecheck test-newest test-oldest

## Issue 12: a distributed Airflow (CeleryExecutor on Postgres and Redis, two workers, two triggerers) on loopback,
## with process faults; installs Debian's postgresql and redis-server when missing (CI runs as root).
test-distributed: $(DISTRIBUTED_STAMP)
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server; fi
	timeout --signal=TERM --kill-after=60 2400 $(DISTRIBUTED_VENV)/bin/python tests/distributed/run.py

demo: venv
	$(PY) -m airflow_provider_clearsky.demo

airflow: venv
	$(PY) -m airflow_provider_clearsky.demo --standalone

emulator: venv
	$(VENV)/bin/clearsky-emulator --admin

bench: venv
	$(PY) -m uv pip install --quiet --python $(PY) -e ".[emulator,test,bench]"
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .demo
