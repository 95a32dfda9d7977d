"""Benchmark: a month of mapped composite downloads with the connection's cap at 1, 2 and 4 in flight.

Prints figures; not a test. Run from the repository root:

    .venv/bin/python benchmarks/parallel_dates.py [--dates 8] [--caps 1 2 4]

Each date is one operator ``execute`` in its own worker process (as mapped task instances run), at most
``cap`` at a time (``max_active_tis_per_dag`` / the connection's ``max_concurrent_connections``, which
should both be the account's ``MaxConcurrentConnections``). The bodies (~140 MB each, the emulator's
answer for a 25 x 28 km area, 10 bands at 10 m) come from ``benchmarks/static_server.py`` through
``sendfile``, so the client's path is measured, not the emulator's Python GeoTIFF writer; account calls go
on to the emulator. Figures: wall time per cap (worker start-up excluded) and the speed-up over cap 1.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import download_throughput as bench

MEDIUM = "POLYGON ((8.00 50.00, 8.35 50.00, 8.35 50.25, 8.00 50.25, 8.00 50.00))"


def warm_up() -> int:
    """Imports done once per worker process, before the clock starts."""
    import airflow_provider_clearsky.hooks.clearsky
    import airflow_provider_clearsky.operators.download  # noqa: F401

    return os.getpid()


def download(conn_id: str, date: str, folder: str) -> int:
    from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

    name = f"{date}.tif"
    ClearSkyDownloadCompositeOperator(
        task_id=f"download_{date}",
        wkt=MEDIUM,
        date=date,
        bands="all",
        resolution=10,
        destination=folder,
        filename=name,
        clearsky_conn_id=conn_id,
    ).execute({})
    return (Path(folder) / name).stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dates", type=int, default=8)
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="clearsky-bench-airflow-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    folder = Path(tempfile.mkdtemp(prefix="clearsky-bench-parallel-"))
    port = bench.free_port()
    emulator_url = f"http://127.0.0.1:{port}"
    emulator = bench.start_emulator(port)
    static = None
    try:
        bench.place_order(emulator_url, passes=10)
        payload = {
            "Wkt": MEDIUM,
            "Date": bench.DATE,
            "Model": "Stratus2",
            "SatelliteConstellations": bench.STRATUS2,
            "Resolution": 10,
            "Bandnames": "all",
            "EpsgProjection": 47000,
        }
        source = folder / "source.tif"
        bench.run_curl(emulator_url, payload, source)
        static, static_url = bench.start_static_server(source, emulator_url)
        for cap in args.caps:
            os.environ[f"AIRFLOW_CONN_CLEARSKY_CAP{cap}"] = json.dumps(
                {
                    "conn_type": "clearsky",
                    "host": static_url,
                    "password": bench.API_KEY,
                    "extra": {"timeout": 600, "max_concurrent_connections": cap},
                }
            )
        first = dt.date(2025, 5, 1)
        dates = [(first + dt.timedelta(days=offset)).isoformat() for offset in range(args.dates)]
        size = source.stat().st_size
        print(
            f"{args.dates} dates of {size / 2**20:.0f} MiB each from the static server; {os.cpu_count()} CPUs; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        print(f"{'cap':>4} {'wall s':>8} {'MiB/s':>8} {'speed-up':>9}")
        base: float | None = None
        for cap in args.caps:
            target = folder / f"cap{cap}"
            target.mkdir()
            os.sync()
            with concurrent.futures.ProcessPoolExecutor(max_workers=cap) as pool:
                for future in [pool.submit(warm_up) for _ in range(cap)]:
                    future.result()
                started = time.perf_counter()
                sizes = list(pool.map(download, [f"clearsky_cap{cap}"] * len(dates), dates, [str(target)] * len(dates)))
                seconds = time.perf_counter() - started
            if any(s != size for s in sizes):
                raise SystemExit(f"sizes differ: {sizes}")
            shutil.rmtree(target)
            base = base or seconds
            print(f"{cap:>4} {seconds:>8.2f} {sum(sizes) / seconds / 2**20:>8.0f} {base / seconds:>9.2f}", flush=True)
    finally:
        if static is not None:
            static.terminate()
            static.wait(10)
        emulator.terminate()
        emulator.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
