"""``make test-distributed``: the provider on a distributed Airflow, with real process faults.

Starts, on loopback only and in a throw-away directory: Postgres (metadata database and Celery result backend),
Redis (Celery broker), the ClearSKY emulator, a moto S3 server with a bucket, and Airflow 3 with the
CeleryExecutor: scheduler, dag-processor, api-server, two Celery workers and two triggerers, each with its own
loopback hostname. Then runs the scenarios of issue 12, asserting from the emulator's own records (orders,
charges, requests, the peak of concurrent requests) and from Airflow's REST API, prints one table and the
closing ``DISTRIBUTED:`` line, and stops every process it started, by PID, also on failure.

Run with the virtualenv that ``make test-distributed`` builds: ``.venv-distributed/bin/python tests/distributed/run.py``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOOPBACK = "127.0.0.1"
BUCKET = "clearsky-distributed"
MAX_CONCURRENT = 4  # the account's MaxConcurrentConnections (the emulator's default), and the pool's size
POOL = "clearsky_api"
STRATUS2 = ["Sentinel1", "Sentinel2", "Landsat89"]
FIELD = "GEOMETRYCOLLECTION (POLYGON ((8.60 50.10, 8.65 50.10, 8.65 50.15, 8.60 50.15, 8.60 50.10)))"
WORKERS = {"worker-1": "127.0.0.11", "worker-2": "127.0.0.12"}
TRIGGERERS = {"triggerer-1": "127.0.0.21", "triggerer-2": "127.0.0.22"}
TRIGGERER_CAPACITY = 120  # 200 waits cannot all fit in one triggerer: they spread over both
POKE_SECONDS = 5  # the scenario DAGs' waits (tests/distributed/dags)
EXAMPLES_POKE_SECONDS = 5


class ScenarioFailed(AssertionError):
    pass


def check(condition: bool, message: str | Callable[[], str]) -> None:
    if not condition:
        raise ScenarioFailed(message if isinstance(message, str) else message())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, condition: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):
            if result := condition():
                return result
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# ----------------------------------------------------------------------------- processes


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    """Every process of the deployment, started in its own session and stopped by its PID (group)."""

    workdir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    retired: list[Process] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str], user: str | None = None) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        preexec = None
        if user is not None:
            account = pwd.getpwnam(user)

            def preexec() -> None:
                os.setgid(account.pw_gid)
                os.setuid(account.pw_uid)

        with open(log, "ab") as out:
            popen = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec
            )
        process = Process(name, popen, log)
        if name in self.processes:
            self.retired.append(self.processes[name])
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and everything it started, as if its machine died, and reap it.

        Everything is the process's session, not only its process group: Airflow 3.3's task runners move to
        process groups of their own, and a worker killed by its group alone would leave its running task
        downloading on.
        """
        process = self.processes[name]
        signal_session(process.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=30)

    def stop_all(self) -> None:
        everything = [*self.retired, *self.processes.values()]
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            for process in reversed(everything):
                signal_session(process.popen.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(session_members(p.popen.pid) for p in everything):
                for p in everything:
                    p.popen.poll()
                time.sleep(0.2)
        for p in everything:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=1)


def session_members(session: int) -> list[int]:
    """The PIDs of the live processes of a session (every process was started in a session of its own)."""
    members = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session and fields[0] != "Z":
                members.append(int(Path(stat).parent.name))
    return members


