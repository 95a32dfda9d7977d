"""Benchmark: ``clearsky-emulator`` subprocess start to first answered API request (median of N runs).

Run: ``.venv/bin/python benchmarks/emulator_startup.py [runs]``
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import httpx

KEY = "bench-key-invented"


def one_run() -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_clearsky.emulator", "--port", "0", "--quiet", "--api-key", KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        t_url = time.perf_counter() - t0
        url = line.rsplit(" ", 1)[1]
        r = httpx.get(url + "/api/tasking/models", headers={"x-api-key": KEY})
        r.raise_for_status()
        t_answer = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(10)
    return t_url, t_answer


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    results = [one_run() for _ in range(runs)]
    urls = [r[0] for r in results]
    answers = [r[1] for r in results]
    print(f"runs: {runs}")
    print(f"start -> URL printed:   median {statistics.median(urls):.3f} s  (min {min(urls):.3f}, max {max(urls):.3f})")
    print(
        f"start -> first answer:  median {statistics.median(answers):.3f} s  "
        f"(min {min(answers):.3f}, max {max(answers):.3f})  target < 2 s"
    )


if __name__ == "__main__":
    main()
