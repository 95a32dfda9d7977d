"""Benchmark: a ~100 MB composite over loopback, emulator vs ``python -m http.server`` serving a file of the
same size, in the same run; plus the emulator process's RSS growth.

Run: ``.venv/bin/python benchmarks/emulator_throughput.py [repeats]``
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

KEY = "bench-key-invented"
AOI = "POLYGON ((8.0 50.0, 8.3 50.0, 8.3 50.2, 8.0 50.2, 8.0 50.0))"  # ~475 km2
BODY: dict[str, Any] = {
    "Wkt": AOI,
    "Date": "2025-05-07",
    "Resolution": 10,
    "EpsgProjection": 47000,
    "Bandnames": "all",
    "DataType": "INT16",
    "Model": "Stratus2",
    "SatelliteConstellations": ["Sentinel1", "Sentinel2", "Landsat89"],
}


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def timed_download(method: str, url: str, **kw: Any) -> tuple[int, float]:
    n = 0
    t = time.perf_counter()
    with httpx.Client(timeout=300) as c, c.stream(method, url, **kw) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            n += len(chunk)
    return n, time.perf_counter() - t


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    emu = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_clearsky.emulator", "--port", "0", "--quiet", "--admin",
            "--api-key", KEY, "--start-time", "2025-06-10T12:00:00Z", "--clock-speed", "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="clearsky-bench-")
    base = None
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().strip().rsplit(" ", 1)[1]
        h = {"x-api-key": KEY}
        order = {
            "Wkt": f"GEOMETRYCOLLECTION ({AOI})", "Model": "Stratus2",
            "SatelliteConstellations": BODY["SatelliteConstellations"], "StorageMonths": 1, "ApiRequests": 1000,
            "ImageFrequency": 7, "ReferenceDate": "2025-01-01", "From": "2025-05-01", "To": "2025-05-31",
        }  # fmt: skip
        httpx.post(url + "/api/tasking/orders", json=order, headers=h).raise_for_status()
        httpx.post(url + "/_emulator/clock", json={"advance": {"hours": 3}}).raise_for_status()
        rss0, _ = rss_kib(emu.pid)
        emu_runs = [
            timed_download("POST", url + "/api/satelliteimages/process/composite", json=BODY, headers=h)
            for _ in range(repeats)
        ]
        rss1, hwm = rss_kib(emu.pid)
        size = emu_runs[0][0]
        with open(os.path.join(tmp, "same.bin"), "wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(size // len(block)):
                fh.write(block)
            fh.write(block[: size % len(block)])
        base = subprocess.Popen(
            [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", tmp],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert base.stdout is not None
        line = base.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
        port = int(line.split(" port ")[1].split()[0])
        base_runs = [timed_download("GET", f"http://127.0.0.1:{port}/same.bin") for _ in range(repeats)]
        emu_mbs = statistics.median(n / t / 1e6 for n, t in emu_runs)
        base_mbs = statistics.median(n / t / 1e6 for n, t in base_runs)
        print(f"file size: {size / 1e6:.1f} MB, repeats: {repeats}")
        print(f"emulator composite:  median {emu_mbs:8.1f} MB/s")
        print(f"python -m http.server: median {base_mbs:8.1f} MB/s")
        print(f"ratio emulator / http.server: {emu_mbs / base_mbs:.2f}")
        print(
            print(
                f"emulator RSS: before {rss0 / 1024:.1f} MiB, after {rss1 / 1024:.1f} MiB, "
                f"growth {(rss1 - rss0) / 1024:.1f} MiB, peak (VmHWM) {hwm / 1024:.1f} MiB"
            )
        )
    finally:
        emu.terminate()
        emu.wait(10)
        if base is not None:
            base.terminate()
            base.wait(10)
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