def signal_session(session: int, sig: int) -> None:
    for pid in session_members(session):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class MemorySampler:
    """The peak of the summed resident memory of every process of the deployment (sampled every 2 s)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(2):
            sessions = {p.popen.pid for p in self.stack.processes.values()}  # each process started has its own
            driver = os.getpgid(0)  # this script (its session may hold unrelated processes of the caller)
            total = 0
            for stat in glob.glob("/proc/[0-9]*/stat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                    # by session: task runners have process groups of their own
                    if int(fields[3]) in sessions or int(fields[2]) == driver:
                        total += int(fields[21]) * page  # rss in pages
            self.peak_bytes = max(self.peak_bytes, total)


def pg_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(f"{name} not found: install Debian's postgresql package (make test-distributed does)")
    return found[-1]


# ----------------------------------------------------------------------------- the deployment


@dataclass
class Deployment:
    stack: Stack
    venv_bin: Path
    api_key: str = field(default_factory=lambda: "cs-dist-" + secrets.token_hex(16))
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    upload_url: str = ""
    _api: httpx.Client | None = None

    @property
    def home(self) -> Path:
        return self.stack.workdir / "airflow"

    @property
    def emulator_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['emulator']}"

    @property
    def s3_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['moto']}"

    @property
    def airflow_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['api']}"

    # ---- services
    def start_postgres(self) -> None:
        data = self.stack.workdir / "pgdata"
        data.mkdir()
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            account = pwd.getpwnam(user)
            os.chown(data, account.pw_uid, account.pw_gid)
            os.chmod(self.stack.workdir, 0o755)
        init = [pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        self.run("initdb", init, user=user)
        self.ports["postgres"] = port = free_port()
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(port),
            "unix_socket_directories": str(data),
            "max_connections": "400",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [pg_binary("postgres"), "-D", str(data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self.stack.start("postgres", command, dict(os.environ), user=user)
        import psycopg2

        def create_database() -> bool:
            try:
                connection = psycopg2.connect(host=LOOPBACK, port=port, user="postgres", dbname="postgres")
            except psycopg2.OperationalError:
                return False
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE airflow")
            connection.close()
            return True

        wait_until("Postgres", create_database, 60, 0.5)

    def start_redis(self) -> None:
        self.ports["redis"] = port = free_port()
        command = [shutil.which("redis-server") or "redis-server", "--bind", LOOPBACK, "--port", str(port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.stack.workdir)]
        self.stack.start("redis", command, dict(os.environ))
        wait_until("Redis", lambda: socket.create_connection((LOOPBACK, port), timeout=1).close() or True, 30, 0.3)

    def start_emulator(self) -> None:
        self.ports["emulator"] = port = free_port()
        command = [str(self.venv_bin / "clearsky-emulator"), "--host", LOOPBACK, "--port", str(port), "--admin"]
        command += ["--api-key", self.api_key, "--clock-speed", "600", "--max-concurrent", str(MAX_CONCURRENT)]
        command += ["--euro-credits", "100000", "--processing-units", "100000", "--quiet"]
        self.stack.start("emulator", command, dict(os.environ))
        wait_until("the emulator", lambda: httpx.get(f"{self.emulator_url}/_emulator/clock").status_code == 200, 60)

    def start_moto(self) -> None:
        self.ports["moto"] = port = free_port()
        self.stack.start(
            "moto", [str(self.venv_bin / "moto_server"), "-H", LOOPBACK, "-p", str(port)], dict(os.environ)
        )
        wait_until("moto", lambda: httpx.get(self.s3_url).status_code < 500, 60)
        s3 = self.s3()
        s3.create_bucket(Bucket=BUCKET)
        self.upload_url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": "upload-url/composite.tif"}, ExpiresIn=3600
        )

    def s3(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's own dummy credentials
            region_name="us-east-1",
        )

    # ---- Airflow
    def airflow_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CLEARSKY_"))}
        database = f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.ports['postgres']}/airflow"
        self.ports["api"] = self.ports.get("api") or free_port()
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({"admin": self.password}))
        aws = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": self.s3_url, "region_name": "us-east-1"},
        }
        clearsky = {"conn_type": "clearsky", "host": self.emulator_url, "password": self.api_key}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PATH": os.pathsep.join([str(self.venv_bin), env.get("PATH", "")]),
                "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{LOOPBACK}:{self.ports['redis']}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database,
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "8",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "clearsky_distributed_hostname.hostname",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the examples; the scenario DAGs are not
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "256",
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_ISSUER": "clearsky-distributed",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW_CONN_CLEARSKY_DEFAULT": json.dumps(clearsky),
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
                "AIRFLOW_VAR_CLEARSKY_UPLOAD_URL": self.upload_url,
                "CLEARSKY_EXAMPLE_POKE_SECONDS": str(EXAMPLES_POKE_SECONDS),
            }
        )
        return env

    def run(self, name: str, command: list[str], env: dict[str, str] | None = None, user: str | None = None) -> None:
        process = self.stack.start(name, command, env or dict(os.environ), user=user)
        if process.popen.wait(timeout=600) != 0:
            raise SystemExit(f"{name} failed; see {process.log}")

    def airflow(self, *args: str) -> list[str]:
        return [str(self.venv_bin / "airflow"), *args]

    def start_airflow(self) -> None:
        self.home.mkdir()
        dags = self.home / "dags"
        shutil.copytree(REPO / "example_dags", dags)
        shutil.copy(HERE / "dags" / "clearsky_distributed.py", dags)
        self.env = self.airflow_env()
        self.run("db-migrate", self.airflow("db", "migrate"), self.env)
        self.run(
            "pool",
            self.airflow("pools", "set", POOL, str(MAX_CONCURRENT), "ClearSKY MaxConcurrentConnections"),
            self.env,
        )
        self.start_airflow_process(
            "api-server",
            self.airflow("api-server", "--host", LOOPBACK, "--port", str(self.ports["api"]), "--workers", "1"),
            LOOPBACK,
        )
        self.start_airflow_process("scheduler", self.airflow("scheduler", "--skip-serve-logs"), LOOPBACK)
        self.start_airflow_process("dag-processor", self.airflow("dag-processor"), LOOPBACK)
        for name in WORKERS:
            self.start_worker(name)
        for name in TRIGGERERS:
            self.start_triggerer(name)
        wait_until(
            "the API server", lambda: httpx.get(f"{self.airflow_url}/api/v2/monitor/health").status_code == 200, 240, 2
        )
        wait_until("the DAG processor", lambda: self.get("/dags/distributed_waits").status_code == 200, 240, 2)
        self.check_alive()

    def check_alive(self) -> None:
        """Every long-running process still up: a worker or triggerer that died at start fails here, not later."""
        dead = [p for p in self.stack.processes.values() if p.popen.poll() is not None and p.popen.returncode != 0]
        dead = [p for p in dead if p.name not in ("initdb", "db-migrate", "pool")]
        if dead:
            raise SystemExit("exited: " + ", ".join(f"{p.name} ({p.popen.returncode}, see {p.log})" for p in dead))

    def start_airflow_process(self, name: str, command: list[str], hostname: str) -> None:
        self.stack.start(name, command, {**self.env, "CLEARSKY_DISTRIBUTED_HOSTNAME": hostname})

    def start_worker(self, name: str) -> None:
        command = self.airflow("celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs")
        command += ["--without-gossip", "--without-mingle"]
        self.start_airflow_process(name, command, WORKERS[name])

    def start_triggerer(self, name: str) -> None:
        command = self.airflow("triggerer", "--capacity", str(TRIGGERER_CAPACITY), "--skip-serve-logs")
        self.start_airflow_process(name, command, TRIGGERERS[name])

    # ---- REST API
    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            token = httpx.post(
                f"{self.airflow_url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
            )
            token.raise_for_status()
            self._api = httpx.Client(
                base_url=f"{self.airflow_url}/api/v2",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                timeout=60,
            )
        return self._api

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.api.get(path, params=params or None)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any], logical_date: dt.date | None = None) -> str:
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        if logical_date is not None:
            body["logical_date"] = dt.datetime.combine(logical_date, dt.time(), dt.UTC).isoformat()
        answer = self.api.post(f"/dags/{dag_id}/dagRuns", json=body)
        check(answer.status_code == 200, f"triggering {dag_id}: {answer.status_code} {answer.text}")
        return run_id

    def unpause(self, dag_id: str) -> None:
        answer = self.api.patch(f"/dags/{dag_id}", json={"is_paused": False})
        check(answer.status_code == 200, f"unpausing {dag_id}: {answer.status_code} {answer.text}")

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        state = wait_until(
            f"{dag_id}/{run_id} to finish",
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
            2,
        )
        return str(state)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)
        answer.raise_for_status()
        return list(answer.json()["task_instances"])

    def states(self, dag_id: str, run_id: str) -> str:
        tis = self.task_instances(dag_id, run_id)
        return ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}@{t.get('hostname')}" for t in tis)

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        answer = self.get(path, map_index=map_index, deserialize=True)
        answer.raise_for_status()
        return answer.json()["value"]

    def sql(self, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        connection = psycopg2.connect(host=LOOPBACK, port=self.ports["postgres"], user="postgres", dbname="airflow")
        try:
            with connection.cursor() as cursor:
                cursor.execute(query, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    # ---- the emulator's records
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.emulator_url}/_emulator/{path}", timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json()["Data"]

    def orders(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "orders"))

    def charges(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.admin("GET", "charges") if c["kind"] == kind]

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests"))

    def clock(self, speed: float | None = None, advance: dict[str, float] | None = None) -> str:
        body: dict[str, Any] = {}
        if speed is not None:
            body["speed"] = speed
        if advance:
            body["advance"] = advance
        return str(self.admin("POST", "clock", json=body)["Now"])

    def fault(self, spec: str) -> None:
        self.admin("POST", "faults", json={"spec": spec})

    def create_order(self, date_from: dt.date, date_to: dt.date, frequency: int, api_requests: int) -> str:
        body = {
            "Wkt": FIELD,
            "Model": "Stratus2",
            "SatelliteConstellations": STRATUS2,
            "StorageMonths": 2,
            "ApiRequests": api_requests,
            "ImageFrequency": frequency,
            "ReferenceDate": date_from.isoformat(),
            "From": date_from.isoformat(),
            "To": date_to.isoformat(),
        }
        answer = httpx.post(
            f"{self.emulator_url}/api/tasking/orders", json=body, headers={"x-api-key": self.api_key}, timeout=30
        )
        answer.raise_for_status()
        return str(answer.json()["Data"]["TaskOrderGuid"])


# ----------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    number: int
    name: str
    passed: bool = False
    detail: str = ""
    seconds: float = 0.0
    duplicate_orders: int = 0
    repeated_paid_downloads: int = 0
    partial_files: int = 0
    lost_waits: int = 0
    leaked_secrets: int = 0


def month_start(day: dt.date, back: int) -> dt.date:
    first = day.replace(day=1)
    for _ in range(back):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first


def emulator_today(d: Deployment) -> dt.date:
    return dt.datetime.fromisoformat(d.clock()).date()


def killed_worker_of(d: Deployment, ti: dict[str, Any]) -> str:
    hostname = ti.get("hostname")
    for name, address in WORKERS.items():
        if address == hostname:
            return name
    raise ScenarioFailed(f"task {ti['task_id']} ran on an unknown host {hostname!r}")


def scenario_examples(d: Deployment, outcome: Outcome) -> None:
    """1. Every example DAG runs to success; the monthly one for two consecutive months leaves one order.

    The monthly DAG runs as it would in production: the run of 1 November (October) played on the emulator's
    1 November, then the run of 1 December (November) finished on 1 December (imagery is stored through the
    month after its own, so both months must be played in their time)."""
    today = dt.date.today()
    older, last, this = month_start(today, 2), month_start(today, 1), month_start(today, 0)
    at = lambda day: dt.datetime.combine(day, dt.time(0, 30), dt.UTC).isoformat()  # noqa: E731
    d.admin("POST", "clock", json={"set": at(last), "speed": 600})
    orders_before = len(d.orders())
    monthly = "example_clearsky_monthly_monitoring"
    destination = f"s3://aws_default@{BUCKET}/examples/monthly"
    # @monthly: the run of 1 November fetches October, that of 1 December November. Both exist before the DAG is
    # unpaused (so the scheduler adds no run of its own for 1 December) and run one after the other.
    d.trigger(monthly, "month-1", {"destination": destination}, last)
    second = d.trigger(monthly, "month-2", {"destination": destination}, this)
    d.unpause(monthly)
    first = d.wait_run(monthly, "month-1", 420)
    check(first == "success", f"{monthly} month-1 {first}: {d.states(monthly, 'month-1')}")
    d.admin("POST", "clock", json={"set": at(this), "speed": 600})  # month-2 waits for November's images
    runs = {
        "example_clearsky_historical_backfill": {
            "date_from": month_start(today, 3).isoformat(),
            "date_to": (last - dt.timedelta(days=1)).isoformat(),
            "destination": f"s3://aws_default@{BUCKET}/examples/backfill",
        },
        "example_clearsky_tile_mode": {
            "month": last.strftime("%Y-%m"),
            "destination": f"s3://aws_default@{BUCKET}/examples/tiles",
        },
        "example_clearsky_order_housekeeping": {"dry_run": True},
    }
    for dag_id, conf in runs.items():
        d.trigger(dag_id, "distributed", conf)
        d.unpause(dag_id)
    failed = []
    if d.wait_run(monthly, second, 420) != "success":
        failed.append(f"{monthly} {second}: {d.states(monthly, second)}")
    for dag_id in runs:
        if d.wait_run(dag_id, "distributed", 420) != "success":
            failed.append(f"{dag_id}: {d.states(dag_id, 'distributed')}")
    check(not failed, "; ".join(failed))
    monthly_orders = [o for o in d.orders()[orders_before:] if o.get("To") is None]
    outcome.duplicate_orders = max(0, len(monthly_orders) - 1)
    check(len(monthly_orders) == 1, f"{len(monthly_orders)} recurring orders after two monthly runs")
    keys = d.s3().list_objects_v2(Bucket=BUCKET, Prefix="examples/monthly/").get("KeyCount", 0)
    check(keys > 0, "the monthly example wrote nothing to S3")
    outcome.detail = f"4 examples green; monthly {older:%Y-%m} + {last:%Y-%m}: 1 order; {keys} S3 objects"


def frozen_waits(d: Deployment, run_id: str, guids: list[str]) -> list[dict[str, Any]]:
    """Trigger ``distributed_waits`` on a frozen emulator clock and return its TIs once all are deferred."""
    d.trigger("distributed_waits", run_id, {"guids": guids})

    def all_deferred() -> list[dict[str, Any]] | None:
        tis = [t for t in d.task_instances("distributed_waits", run_id) if t["task_id"] == "wait"]
        return tis if len(tis) == len(guids) and all(t["state"] == "deferred" for t in tis) else None

    return list(wait_until(f"{len(guids)} waits deferred", all_deferred, 600, 3))


def triggers_by_triggerer(d: Deployment, run_id: str) -> dict[str, int]:
    """How many of a run's deferred waits each triggerer holds (its hostname; "unassigned" for none yet).

    Airflow's REST API does not say which triggerer holds a trigger (its task instances' ``triggerer_job`` is
    the job that queued them), so this reads Airflow's own ``trigger`` and ``job`` tables."""
    rows = d.sql(
        "SELECT coalesce(j.hostname, 'unassigned'), count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
        "LEFT JOIN job j ON j.id = t.triggerer_id WHERE ti.dag_id = 'distributed_waits' AND ti.run_id = %s "
        "GROUP BY 1",
        (run_id,),
    )
    return {str(host): int(count) for host, count in rows}


