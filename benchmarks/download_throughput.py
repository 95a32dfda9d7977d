"""Benchmark: the download operator's path against ``curl`` and ``requests`` for a ~1 GiB composite.

Prints figures; not a test. Run from the repository root:

    .venv/bin/python benchmarks/download_throughput.py [--rounds 5] [--chunk-size N] [--servers emulator,static,tls]

Two servers answer the same bytes in the same run, so that the emulator's own CPU (it builds the GeoTIFF
in Python on the same cores) does not decide the ratio:

* ``emulator``: ``clearsky-emulator`` on a free loopback port, its clock frozen at 2025-06-10 so that a
  May 2025 order over the benchmark area is produced at once;
* ``static``: ``benchmarks/static_server.py`` serving a file pre-generated from the emulator's answer through
  ``sendfile`` (the account and estimate calls are passed on to the emulator);
* ``tls`` (only when asked for): the same static server over HTTPS, as the real API is, with a certificate
  for 127.0.0.1 made for the run (``tests/support/tls.py``); every client trusts it through the environment
  (``SSL_CERT_FILE`` for the operator and requests, ``CURL_CA_BUNDLE`` for curl). ``--tls-batch-size 0``
  runs the operator as it was before it joined TLS records (one 16 KiB record per hand-over).

After one uncounted round per server (curl and the operator), for each server, ``--rounds`` times and in
turn: ``curl`` POSTing the operator's JSON body to the composite endpoint, writing to a file in the same
folder (same disk); ``requests`` streaming the same body to disk in 1 MiB chunks (what the vendor's own
clients do), as a second reference; ``curl | tee FILE | openssl dgst -sha256``, the operator's core work
(every byte on disk and hashed as it arrives) done by C tools, as a third; and the operator's ``execute``
(account-info and estimate calls, SHA-256, size check, sidecar, STAC Item, atomic rename). Before each
operator run the kernel's peak RSS of this process is reset (/proc/self/clear_refs), so VmHWM afterwards
is the peak during the download (where unavailable, a thread samples RSS every 5 ms).

Figures: MiB/s for each, the ratios operator/curl and requests/curl per round and their medians per server
(target >= 0.8 for the operator against both servers), operator against ``curl | tee | openssl sha256``, and
the peak RSS growth (target < 64 MiB). CPU accounting, per GiB: curl's and the server's during the curl run,
the operator's (every thread of this process) and the server's during the operator run, and the operator's
*CPU ceiling* against curl: the rate it would reach if every CPU did nothing but this download's work
(CPUs / CPU seconds per GiB of operator and server together), divided by curl's measured rate. A ceiling
below 0.8 means the target cannot be met on this machine at this CPU cost per byte, however the work is
scheduled. (Against the static servers, the server's figure is the static server alone.) And the operator's
*SHA-256 bound*: every byte passes through one SHA-256 stream, which cannot be split across cores, so the
operator can be no faster than one core hashes; just before each operator run, ``hashlib.sha256`` hashes
512 MiB from a warm 1 MiB buffer in this process, and that rate over curl's is the bound.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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


#: Conn id of each server's Airflow connection.
CONN_IDS = {"emulator": "clearsky_default", "static": "clearsky_static", "tls": "clearsky_tls"}


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


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    """CPU seconds of the finished child processes waited for (curl, tee, openssl)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of a running process (a server), from /proc/<pid>/stat; 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def operator(wkt: str, destination: Path, chunk_size: int | None, name: str, conn_id: str) -> Any:
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
        clearsky_conn_id=conn_id,
    )


def curl_command(base_url: str, body_file: Path, output: str) -> list[str]:
    return [
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
        output,
        f"{base_url}{COMPOSITE}",
    ]


def sha256_rate(mebibytes: int = 512) -> float:
    """MiB/s of one SHA-256 stream on one core now (``hashlib``, 1 MiB updates from a warm buffer)."""
    block = memoryview(os.urandom(2**20))
    digest = hashlib.sha256(block)
    started = time.perf_counter()
    for _ in range(mebibytes):
        digest.update(block)
    return mebibytes / (time.perf_counter() - started)


