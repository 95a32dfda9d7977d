"""The emulator's pytest plugin costs nothing until its fixture is used.

It is auto-loaded (``pytest11`` entry point) in every pytest run of every environment that installs the
provider, so a run that never asks for ``clearsky_emulator`` must not import the web stack, Airflow or the
emulator, nor start anything. The probe is a separate pytest run on one empty test, in an empty folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = "airflow_provider_clearsky.emulator.pytest_plugin"
#: What loading the plugin may import: the module and the packages it lives in, nothing else of ours.
ALLOWED_OWN = {"airflow_provider_clearsky", "airflow_provider_clearsky.emulator", PLUGIN}
HEAVY = ("fastapi", "uvicorn", "starlette", "httpx", "pydantic", "shapely", "airflow")

PROBE = """
import json, sys, threading

def test_nothing():
    with open("modules.json", "w") as out:
        json.dump({"modules": sorted(sys.modules), "threads": threading.active_count()}, out)
"""


def test_the_plugin_imports_nothing_until_its_fixture_is_used(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    seen = json.loads((tmp_path / "modules.json").read_text())
    modules = set(seen["modules"])
    assert PLUGIN in modules, "the pytest11 entry point did not load the plugin: the probe proves nothing"
    own = {name for name in modules if name.split(".")[0] == "airflow_provider_clearsky"}
    assert own <= ALLOWED_OWN, sorted(own - ALLOWED_OWN)
    heavy = sorted(name for name in modules if name.split(".")[0] in HEAVY)
    assert not heavy, heavy
    assert seen["threads"] == 1, "the plugin started a thread"
