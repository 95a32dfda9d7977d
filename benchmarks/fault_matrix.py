"""Fault matrix: every operation through its operator against every emulator fault, once and as an outage.

Starts the ClearSKY emulator in this process on 127.0.0.1 (a free port), runs each scenario from a fresh
emulator state and prints one table (operation x fault -> outcome, task tries, API requests) and a closing
line with the totals. The scenarios and their checks live in ``tests/integration/quality/_matrix.py``;
``tests/integration/quality/test_fault_matrix.py`` asserts the same invariants in the test suite.

    .venv/bin/python benchmarks/fault_matrix.py [--only OPERATION] [--verbose]

Exit status 1 if any invariant is broken (a duplicate order, a repeated paid download, a partial file) or a
failure is unclear.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# A throw-away Airflow home before Airflow is imported: nothing touches a real installation.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="clearsky-fault-matrix-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "CRITICAL"  # the table is the output, not the retry warnings
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.integration.quality._matrix


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only this operation (e.g. create, download, status:deferred)")
    parser.add_argument("--verbose", action="store_true", help="print each scenario's error and notes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the table is the output; retries log warnings otherwise
    logging.getLogger().setLevel(logging.CRITICAL)

    from airflow_provider_clearsky.emulator.config import EmulatorConfig
    from airflow_provider_clearsky.emulator.handle import EmulatorHandle
    from airflow_provider_clearsky.emulator.server import EmulatorServer
    from tests.integration.quality import _matrix as matrix

    config = EmulatorConfig(host="127.0.0.1", port=0, admin=True, access_log=False)
    server = EmulatorServer(config).start()
    handle = EmulatorHandle(server, config.accounts[0].key if config.accounts else _demo_key())
    os.environ["AIRFLOW_CONN_CLEARSKY_DEFAULT"] = matrix.connection_json(handle)
    started = time.monotonic()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="clearsky-fault-matrix-") as work:
            for operation, fault, intensity in matrix.scenarios():
                if args.only and operation.name != args.only:
                    continue
                result = matrix.run_scenario(handle, operation, fault, intensity, Path(work))
                results.append(result)
                if args.verbose:
                    print(
                        f"{result.key:40} {result.outcome:9} tries={result.tries} requests={result.requests} "
                        f"fired={result.fired} charges={result.download_charges} {result.seconds:.2f}s "
                        f"{result.error[:300]} {'; '.join(result.notes)}",
                        flush=True,
                    )
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    print(matrix.table(results))
    print()
    print("cell: outcome [! = invariant broken] <task tries>t/<API requests>r; ok = succeeded in the first try")
    print("(hook retries included), ok-retry = succeeded in a later try of the same task instance, failed = failed")
    print("with an error naming the cause, timeout = a sensor waited the fault out until its timeout (the cause is")
    print("in the task log, not in the error); once = the fault hits one request, outage = every matching request.")
    for fault in matrix.FAULTS:
        print(f"  {fault.name:8} {matrix.FAULT_HELP[fault.name]}")
    charged = sum(r.download_charges for r in results if r.operation == "download")
    print(f"download charges in download scenarios (incl. bodies the client never received): {charged}")
    print(f"runtime {elapsed:.1f} s")
    print(matrix.closing_line(results))
    bad = [r for r in results if not r.invariants_ok or r.outcome == matrix.FAILED_UNCLEAR]
    for r in bad:
        print(f"BROKEN {r.key}: {r.outcome} {r.error} {'; '.join(r.notes)}")
    return 1 if bad else 0


def _demo_key() -> str:
    from airflow_provider_clearsky.emulator.config import DEMO_API_KEY

    return DEMO_API_KEY


if __name__ == "__main__":
    sys.exit(main())