def run_curl_tee_sha256(base_url: str, body: dict[str, Any], target: Path) -> tuple[float, int]:
    """The same work as the operator's core in one pass: ``curl | tee FILE | openssl dgst -sha256``.

    Every byte lands on disk and is hashed while it arrives, as the operator does; what curl alone skips.
    """
    body_file = target.with_suffix(".body.json")
    body_file.write_text(json.dumps(body))
    started = time.perf_counter()
    curl = subprocess.Popen(curl_command(base_url, body_file, "-"), stdout=subprocess.PIPE)
    tee = subprocess.Popen(["tee", str(target)], stdin=curl.stdout, stdout=subprocess.PIPE)
    assert curl.stdout is not None
    curl.stdout.close()  # tee holds the pipe now
    # OpenSSL's SHA-256 uses the CPU's SHA extensions, as Python's hashlib does (coreutils' sha256sum does not).
    hashed = subprocess.run(
        ["openssl", "dgst", "-sha256"], stdin=tee.stdout, capture_output=True, text=True, check=True
    )
    if curl.wait() or tee.wait() or len(hashed.stdout.split()[-1]) != 64:
        raise SystemExit("curl | tee | openssl dgst -sha256 failed")
    seconds = time.perf_counter() - started
    body_file.unlink()
    return seconds, target.stat().st_size


