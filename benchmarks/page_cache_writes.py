"""Benchmark: what writing 1 GiB into a new file costs, right after another file was deleted and after a pause.

Prints figures; not a test. Run from the repository root:

    .venv/bin/python benchmarks/page_cache_writes.py [--pause 3] [--dir /tmp]

Each round writes 1 GiB in 1 MiB writes into a new file in ``--dir``, deletes it, and syncs; the next round
starts at once (pages the deleted file freed are reused) or after ``--pause`` seconds. On a virtual machine
that gives free memory back to its host (virtio balloon free-page reporting), pages free for a few seconds
have to come back from the host, and every download benchmark's writer pays for that unevenly.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def write_gib(path: str, block: memoryview) -> tuple[float, float]:
    """Seconds and system CPU seconds of writing 1 GiB into a new file at ``path``."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for _ in range(1024):
            os.write(fd, block)
    finally:
        os.close(fd)
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_stime - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between rounds in the paused rounds")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="folder to write in (default: the temp folder)")
    args = parser.parse_args()
    block = memoryview(bytearray(os.urandom(2**20)))
    path = os.path.join(args.dir, f"page-cache-writes-{os.getpid()}.bin")
    for pause in (0.0, 0.0, args.pause, args.pause, 0.0, 0.0):
        time.sleep(pause)
        seconds, system = write_gib(path, block)
        os.unlink(path)
        os.sync()
        print(f"after a pause of {pause:.0f} s: {1024 / seconds:7.0f} MiB/s, {system:.2f} s of system CPU per GiB")


if __name__ == "__main__":
    main()