def historical_orders(d: Deployment, count: int) -> list[str]:
    today = emulator_today(d)
    first = month_start(today, 1)
    return [d.create_order(first, first + dt.timedelta(days=6), 7, 1) for _ in range(count)]


def scenario_many_waits(d: Deployment, outcome: Outcome, waits: int) -> None:
    """2. 200 deferred order-status waits over two triggerers all finish; one list request per poll per triggerer."""
    d.clock(speed=0)
    guids = historical_orders(d, 4)
    run_id = "waits"
    frozen_waits(d, run_id, [guids[i % len(guids)] for i in range(waits)])
    held = wait_until(
        "every wait held by a triggerer",
        lambda: (h := triggers_by_triggerer(d, run_id)) and "unassigned" not in h and sum(h.values()) == waits and h,
        120,
        2,
    )
    triggerers = set(held)
    # Measure the polling while every wait is deferred: the triggerers' order-list requests only.
    start = len(d.requests())
    began = time.monotonic()
    time.sleep(POKE_SECONDS * 4)
    window = time.monotonic() - began
    polled = [r for r in d.requests()[start:] if r["path"] == "/api/tasking/orders" and r["method"] == "GET"]
    allowed = 2 * (int(window / POKE_SECONDS) + 1)
    d.clock(advance={"days": 1}, speed=600)
    state = d.wait_run("distributed_waits", run_id, 600)
    done = [t for t in d.task_instances("distributed_waits", run_id) if t["task_id"] == "wait"]
    outcome.lost_waits = sum(1 for t in done if t["state"] != "success")
    check(state == "success" and outcome.lost_waits == 0, f"{outcome.lost_waits} of {waits} waits did not finish")
    check(len(triggerers) == 2, f"the waits ran on {triggerers}, not on both triggerers")
    check(len(polled) <= allowed, f"{len(polled)} order-list requests in {window:.0f} s (at most {allowed})")
    spread = " + ".join(str(held[h]) for h in sorted(held))
    outcome.detail = f"{waits} waits on {len(triggerers)} triggerers ({spread}); {len(polled)} list polls in {window:.0f} s (≤ {allowed})"


