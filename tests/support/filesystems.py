"""Real file systems that fail: a small or read-only tmpfs mounted under a test's folder (needs root, as in
CI; tests skip without it). Unmounted by the context manager."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def mount_tmpfs(where: Path, *, size: int, readonly: bool = False) -> bool:
    """Mount a tmpfs of ``size`` bytes at ``where``; False if this machine does not allow it (not root)."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    return _mount(["-t", "tmpfs", "-o", options, "tmpfs", str(where)]).returncode == 0


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(where: Path, *, size: int, readonly: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes at ``where`` (read-only if asked); skips the test if it cannot be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    done = _mount(["-t", "tmpfs", "-o", options, "tmpfs", str(where)])
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def resize(where: Path, size: int) -> None:
    """Grow (or shrink) a mounted tmpfs."""
    done = _mount(["-o", f"remount,size={size}", str(where)])
    assert done.returncode == 0, done.stderr


def fill(folder: Path) -> None:
    """Write until the file system is full (ENOSPC)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
