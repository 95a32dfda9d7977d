"""Benchmark: the download operator's path against ``curl`` for a ~1 GiB composite from the emulator.

Prints figures; not a test. Run from the repository root:

    .venv/bin/python benchmarks/download_throughput.py [--rounds 3] [--chunk-size 1048576] [--keep]

What it does, in one process (the emulator runs as a separate process, so it does not share this GIL):

1. starts ``clearsky-emulator`` on a free loopback port with plenty of processing units and order credits,
   its clock frozen at 2025-06-10 so that a May 2025 order over the benchmark area is produced at once;
2. orders the area (ApiRequests high enough for every download the benchmark makes);
3. warms up (one small download through the operator, so imports and first-use allocations are not
   counted as growth);
4. alternates, ``--rounds`` times: ``curl`` POSTing the very same JSON body (``hook`` payload of the
   operator's request) to the composite endpoint, writing to a file in the same folder (same disk), and
   the operator's ``execute`` with that folder as destination (including its account-info call, SHA-256,
   size check, sidecar, STAC Item and atomic rename);
5. reads this process's peak resident set size during each operator run from the kernel (VmHWM, reset
   through /proc/self/clear_refs before the run; where that is unavailable, a thread samples RSS every
   5 ms, which slows the download a little).

Figures: MiB/s for each, the ratio operator/curl per round and its median (target >= 0.8), and the peak
RSS growth over the pre-download RSS (target < 64 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
API_KEY = "benchmark-key-not-a-real-key"
STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
# ~70 x 76 km in UTM 32N: all 10 Stratus bands, INT16, 10 m -> ~1 GiB of GeoTIFF.
BIG = "POLYGON ((8.00 50.00, 8.985 50.00, 8.985 50.68, 8.00 50.68, 8.00 50.00))"
SMALL = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"
ORDER_WKT = "GEOMETRYCOLLECTION (POLYGON ((7.99 49.99, 8.995 49.99, 8.995 50.69, 7.99 50.69, 7.99 49.99)))"
DATE = "2025-05-07"
COMPOSITE = "/api/satelliteimages/process/composite"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_clearsky.emulator",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--processing-units",
        "1000000000",
        "--euro-credits",
        "100000000",
        "--max-area-km2",
        "100000",
        "--start-time",
        "2025-06-10T12:00:00Z",
        "--clock-speed",
        "0",
        "--processing-duration",
        "0s",
        "--preparing-duration",
        "0s",
        "--quiet",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/tasking/models", headers={"x-api-key": API_KEY}, timeout=1)
            return process
        except httpx.TransportError:
            if process.poll() is not None:
                detail = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"emulator exited: {detail}") from None
            time.sleep(0.1)
    process.kill()
    raise SystemExit("emulator did not start within 30 s")


def place_order(base_url: str, passes: int) -> None:
    import httpx

    body = {
        "Wkt": ORDER_WKT,
        "Model": "Stratus2",
        "SatelliteConstellations": STRATUS2,
        "StorageMonths": 1,
        "ApiRequests": passes,
        "ImageFrequency": 7,
        "ReferenceDate": "2025-01-01",
        "From": "2025-05-01",
        "To": "2025-05-31",
    }
    response = httpx.post(f"{base_url}/api/tasking/orders", json=body, headers={"x-api-key": API_KEY}, timeout=60)
    if response.status_code != 200:
        raise SystemExit(f"order failed: {response.status_code} {response.text[:500]}")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def operator(wkt: str, destination: Path, chunk_size: int | None, name: str) -> Any:
    from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

    return ClearSkyDownloadCompositeOperator(
        task_id="benchmark",
        wkt=wkt,
        date=DATE,
        bands="all",
        resolution=10,
        destination=str(destination),
        filename=name,
        chunk_size=chunk_size,
    )


def run_curl(base_url: str, body: dict[str, Any], target: Path) -> tuple[float, int]:
    body_file = target.with_suffix(".body.json")
    body_file.write_text(json.dumps(body))
    started = time.perf_counter()
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--noproxy",
            "*",
            "-X",
            "POST",
            "-H",
            f"x-api-key: {API_KEY}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            f"@{body_file}",
            "-o",
            str(target),
            "-w",
            "%{size_download}",
            f"{base_url}{COMPOSITE}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    body_file.unlink()
    return seconds, int(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="operator chunk_size (default None: chunks as received)"
    )
    parser.add_argument("--dir", default=None, help="folder for the downloads (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the downloaded files")
    args = parser.parse_args()

    # A throw-away Airflow home, quiet logs; the connection points at the emulator.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="clearsky-bench-airflow-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    os.environ["AIRFLOW_CONN_CLEARSKY_DEFAULT"] = json.dumps(
        {"conn_type": "clearsky", "host": base_url, "password": API_KEY, "extra": {"timeout": 600}}
    )
    chunk_size = args.chunk_size
    folder = Path(args.dir or tempfile.mkdtemp(prefix="clearsky-bench-"))
    folder.mkdir(parents=True, exist_ok=True)

    emulator = start_emulator(port)
    try:
        place_order(base_url, passes=3 * args.rounds + 5)
        # Warm-up: imports, first connection, first file: not counted as growth.
        operator(SMALL, folder, chunk_size, "warmup.tif").execute({})

        request = operator(BIG, folder, chunk_size, "x.tif")._targets()[0].request
        body = request.to_payload()
        import httpx

        estimate = httpx.post(
            f"{base_url}{COMPOSITE}/estimate", json=request.estimate_payload(), headers={"x-api-key": API_KEY}
        ).json()["Data"]
        print(
            f"composite: {estimate['AreaEstimateKm2']:.0f} km², 10 bands INT16 at 10 m, "
            f"~{estimate['FileSizeEstimateMB']:.0f} MB; chunk_size {chunk_size}; folder {folder}; "
            f"{os.cpu_count()} CPUs"
        )
        # Server warm-up: its first large answer is slower than the next ones.
        run_curl(base_url, body, folder / "warmup-curl.tif")
        (folder / "warmup-curl.tif").unlink()
        header = f"{'round':>5} {'curl MiB/s':>11} {'operator MiB/s':>15} {'ratio':>6} {'RSS growth MiB':>15}"
        print(header + f" {'curl+sha256sum MiB/s':>21}")
        ratios, growths, hashed_ratios = [], [], []
        for index in range(1, args.rounds + 1):
            curl_file = folder / f"curl-{index}.tif"
            os.sync()  # each run starts with no dirty pages of the previous one being written back
            curl_seconds, curl_bytes = run_curl(base_url, body, curl_file)
            curl_file.unlink()
            # Reference only: curl, then sha256sum over the file (the operator also checksums every byte).
            os.sync()
            started = time.perf_counter()
            run_curl(base_url, body, curl_file)
            subprocess.run(["sha256sum", str(curl_file)], check=True, capture_output=True)
            hashed_seconds = time.perf_counter() - started
            curl_file.unlink()
            os.sync()

            name = f"operator-{index}.tif"
            task = operator(BIG, folder, chunk_size, name)
            baseline = rss_bytes()
            if reset_peak_rss() and peak_rss_bytes() is not None:
                # The kernel tracks the peak (VmHWM since clear_refs): no sampling thread competing for the GIL.
                started = time.perf_counter()
                uri = task.execute({})
                op_seconds = time.perf_counter() - started
                peak = peak_rss_bytes() or 0
            else:
                with RssSampler() as sampler:
                    started = time.perf_counter()
                    uri = task.execute({})
                    op_seconds = time.perf_counter() - started
                peak = sampler.peak
            size = (folder / name).stat().st_size
            if not uri.endswith(name) or size != curl_bytes:
                raise SystemExit(f"operator wrote {size} bytes to {uri}, curl got {curl_bytes}")
            for suffix in ("", ".json", ".stac.json"):
                if not args.keep:
                    (folder / (name + suffix)).unlink()

            curl_rate = curl_bytes / curl_seconds / 2**20
            op_rate = size / op_seconds / 2**20
            growth = (peak - baseline) / 2**20
            hashed_rate = curl_bytes / hashed_seconds / 2**20
            ratios.append(op_rate / curl_rate)
            hashed_ratios.append(op_rate / hashed_rate)
            growths.append(growth)
            print(
                f"{index:>5} {curl_rate:>11.1f} {op_rate:>15.1f} {op_rate / curl_rate:>6.2f} {growth:>15.1f} "
                f"{hashed_rate:>21.1f}"
            )
        print(
            f"file size {size} bytes ({size / 2**30:.2f} GiB); operator/curl median ratio "
            f"{statistics.median(ratios):.2f} (target >= 0.8); operator/(curl+sha256sum) median ratio "
            f"{statistics.median(hashed_ratios):.2f}; max RSS growth {max(growths):.1f} MiB (target < 64)"
        )
    finally:
        emulator.terminate()
        emulator.wait(10)
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