def scenario_kill_create(d: Deployment, outcome: Outcome) -> None:
    """3. SIGKILL of the worker running create_order right after the emulator committed the order."""
    d.clock(speed=600)
    today = emulator_today(d)
    first = month_start(today, 1)  # older historical orders are out of storage, and so hidden from the list
    before = {o["TaskOrderGuid"] for o in d.orders()}
    d.fault("hold_after_commit,path=/api/tasking/orders,method=POST,delay=120,times=1")
    conf = {
        "wkt": FIELD.replace("8.60", "8.59"),
        "date_from": first.isoformat(),
        "date_to": (first + dt.timedelta(days=13)).isoformat(),
    }
    d.trigger("distributed_create", "kill", conf)
    wait_until("the order committed", lambda: len(d.orders()) > len(before), 300, 0.5)
    ti = d.task_instances("distributed_create", "kill")[0]
    worker = killed_worker_of(d, ti)
    d.stack.kill(worker)
    d.admin("DELETE", "faults")
    state = d.wait_run("distributed_create", "kill", 300)
    d.start_worker(worker)  # after the run: its retry had only the other worker
    ti = d.task_instances("distributed_create", "kill")[0]
    new = [o for o in d.orders() if o["TaskOrderGuid"] not in before]
    charges = [c for c in d.charges("order") if c.get("order") in {o["TaskOrderGuid"] for o in new}]
    outcome.duplicate_orders = max(0, len(new) - 1)
    check(state == "success", f"run {state}: {d.states('distributed_create', 'kill')}")
    check(len(new) == 1, f"{len(new)} orders")
    check(len(charges) == 1, f"{len(charges)} order charges")
    guid = d.xcom("distributed_create", "kill", "create_order")
    check(str(guid).strip('"') == new[0]["TaskOrderGuid"], f"XCom {guid} is not the committed order")
    check(ti["try_number"] >= 2 and ti["hostname"] != WORKERS[worker], f"try {ti['try_number']} on {ti['hostname']}")
    outcome.detail = (
        f"killed {worker}; try {ti['try_number']} on {ti['hostname']} adopted; 1 order, {len(charges)} charge"
    )


