"""The declared floor of ``apache-airflow-providers-common-compat`` is the version the oldest run tests.

``make test-oldest`` installs Airflow 3.0 with ``constraints/airflow-3.0.txt``, which pins common-compat to
the floor declared in ``pyproject.toml``: the oldest supported Airflow is tested with the oldest supported
common-compat, so the floor is a tested claim rather than a guess.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from airflow_provider_clearsky._compat import airflow_version

ROOT = Path(__file__).resolve().parents[3]
COMPAT = "apache-airflow-providers-common-compat"


def _declared_floor() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = [Requirement(text) for text in project["dependencies"] if Requirement(text).name == COMPAT]
    (floor,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    return floor


def _oldest_run_pin() -> str:
    lines = (ROOT / "constraints" / "airflow-3.0.txt").read_text().splitlines()
    (pin,) = [Requirement(line) for line in lines if line.strip() and not line.startswith("#") and COMPAT in line]
    (spec,) = pin.specifier
    assert spec.operator == "=="
    return spec.version


def test_the_oldest_run_pins_the_declared_floor() -> None:
    assert _oldest_run_pin() == _declared_floor()


def test_the_oldest_airflow_runs_with_the_floor() -> None:
    """On Airflow 3.0 (the oldest run), the installed common-compat is exactly the floor."""
    if not airflow_version().startswith("3.0."):
        return  # the newest run takes whatever common-compat resolves
    assert importlib.metadata.version(COMPAT) == _declared_floor()
