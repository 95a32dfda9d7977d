# Every target sets up what it needs: a fresh machine needs only python3 (>= 3.10) and the package registries.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
UV := $(PY) -m uv
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv test lint typecheck unit demo airflow emulator bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e ".[emulator,test]" "apache-airflow==$(AIRFLOW_VERSION)"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy airflow_provider_clearsky

## The README's test command: lint, types, then the whole suite (unit, emulator integration, DAG runs).
test: lint typecheck
	$(PY) -m pytest -q

demo: venv
	$(PY) -m airflow_provider_clearsky.demo

emulator: venv
	$(VENV)/bin/clearsky-emulator --admin

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .demo