def object_info(d: Deployment, key: str) -> dict[str, Any] | None:
    s3 = d.s3()
    try:
        head = s3.head_object(Bucket=BUCKET, Key=key)
    except s3.exceptions.ClientError:
        return None
    return dict(head)


def scenario_kill_download(d: Deployment, outcome: Outcome) -> None:
    """4. SIGKILL of the worker during a slow download to S3; the retry completes it; a later run pays nothing."""
    d.clock(speed=600)
    today = emulator_today(d)
    first = month_start(today, 1)
    guid = d.create_order(first, first + dt.timedelta(days=6), 7, 3)
    d.clock(advance={"days": 1})
    destination = f"s3://aws_default@{BUCKET}/scenario4"
    conf = {"order_guid": guid, "date": first.isoformat(), "destination": destination}
    paid_before = len(d.charges("download"))
    d.fault("trickle,path=/api/satelliteimages/process/composite,chunk=8192,delay=0.25,times=1")
    d.trigger("distributed_download", "kill", conf)
    wait_until("the download paid", lambda: len(d.charges("download")) > paid_before, 300, 0.5)
    time.sleep(3)  # well inside the ~13 s trickle: bytes are on their way to S3
    ti = d.task_instances("distributed_download", "kill")[0]
    worker = killed_worker_of(d, ti)
    d.stack.kill(worker)
    final_keys = [o["Key"] for o in d.s3().list_objects_v2(Bucket=BUCKET, Prefix="scenario4/").get("Contents", [])]
    tifs_after_kill = [k for k in final_keys if k.endswith(".tif") and not k.rsplit("/", 1)[-1].startswith(".")]
    outcome.partial_files = len(tifs_after_kill)
    state = d.wait_run("distributed_download", "kill", 300)
    d.start_worker(worker)  # after the run: its retry had only the other worker
    retried = d.task_instances("distributed_download", "kill")[0]
    check(retried["hostname"] != WORKERS[worker], f"the retry ran on {retried['hostname']}, the killed worker")
    check(state == "success", f"run {state}: {d.states('distributed_download', 'kill')}")
    check(not tifs_after_kill, f"an object at the final key right after the kill: {tifs_after_kill}")
    result = d.xcom("distributed_download", "kill", "download")
    uri = result if isinstance(result, str) else (result.get("uri") or result.get("path") or str(result))
    key = str(uri).split(f"{BUCKET}/", 1)[1]
    body = d.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    sidecar = json.loads(d.s3().get_object(Bucket=BUCKET, Key=f"{key}.json")["Body"].read())
    check(hashlib.sha256(body).hexdigest() == sidecar["sha256"], "the object's checksum is not the sidecar's")
    paid = len(d.charges("download")) - paid_before
    outcome.repeated_paid_downloads = max(0, paid - 2)
    check(paid <= 2, f"{paid} download charges (at most one extra)")
    d.trigger("distributed_download", "again", conf)
    check(d.wait_run("distributed_download", "again", 300) == "success", d.states("distributed_download", "again"))
    again = len(d.charges("download")) - paid_before - paid
    outcome.repeated_paid_downloads += again
    check(again == 0, f"the later run paid {again} more downloads")
    # upload_url: the API PUTs the file to a presigned S3 URL (kept in a Variable, masked by the operator).
    d.trigger("distributed_upload_url", "put", {"order_guid": guid, "date": first.isoformat()})
    check(d.wait_run("distributed_upload_url", "put", 300) == "success", d.states("distributed_upload_url", "put"))
    uploaded = object_info(d, "upload-url/composite.tif")
    check(uploaded is not None and uploaded["ContentLength"] > 0, "nothing at the presigned URL's key")
    outcome.detail = (
        f"killed {worker} mid-download; {paid} charge(s), object complete (sha256 ok), "
        f"later run paid 0; upload_url PUT {uploaded['ContentLength'] if uploaded else 0} B"
    )


