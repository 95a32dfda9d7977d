"""``-m "not integration"`` leaves out every test that talks HTTP to the emulator.

The proof collects the whole suite in a separate pytest run with that selection and looks at each selected
test's fixtures and place: none may reach the emulator, and none may come from ``tests/integration/`` or
``tests/system/`` except the system modules that talk HTTP only through an emulator fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EMULATOR_FIXTURES, INTEGRATION_FOLDERS, MODULES_HTTP_BY_FIXTURE

ROOT = Path(__file__).resolve().parents[3]
RECORDER = """
import json, os

def pytest_collection_finish(session):
    with open(os.environ["COLLECTED_TESTS"], "w") as out:
        json.dump({item.nodeid: sorted(getattr(item, "fixturenames", ())) for item in session.items}, out)
"""


def _collect(tmp_path: Path, *selection: str) -> dict[str, list[str]]:
    (tmp_path / "collected_recorder.py").write_text(RECORDER)
    out = tmp_path / "collected.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "COLLECTED_TESTS": str(out)}
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "collected_recorder", *selection, "tests"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    collected: dict[str, list[str]] = json.loads(out.read_text())
    return collected


@pytest.mark.slow  # collects the whole suite
def test_not_integration_selects_no_http_test(tmp_path: Path) -> None:
    selected = _collect(tmp_path, "-m", "not integration")
    assert selected, "nothing selected: the check would pass vacuously"
    using_emulator = [node for node, fixtures in selected.items() if EMULATOR_FIXTURES.intersection(fixtures)]
    assert not using_emulator, using_emulator
    # Only unit tests are left, and the system modules whose HTTP tests all use an emulator fixture (checked above).
    outside_unit = {node.split("::")[0] for node in selected if not node.startswith("tests/unit/")}
    assert outside_unit <= set(MODULES_HTTP_BY_FIXTURE), outside_unit
    for folder in INTEGRATION_FOLDERS:
        assert sorted((ROOT / folder).rglob("test_*.py")), f"{folder} holds tests, and they were left out"
