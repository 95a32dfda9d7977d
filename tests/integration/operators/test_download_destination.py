"""A destination that cannot take the file (issue 17 D1) and what killed writers leave behind (D9), on real
file systems: a read-only or full tmpfs, a directory where the metadata should go, a worker process killed
with SIGKILL mid-download. The emulator's charges are the evidence of what was paid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.exceptions import RetryableTaskError
from airflow_provider_clearsky.operators import _atomic_writer as writing
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators import _storage_leftovers as leftovers
from tests.integration.operators.test_download import COMPOSITE, composite, place_order, set_connection, settled_log
from tests.support.filesystems import fill, resize, tmpfs

pytestmark = pytest.mark.integration

NAME = "field.tif"
DOWNLOAD_BYTES = 437_178  # the rgb composite of the field at 10 m


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    set_connection(monkeypatch, clearsky_emulator)
    place_order(clearsky_emulator)
    settled_log(clearsky_emulator)
    return clearsky_emulator


def charges(emu: EmulatorHandle) -> int:
    settled_log(emu)
    return len(emu.control.charges("download"))


def download(folder: Path, tries: int = 2) -> str:
    """Run the task as Airflow would with ``retries=1``: a retryable failure gets a second try."""
    for attempt in range(1, tries + 1):
        try:
            return str(composite(destination=str(folder), filename=NAME).execute({}))
        except AirflowFailException:
            raise
        except Exception:  # Airflow retries anything but AirflowFailException
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def test_a_read_only_destination_fails_before_paying_and_is_not_retried(emu: EmulatorHandle, tmp_path: Path) -> None:
    unwritable = pytest.raises(AirflowFailException, match=r"destination: .*cannot be written.*Nothing was .*paid")
    with tmpfs(tmp_path / "ro", size=1 << 20, readonly=True) as folder, unwritable:
        download(folder / "imagery")
    assert charges(emu) == 0
    assert not any(COMPOSITE in line for line in settled_log(emu))


def test_a_full_disk_fails_before_paying_and_is_not_retried(emu: EmulatorHandle, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", size=256 << 10) as folder:
        fill(folder)
        with pytest.raises(AirflowFailException, match=r"destination: .*bytes free.*Nothing was .*paid"):
            download(folder)
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]
    assert charges(emu) == 0


def test_a_disk_that_fills_up_mid_download_is_paid_once_and_leaves_nothing(emu: EmulatorHandle, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size=256 << 10) as folder:
        with pytest.raises(AirflowFailException, match=r"destination: .*paid once.*not retried"):
            download(folder)
        assert list(folder.iterdir()) == []
    assert charges(emu) == 1


def test_a_complete_paid_file_is_kept_when_its_metadata_cannot_be_written(emu: EmulatorHandle, tmp_path: Path) -> None:
    (tmp_path / f"{NAME}.stac.json").mkdir()  # the STAC Item cannot be written there
    with pytest.raises(RetryableTaskError, match=r"download is complete .* kept as .*nothing is paid again") as caught:
        composite(destination=str(tmp_path), filename=NAME).execute({})
    assert not isinstance(caught.value, AirflowFailException)  # a retry only writes the metadata
    names = sorted(p.name for p in tmp_path.iterdir())
    assert NAME not in names and f"{NAME}.json" not in names  # no sidecar without its file
    kept = [name for name in names if name.endswith(".complete")]
    assert len(kept) == 1 and (tmp_path / kept[0]).stat().st_size == DOWNLOAD_BYTES
    assert charges(emu) == 1

    (tmp_path / f"{NAME}.stac.json").rmdir()
    uri = composite(destination=str(tmp_path), filename=NAME).execute({})
    assert charges(emu) == 1  # the rerun wrote only the metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME, f"{NAME}.json", f"{NAME}.stac.json"]
    sidecar = json.loads((tmp_path / f"{NAME}.json").read_text())
    assert uri == f"file://{tmp_path / NAME}" and sidecar["size"] == DOWNLOAD_BYTES
    composite(destination=str(tmp_path), filename=NAME).execute({})  # and a complete file is never paid again
    assert charges(emu) == 1


def test_a_full_disk_while_writing_metadata_keeps_the_paid_file_and_the_rerun_pays_nothing(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    pages = -(-DOWNLOAD_BYTES // 4096)
    with tmpfs(tmp_path / "tight", size=pages * 4096) as folder:
        with pytest.raises(RetryableTaskError, match="kept as"):
            composite(destination=str(folder), filename=NAME).execute({})
        resize(folder, 4 << 20)
        composite(destination=str(folder), filename=NAME).execute({})
        assert sorted(p.name for p in folder.iterdir()) == [NAME, f"{NAME}.json", f"{NAME}.stac.json"]
        assert (folder / NAME).stat().st_size == DOWNLOAD_BYTES
    assert charges(emu) == 1


# ------------------------------------------------------------------------------------------ D9


KILLED_WORKER = """
import json, os, sys
os.environ["AIRFLOW_CONN_CLEARSKY_DEFAULT"] = sys.argv[2]
from tests.integration.operators.test_download import composite
composite(destination=sys.argv[1], filename="field.tif").execute({})
"""


def test_a_later_run_removes_what_a_killed_worker_left(emu: EmulatorHandle, tmp_path: Path) -> None:
    emu.control.add_fault("trickle", path=COMPOSITE, method="POST", delay=0.5, chunk=16384)
    connection = json.dumps({**emu.connection_dict(), "extra": {"timeout": 30}})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, str(tmp_path), connection], env=env, stderr=subprocess.DEVNULL
    )
    try:
        # Killed in the middle of the paid body (the writer fills 1 MiB before writing, so the file may be empty).
        deadline = time.monotonic() + 60
        while not (any(p.name.endswith(".part") for p in tmp_path.iterdir()) and emu.control.charges("download")):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never started the download"
            time.sleep(0.05)
        time.sleep(1.0)  # a few trickled pieces in
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".{NAME}.") and left[0].endswith(".part")
    emu.control.clear_faults()

    composite(destination=str(tmp_path), filename=NAME).execute({})
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME, f"{NAME}.json", f"{NAME}.stac.json"]


def test_a_live_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    final = storage.storage_path(str(tmp_path / NAME))
    other = storage.storage_path(str(tmp_path / "other.tif"))
    with writing.AtomicWriter(final) as live, writing.AtomicWriter(other):
        live.write(b"x" * 10)
        assert leftovers.remove_stale_temporaries(final, stale_after=3600) == []
        dead = tmp_path / f".{NAME}.0123456789ab.part"
        dead.write_bytes(b"left by a killed worker")
        assert leftovers.remove_stale_temporaries(final, stale_after=3600) == [dead.name]
        temporaries = sorted(p.name for p in tmp_path.iterdir())
        assert len(temporaries) == 2 and all(name.endswith(".part") for name in temporaries)