def scenario_kill_triggerer(d: Deployment, outcome: Outcome) -> None:
    """5. SIGKILL of a triggerer while waits are deferred: the other takes them over, each task resumes once."""
    d.clock(speed=0)
    guids = historical_orders(d, 2)
    frozen_waits(d, "triggerer-kill", [guids[i % 2] for i in range(20)])
    by_triggerer = wait_until(
        "every wait held by a triggerer",
        lambda: (h := triggers_by_triggerer(d, "triggerer-kill")) and "unassigned" not in h and h,
        120,
        2,
    )
    victim_host = max(by_triggerer, key=lambda h: by_triggerer[h])
    victim = next(n for n, a in TRIGGERERS.items() if a == victim_host)
    d.stack.kill(victim)
    survivor = next(a for a in TRIGGERERS.values() if a != victim_host)
    wait_until(
        "the waits taken over",
        lambda: triggers_by_triggerer(d, "triggerer-kill") == {survivor: 20},
        180,
        2,
    )
    d.start_triggerer(victim)
    d.clock(advance={"days": 1}, speed=600)
    state = d.wait_run("distributed_waits", "triggerer-kill", 600)
    done = [t for t in d.task_instances("distributed_waits", "triggerer-kill") if t["task_id"] == "wait"]
    outcome.lost_waits = sum(1 for t in done if t["state"] != "success")
    retried = [t for t in done if t["try_number"] != 1]
    check(state == "success" and not outcome.lost_waits, f"{outcome.lost_waits} waits lost")
    check(not retried, f"{len(retried)} waits were retried instead of resumed")
    outcome.detail = f"killed {victim} holding {by_triggerer[victim_host]} of 20 waits; all taken over, each try 1"


