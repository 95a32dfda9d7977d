"""``make demo``: the one-command demo prints what happened and exits 0 (and 1 when the DAG run fails)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(200)]

REPO = Path(__file__).resolve().parents[2]


def run_demo(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_clearsky.demo", "--workdir", str(workdir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_demo_runs_the_monthly_example_and_prints_the_summary(tmp_path: Path) -> None:
    result = run_demo(tmp_path)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "DAG run succeeded" in out
    guid = re.search(r"^Order ([0-9a-f-]{36}): Stratus2, recurring", out, re.M)
    assert guid, out
    assert re.search(r"^Cost: \d+\.\d\d EUR in order credits", out, re.M)
    dates = re.search(r"^Image dates of \w+ \d{4}: (.+)$", out, re.M)
    assert dates, out
    expected = dates.group(1).split(", ")
    files = sorted((tmp_path / "imagery").glob("*/*.tif"))
    assert [f.name.split("_")[2] for f in files] == expected
    for file in files:
        assert f"{file.name}  {file.stat().st_size:>10,d} bytes" in out
    assert (tmp_path / "airflow" / "airflow.db").is_file()  # its own throw-away Airflow home


def test_demo_exits_1_when_the_run_fails(tmp_path: Path) -> None:
    # A budget below the estimate: the create operator fails the run at once (no retries), nothing is ordered.
    result = run_demo(tmp_path, "--conf", '{"max_cost_eur": 0.5}')

    assert result.returncode == 1, result.stdout[-2000:]
    assert "DAG run FAILED" in result.stdout
    assert "The demo did not complete; the full output is in" in result.stderr
    log = " ".join((tmp_path / "demo.log").read_text().split())  # Airflow 3.0 wraps long log lines
    assert "order refused, nothing was ordered: this month's cost" in log
    assert not list(tmp_path.glob("imagery/*/*.tif"))


def test_demo_reports_a_bad_option_clearly(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--fault", "teapot")
    assert result.returncode == 1 and result.stderr.startswith("demo: ") and "Traceback" not in result.stderr