def run_curl(base_url: str, body: dict[str, Any], target: Path) -> tuple[float, int]:
    body_file = target.with_suffix(".body.json")
    body_file.write_text(json.dumps(body))
    started = time.perf_counter()
    command = [*curl_command(base_url, body_file, str(target)), "-w", "%{size_download}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    body_file.unlink()
    return seconds, int(result.stdout.strip())


def run_requests(base_url: str, body: dict[str, Any], target: Path) -> tuple[float, int]:
    """The vendor clients' way: ``requests`` with ``stream=True``, 1 MiB chunks to a file."""
    import requests

    started = time.perf_counter()
    size = 0
    with requests.Session() as session:
        session.trust_env = False
        session.verify = os.environ.get("SSL_CERT_FILE", True)  # the tls server's certificate, once made
        with session.post(
            f"{base_url}{COMPOSITE}", json=body, headers={"x-api-key": API_KEY}, stream=True, timeout=600
        ) as response:
            response.raise_for_status()
            with open(target, "wb") as handle:
                for chunk in response.iter_content(1024 * 1024):
                    handle.write(chunk)
                    size += len(chunk)
    return time.perf_counter() - started, size


def start_static_server(
    source: Path, upstream: str, tls: tuple[Path, Path] | None
) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, str(REPO / "benchmarks" / "static_server.py"), str(source), upstream]
    process = subprocess.Popen([*command, *(str(path) for path in tls or ())], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("https://" if tls else "http://"):
        process.kill()
        raise SystemExit("static server did not start")
    return process, url


def trust_new_certificate(folder: Path) -> tuple[Path, Path]:
    """Make a certificate for 127.0.0.1 and its key, and have every client of this run trust it."""
    sys.path.insert(0, str(REPO))
    from tests.support.tls import self_signed_certificate

    cert, key = self_signed_certificate(folder)
    os.environ["SSL_CERT_FILE"] = os.environ["CURL_CA_BUNDLE"] = str(cert)
    return cert, key


def run_operator(task: Any, folder: Path, name: str, keep: bool) -> tuple[float, int, float]:
    """Seconds, bytes written, peak RSS growth (MiB) of one operator run."""
    baseline = rss_bytes()
    if reset_peak_rss() and peak_rss_bytes() is not None:
        # The kernel tracks the peak (VmHWM since clear_refs): no sampling thread competing for the GIL.
        started = time.perf_counter()
        uri = task.execute({})
        seconds = time.perf_counter() - started
        peak = peak_rss_bytes() or 0
    else:
        with RssSampler() as sampler:
            started = time.perf_counter()
            uri = task.execute({})
            seconds = time.perf_counter() - started
        peak = sampler.peak
    size = (folder / name).stat().st_size
    if not uri.endswith(name):
        raise SystemExit(f"operator wrote {uri}, expected a file named {name}")
    for suffix in ("", ".json", ".stac.json"):
        if not keep:
            (folder / (name + suffix)).unlink()
    return seconds, size, (peak - baseline) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="operator chunk_size (default None: chunks as received)"
    )
    parser.add_argument("--servers", default="emulator,static", help="comma-separated: emulator, static, tls")
    parser.add_argument("--dir", default=None, help="folder for the downloads (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the downloaded files")
    parser.add_argument(
        "--tls-batch-size", type=int, default=None, help="the hook's TLS_BATCH_SIZE (0: one TLS record per read)"
    )
    args = parser.parse_args()
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    if args.tls_batch_size is not None:
        from airflow_provider_clearsky.hooks import download

        download.TLS_BATCH_SIZE = args.tls_batch_size

    # A throw-away Airflow home, quiet logs; one connection per server.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="clearsky-bench-airflow-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    port = free_port()
    emulator_url = f"http://127.0.0.1:{port}"
    chunk_size = args.chunk_size
    folder = Path(args.dir or tempfile.mkdtemp(prefix="clearsky-bench-"))
    folder.mkdir(parents=True, exist_ok=True)

    emulator = start_emulator(port)
    static_servers: dict[str, subprocess.Popen[str]] = {}
    try:
        urls = {"emulator": emulator_url}
        os.environ["AIRFLOW_CONN_CLEARSKY_DEFAULT"] = json.dumps(
            {"conn_type": "clearsky", "host": emulator_url, "password": API_KEY, "extra": {"timeout": 600}}
        )
        place_order(emulator_url, passes=4 * args.rounds + 12)
        # Warm-up: imports, first connection, first file: not counted as growth.
        operator(SMALL, folder, chunk_size, "warmup.tif", "clearsky_default").execute({})

        request = operator(BIG, folder, chunk_size, "x.tif", "clearsky_default")._targets()[0].request
        body = request.to_payload()
        import httpx

        estimate = httpx.post(
            f"{emulator_url}{COMPOSITE}/estimate", json=request.estimate_payload(), headers={"x-api-key": API_KEY}
        ).json()["Data"]
        # The static server's file: the emulator's very answer (also the emulator's warm-up).
        source = folder / "static-source.tif"
        run_curl(emulator_url, body, source)
        for server in ("static", "tls"):
            if server in servers:
                tls = trust_new_certificate(folder) if server == "tls" else None
                static_servers[server], urls[server] = start_static_server(source, emulator_url, tls)
                os.environ[f"AIRFLOW_CONN_{CONN_IDS[server].upper()}"] = json.dumps(
                    {"conn_type": "clearsky", "host": urls[server], "password": API_KEY, "extra": {"timeout": 600}}
                )
        # One uncounted round per server: the first 1 GiB written after a pause often lands in memory the VM
        # gave back to its host, which costs several times the CPU (see benchmarks/README.md); curl, first in
        # each round, would take that penalty alone.
        for server in servers:
            conn_id = CONN_IDS[server]
            run_curl(urls[server], body, folder / "warmup-curl.tif")
            (folder / "warmup-curl.tif").unlink()
            run_operator(operator(BIG, folder, chunk_size, "warmup-big.tif", conn_id), folder, "warmup-big.tif", False)
        print(
            f"composite: {estimate['AreaEstimateKm2']:.0f} km², 10 bands INT16 at 10 m, "
            f"{source.stat().st_size} bytes; chunk_size {chunk_size}; folder {folder}; {os.cpu_count()} CPUs; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        header = f"{'server':>8} {'round':>5} {'curl MiB/s':>11} {'requests MiB/s':>15} {'operator MiB/s':>15}"
        cpu_header = " CPU s/GiB: curl  srv   op  srv  ceiling  sha-bound"
        print(header + f" {'op/curl':>8} {'req/curl':>9} {'RSS growth MiB':>15} {'op/curl+sha':>13}" + cpu_header)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        cpu: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in servers}
        ceilings: dict[str, list[float]] = {name: [] for name in servers}
        hash_bounds: dict[str, list[float]] = {name: [] for name in servers}
        ratios: dict[str, list[float]] = {name: [] for name in servers}
        request_ratios: dict[str, list[float]] = {name: [] for name in servers}
        hashed_ratios: dict[str, list[float]] = {name: [] for name in servers}  # operator vs curl | tee | openssl
        growths: list[float] = []
        for index in range(1, args.rounds + 1):
            for server in servers:
                url = urls[server]
                conn_id = CONN_IDS[server]
                reference = folder / f"reference-{index}.tif"
                server_pid = static_servers[server].pid if server in static_servers else emulator.pid
                os.sync()  # each run starts with no dirty pages of the previous one being written back
                before = children_cpu_seconds(), process_cpu_seconds(server_pid)
                curl_seconds, curl_bytes = run_curl(url, body, reference)
                curl_cpu = (children_cpu_seconds() - before[0], process_cpu_seconds(server_pid) - before[1])
                reference.unlink()
                os.sync()
                requests_seconds, requests_bytes = run_requests(url, body, reference)
                reference.unlink()
                os.sync()
                hashed_seconds, hashed_bytes = run_curl_tee_sha256(url, body, reference)
                reference.unlink()
                os.sync()
                name = f"operator-{index}.tif"
                task = operator(BIG, folder, chunk_size, name, conn_id)
                hash_rate = sha256_rate()
                before = own_cpu_seconds(), process_cpu_seconds(server_pid)
                op_seconds, size, growth = run_operator(task, folder, name, args.keep)
                op_cpu = (own_cpu_seconds() - before[0], process_cpu_seconds(server_pid) - before[1])
                if not size == curl_bytes == requests_bytes == hashed_bytes:
                    raise SystemExit(f"sizes differ: operator {size}, curl {curl_bytes}, requests {requests_bytes}")
                hashed_ratios[server].append(hashed_seconds / op_seconds)
                curl_rate = curl_bytes / curl_seconds / 2**20
                requests_rate = requests_bytes / requests_seconds / 2**20
                op_rate = size / op_seconds / 2**20
                ratios[server].append(op_rate / curl_rate)
                request_ratios[server].append(requests_rate / curl_rate)
                growths.append(growth)
                gib = size / 2**30
                cpu[server].append((curl_cpu[0] / gib, curl_cpu[1] / gib, op_cpu[0] / gib, op_cpu[1] / gib))
                # The fastest the operator could go if every core did nothing but this download's work.
                ceilings[server].append(cpus / (op_cpu[0] + op_cpu[1]) * gib / (curl_rate / 1024))
                hash_bounds[server].append(hash_rate / curl_rate)
                print(
                    f"{server:>8} {index:>5} {curl_rate:>11.1f} {requests_rate:>15.1f} {op_rate:>15.1f} "
                    f"{op_rate / curl_rate:>8.2f} {requests_rate / curl_rate:>9.2f} {growth:>15.1f} "
                    f"{hashed_seconds / op_seconds:>13.2f} "
                    + " ".join(f"{value:>5.2f}" for value in cpu[server][-1])
                    + f" {ceilings[server][-1]:>8.2f} {hash_bounds[server][-1]:>10.2f}",
                    flush=True,
                )
        for server in servers:
            print(
                f"{server}: operator/curl median ratio {statistics.median(ratios[server]):.2f} (target >= 0.8); "
                f"requests/curl median ratio {statistics.median(request_ratios[server]):.2f}; "
                f"operator/(curl | tee | openssl sha256) median ratio {statistics.median(hashed_ratios[server]):.2f}"
            )
            medians = [statistics.median(row[column] for row in cpu[server]) for column in range(4)]
            print(
                f"{server}: CPU seconds per GiB (medians): curl {medians[0]:.2f} with the server's {medians[1]:.2f}; "
                f"operator {medians[2]:.2f} (all its threads) with the server's {medians[3]:.2f}. CPU ceiling of "
                f"operator/curl on {cpus} CPUs: {statistics.median(ceilings[server]):.2f}; SHA-256 bound of "
                f"operator/curl (one core's SHA-256 rate over curl's): {statistics.median(hash_bounds[server]):.2f}"
            )
        print(f"file size {size} bytes ({size / 2**30:.2f} GiB); max RSS growth {max(growths):.1f} MiB (target < 64)")
    finally:
        for process in static_servers.values():
            process.terminate()
            process.wait(10)
        emulator.terminate()
        emulator.wait(10)
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