def scenario_restart_scheduler(d: Deployment, outcome: Outcome) -> None:
    """6. The scheduler restarted in the middle of a run: the run finishes."""
    d.clock(speed=0)
    guids = historical_orders(d, 1)
    frozen_waits(d, "scheduler-restart", guids * 4)
    d.stack.kill("scheduler")
    d.start_airflow_process("scheduler", d.airflow("scheduler", "--skip-serve-logs"), LOOPBACK)
    d.clock(advance={"days": 1}, speed=600)
    state = d.wait_run("distributed_waits", "scheduler-restart", 300)
    check(state == "success", f"run {state}: {d.states('distributed_waits', 'scheduler-restart')}")
    outcome.detail = "scheduler SIGKILLed with 4 waits deferred, a new one finished the run"


def scenario_pool(d: Deployment, outcome: Outcome) -> None:
    """7. Ten mapped downloads over both workers stay within MaxConcurrentConnections thanks to the pool."""
    d.clock(speed=600)
    today = emulator_today(d)
    first = month_start(today, 1)
    guid = d.create_order(first, first + dt.timedelta(days=9), 1, 1)
    d.clock(advance={"days": 1})
    dates = [(first + dt.timedelta(days=n)).isoformat() for n in range(10)]
    # Only the pool's downloads may hold the account's connections: a request whose worker was killed in an
    # earlier scenario (scenario 3's create, answered only after 120 s) still holds one at the emulator, as it
    # would at a server that finishes what it started.
    wait_until("no request of earlier scenarios in flight", lambda: d.admin("GET", "concurrency")["InFlight"] == 0, 180)
    d.admin("DELETE", "concurrency")
    start = len(d.requests())
    d.fault("trickle,path=/api/satelliteimages/process/composite,chunk=65536,delay=0.1,times=0")
    destination = f"s3://aws_default@{BUCKET}/scenario7"
    d.trigger("distributed_mapped_downloads", "pool", {"order_guid": guid, "dates": dates, "destination": destination})
    state = d.wait_run("distributed_mapped_downloads", "pool", 600)
    d.admin("DELETE", "faults")
    peak = d.admin("GET", "concurrency")["PeakInFlight"]
    refused = [r for r in d.requests()[start:] if r["status"] == 429]
    tis = [t for t in d.task_instances("distributed_mapped_downloads", "pool") if t["task_id"] == "download"]
    hosts = {t["hostname"] for t in tis}
    check(state == "success", f"run {state}: {d.states('distributed_mapped_downloads', 'pool')}")
    check(peak <= MAX_CONCURRENT, f"{peak} concurrent requests at the emulator (limit {MAX_CONCURRENT})")
    check(not refused, lambda: f"{len(refused)} concurrency 429s after: {_around(d.requests()[start:], refused)}")
    check(len(hosts) == 2, f"the downloads ran on {hosts}, not on both workers")
    outcome.detail = f"10 downloads on {len(hosts)} workers; peak {peak} concurrent (limit {MAX_CONCURRENT}); 0 429s"


def _around(log: list[dict[str, Any]], refused: list[dict[str, Any]]) -> str:
    """The requests logged just before the first refused one: what held the account's connections."""
    at = log.index(refused[0])
    before = "; ".join(f"{r['method']} {r['path']} {r['status']}" for r in log[max(0, at - 8) : at + 1])
    return f"{before}; in flight then: {refused[0].get('held_by')}"


def scenario_secrets(d: Deployment, outcome: Outcome) -> None:
    """8. The API key and the upload URL in no log of any process, nor in Postgres' XCom and rendered fields."""
    from urllib.parse import parse_qs, urlparse

    signature = parse_qs(urlparse(d.upload_url).query).get("Signature", [""])[0]
    needles = [n for n in (d.api_key, d.upload_url, signature) if n]
    searched = 0
    found: list[str] = []
    for path in [*sorted((d.stack.workdir / "logs").glob("*.log")), *sorted((d.home / "logs").rglob("*"))]:
        if not path.is_file() or path.name.startswith(("emulator", "moto", "postgres", "redis")):
            continue
        text = path.read_text(errors="replace")
        searched += 1
        found += [f"{path.name}" for n in needles if n in text]
    import psycopg2

    connection = psycopg2.connect(host=LOOPBACK, port=d.ports["postgres"], user="postgres", dbname="airflow")
    rows = 0
    with connection.cursor() as cursor:
        for table, column in (("xcom", "value"), ("rendered_task_instance_fields", "rendered_fields")):
            cursor.execute(f"SELECT {column}::text FROM {table}")
            for (value,) in cursor.fetchall():
                rows += 1
                found += [table for n in needles if value and n in value]
    connection.close()
    outcome.leaked_secrets = len(found)
    check(rows > 0 and searched > 0, "nothing to search")
    check(not found, f"secrets found in {sorted(set(found))}")
    outcome.detail = f"{searched} log files, {rows} XCom/rendered-field rows: 0 occurrences"


