"""Run every benchmark in turn and print their figures (``make bench``).

Each benchmark is its own script with its own options; this runs them with the defaults recorded in
benchmarks/README.md. Benchmarks talk only to loopback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [
    ["parse_cost.py", "15"],
    ["emulator_startup.py", "5"],
    ["emulator_throughput.py", "3"],
    ["triggers_scale.py"],
    ["download_throughput.py", "--rounds", "3"],
    ["parallel_dates.py"],
    ["request_count.py"],
    ["fault_matrix.py"],
]


def main() -> int:
    failed = []
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *args], check=False).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nbenchmarks that exited non-zero: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
