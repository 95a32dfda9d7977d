"""How ClearSkyOrderStatusTrigger scales: N concurrent triggers in one event loop against the emulator.

Starts the emulator as a subprocess on 127.0.0.1 (so its allocations and CPU are not counted), places
``max(N)`` orders that stay in progress, then for each N runs N order-status triggers in a fresh event loop
and measures, over a fixed number of poll intervals:

* list requests per poll interval (from the emulator's request log): the target is 1 per connection;
* traced memory (tracemalloc) held while waiting and its peak; memory per waiting trigger (target < 50 KB)
  is what N triggers hold beyond what a single one holds; ``growth`` is the change of held memory over the
  measured intervals (a leak per poll would show here);
* CPU time (this process) per poll interval.

Ratios are against the N=10 baseline of the same run. Prints figures; it is not a test.

    .venv/bin/python benchmarks/triggers_scale.py [--n 10 100 1000] [--interval 0.5] [--intervals 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

# A throw-away Airflow home before Airflow is imported: nothing touches a real installation.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="clearsky-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

import httpx

API_KEY = "bench-key-4d1f7a-not-real"
CONN_ID = "clearsky_bench"
LIST_PATH = "/api/tasking/orders"


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_clearsky.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--admin",
        "--quiet",
        "--api-key",
        API_KEY,
        "--euro-credits",
        "10000000",
        "--start-time",
        "2025-07-10T00:00:00+00:00",
        "--preparing-duration",
        "30d",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "serving at" not in line:
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def place_orders(url: str, count: int) -> list[str]:
    guids = []
    with httpx.Client(base_url=url, headers={"x-api-key": API_KEY}, timeout=60) as client:
        for index in range(count):
            lon, lat = 5 + (index % 100) * 0.02, 45 + (index // 100) * 0.02
            wkt = (
                f"GEOMETRYCOLLECTION (POLYGON (({lon} {lat}, {lon + 0.01} {lat}, {lon + 0.01} {lat + 0.01}, "
                f"{lon} {lat + 0.01}, {lon} {lat})))"
            )
            body = {
                "Wkt": wkt,
                "Model": "Stratus2",
                "SatelliteConstellations": ["Sentinel1", "Sentinel2", "Landsat89"],
                "StorageMonths": 1,
                "ApiRequests": 1,
                "ImageFrequency": 7,
                "ReferenceDate": "2025-06-01",
                "From": "2025-06-01",
                "To": "2025-06-30",
            }
            response = client.post("/api/tasking/orders", json=body)
            response.raise_for_status()
            guids.append(response.json()["Data"]["TaskOrderGuid"])
    return guids


async def list_requests(admin: httpx.AsyncClient) -> int:
    log = (await admin.get("/_emulator/requests")).json()["Data"]
    return sum(1 for entry in log if entry["path"] == LIST_PATH and entry["method"] == "GET")


async def measure(url: str, guids: list[str], interval: float, intervals: int) -> dict[str, Any]:
    from airflow_provider_clearsky.triggers import _polling
    from airflow_provider_clearsky.triggers.order_status import ClearSkyOrderStatusTrigger

    events: list[Any] = []

    async def consume(trigger: ClearSkyOrderStatusTrigger) -> None:
        async for event in trigger.run():
            events.append(event)

    async with httpx.AsyncClient(base_url=url, timeout=60) as admin:
        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        deadline = time.time() + 3600
        triggers = [
            ClearSkyOrderStatusTrigger(
                order_guid=guid,
                clearsky_conn_id=CONN_ID,
                deadline=deadline,
                poll_interval=interval,
                max_poll_interval=interval,
            )
            for guid in guids
        ]
        tasks = [asyncio.create_task(consume(trigger)) for trigger in triggers]
        await asyncio.sleep(interval * 2)  # warm up: connection read, client open, first polls answered
        gc.collect()
        waiting, _ = tracemalloc.get_traced_memory()
        requests_start = await list_requests(admin)
        cpu_start, wall_start = time.process_time(), time.monotonic()
        await asyncio.sleep(interval * intervals)
        cpu = time.process_time() - cpu_start
        wall = time.monotonic() - wall_start
        requests = await list_requests(admin) - requests_start
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.05)
        leftovers = (_polling.active_pollers(), _polling.active_clients())
    n = len(guids)
    measured_intervals = wall / interval
    return {
        "n": n,
        "requests_per_interval": requests / measured_intervals,
        "peak_kb": peak / 1024,
        "waiting_kb": (waiting - before) / 1024,
        "growth_kb": (after - waiting) / 1024,
        "cpu_ms_per_interval": cpu * 1000 / measured_intervals,
        "events": len(events),
        "leftovers": leftovers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval in seconds")
    parser.add_argument("--intervals", type=int, default=10, help="poll intervals measured per N")
    args = parser.parse_args()

    process, url = start_emulator()
    try:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "clearsky", "host": url, "password": API_KEY}
        )
        started = time.monotonic()
        guids = place_orders(url, max(args.n))
        print(f"emulator {url}; placed {len(guids)} orders in {time.monotonic() - started:.1f} s")
        print(f"poll interval {args.interval} s, {args.intervals} intervals measured per N, one connection\n")
        asyncio.run(measure(url, guids[:1], args.interval, 2))  # warm-up: imports and first-use caches
        single = asyncio.run(measure(url, guids[:1], args.interval, args.intervals))
        results = [asyncio.run(measure(url, guids[:n], args.interval, args.intervals)) for n in args.n]
    finally:
        process.terminate()
        process.wait(timeout=10)

    # Memory per waiting trigger: what N triggers hold beyond what one holds (the shared client, the parsed
    # order list and the poller are a fixed cost, paid once per connection).
    for r in results:
        r["per_trigger_kb"] = (r["waiting_kb"] - single["waiting_kb"]) / max(r["n"] - 1, 1)
    base = results[0]
    print(
        f"fixed cost with 1 trigger (client, poller, one parsed list of {len(guids)} orders): "
        f"{single['waiting_kb']:.0f} KB held, {single['peak_kb']:.0f} KB peak, "
        f"{single['cpu_ms_per_interval']:.1f} ms CPU per interval\n"
    )
    header = (
        f"{'N':>6} {'req/interval':>13} {'held KB':>9} {'peak KB':>9} {'KB/trigger':>11} {'growth KB':>10} "
        f"{'CPU ms/interval':>16}   ratios vs N={base['n']} (req, peak, CPU)"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['n']:>6} {r['requests_per_interval']:>13.2f} {r['waiting_kb']:>9.0f} {r['peak_kb']:>9.0f} "
            f"{r['per_trigger_kb']:>11.2f} {r['growth_kb']:>10.1f} {r['cpu_ms_per_interval']:>16.2f}   "
            f"{r['requests_per_interval'] / base['requests_per_interval']:.2f}x, "
            f"{r['peak_kb'] / base['peak_kb']:.2f}x, {r['cpu_ms_per_interval'] / base['cpu_ms_per_interval']:.2f}x"
        )
    worst_requests = max(r["requests_per_interval"] for r in results)
    worst_memory = max(r["per_trigger_kb"] for r in results)
    leaks = [r["n"] for r in results if r["leftovers"] != (0, 0) or r["events"]]
    print()
    print(
        f"target 1 request per interval per connection: worst {worst_requests:.2f} -> "
        f"{'met' if worst_requests <= 1.1 else 'MISSED'}"
    )
    print(
        f"target < 50 KB per waiting trigger: worst {worst_memory:.2f} KB -> {'met' if worst_memory < 50 else 'MISSED'}"
    )
    print(f"pollers/clients left after cancelling every trigger: {leaks or 'none'}")


if __name__ == "__main__":
    main()