# ----------------------------------------------------------------------------- main


def run_scenario(number: int, name: str, body: Callable[[Outcome], None]) -> Outcome:
    outcome = Outcome(number, name)
    began = time.monotonic()
    print(f"[{number}] {name} ...", flush=True)
    try:
        body(outcome)
        outcome.passed = True
    except Exception as error:
        outcome.detail = f"FAILED: {error}"[:400]
        traceback.print_exc()
    outcome.seconds = time.monotonic() - began
    print(
        f"[{number}] {'passed' if outcome.passed else 'FAILED'} in {outcome.seconds:.0f} s: {outcome.detail}",
        flush=True,
    )
    return outcome


def report(outcomes: list[Outcome]) -> bool:
    print()
    print(f"{'#':>2}  {'scenario':<44} {'result':<7} {'s':>5}  detail")
    for o in outcomes:
        print(f"{o.number:>2}  {o.name:<44} {'pass' if o.passed else 'FAIL':<7} {o.seconds:>5.0f}  {o.detail}")
    totals = {
        k: sum(getattr(o, k) for o in outcomes)
        for k in ("duplicate_orders", "repeated_paid_downloads", "partial_files", "lost_waits", "leaked_secrets")
    }
    passed = sum(o.passed for o in outcomes)
    print(
        f"DISTRIBUTED: scenarios {len(outcomes)}, passed {passed}, duplicate orders {totals['duplicate_orders']}, "
        f"repeated paid downloads {totals['repeated_paid_downloads']}, partial files {totals['partial_files']}, "
        f"lost waits {totals['lost_waits']}, leaked secrets {totals['leaked_secrets']}"
    )
    return passed == len(outcomes) and not any(totals.values())


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="clearsky-distributed-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=200, help="deferred waits of scenario 2 (200)")
    parser.add_argument("--only", type=int, action="append", help="run only these scenario numbers")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args(argv)
    began = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with workspace(args.keep) as workdir:
        stack = Stack(workdir)
        d = Deployment(stack, Path(sys.executable).parent)
        sampler = MemorySampler(stack).__enter__()
        try:
            print(f"work directory {workdir}", flush=True)
            d.start_postgres()
            d.start_redis()
            d.start_emulator()
            d.start_moto()
            d.start_airflow()
            print(
                f"deployment up in {time.monotonic() - began:.0f} s: Airflow {d.airflow_url}, emulator {d.emulator_url}",
                flush=True,
            )
            scenarios: list[tuple[int, str, Callable[[Outcome], None]]] = [
                (1, "every example DAG; monthly twice, one order", lambda o: scenario_examples(d, o)),
                (3, "SIGKILL worker after the order committed", lambda o: scenario_kill_create(d, o)),
                (4, "SIGKILL worker mid-download to S3", lambda o: scenario_kill_download(d, o)),
                (7, "10 mapped downloads through the pool", lambda o: scenario_pool(d, o)),
                (2, f"{args.waits} deferred waits on two triggerers", lambda o: scenario_many_waits(d, o, args.waits)),
                (5, "SIGKILL a triggerer holding waits", lambda o: scenario_kill_triggerer(d, o)),
                (6, "scheduler restarted mid-run", lambda o: scenario_restart_scheduler(d, o)),
                (8, "secrets in logs, XCom, rendered fields", lambda o: scenario_secrets(d, o)),
            ]
            outcomes = [run_scenario(n, name, body) for n, name, body in scenarios if not args.only or n in args.only]
            ok = report(sorted(outcomes, key=lambda o: o.number))
        except BaseException:
            traceback.print_exc()
            print(f"the deployment failed; the last lines of its logs follow ({workdir}/logs)", flush=True)
            ok = False
        finally:
            sampler.__exit__()
            stack.stop_all()
        if not ok and not args.keep:
            for log in sorted((workdir / "logs").glob("*.log")):
                print(f"----- last lines of {log.name}")
                print("\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        peak = sampler.peak_bytes / 2**20
        print(
            f"make test-distributed: {time.monotonic() - began:.0f} s, peak memory of all its processes {peak:.0f} MiB"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
