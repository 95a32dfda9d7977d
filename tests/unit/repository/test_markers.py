"""``-m "not integration"`` leaves out every test that talks HTTP to the emulator.

The proof collects the whole suite in a separate pytest run with that selection and looks at each selected
test's fixtures: none may reach the emulator, and no test of the emulator-only folders may be left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EMULATOR_FIXTURES, INTEGRATION_FOLDERS

ROOT = Path(__file__).resolve().parents[2]
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
    in_http_folders = [node for node in selected if node.startswith(INTEGRATION_FOLDERS)]
    assert not in_http_folders, in_http_folders
    assert sorted((ROOT / "tests" / "emulator").glob("test_*.py")), "emulator tests exist, and were left out"
