"""The one-command demo: the example DAGs against a local ClearSKY emulator, in a throw-away Airflow home.

``python -m airflow_provider_clearsky.demo`` (``make demo``)
    Starts the emulator on a free loopback port with a fast clock, points ``clearsky_default`` at it, runs
    the monthly monitoring example with ``airflow dags test`` in ``.demo/airflow`` (SQLite), and prints what
    happened: the order, its cost, the image dates and the files written. Exits 0 only if the DAG run
    succeeded and every image date was downloaded.

``python -m airflow_provider_clearsky.demo --standalone`` (``make airflow``)
    Starts the emulator and ``airflow standalone`` with the examples (``.demo/airflow-standalone``), prints
    the UI address and the admin login, and runs until Ctrl-C. The monthly example is unpaused and runs for
    last month right away; the others can be triggered from the UI.

Everything listens on 127.0.0.1 only, and the emulator key is invented: no real ClearSKY account is used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

MONTHLY_DAG = "example_clearsky_monthly_monitoring"
LOOPBACK = "127.0.0.1"


class DemoError(Exception):
    """The demo could not run or the DAG failed; the message says where to look."""


# ----------------------------------------------------------------------------- locations


def examples_folder() -> Path:
    """``example_dags/`` of the clone this package is installed from (the demo runs from a clone)."""
    folder = Path(__file__).resolve().parents[2] / "example_dags"
    if not (folder / f"{MONTHLY_DAG}.py").is_file():
        raise DemoError(
            f"example DAGs not found at {folder}: run the demo from a clone of the repository "
            "(make venv && make demo), where the package is installed in editable mode"
        )
    return folder


def fresh_folder(path: Path) -> Path:
    """Empty ``path`` (only ever a folder inside the demo's work directory) and return it."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- emulator and Airflow


@contextlib.contextmanager
def running_emulator(start: dt.datetime | None, speed: float, faults: list[str] | None = None) -> Iterator[Any]:
    """The emulator in a background thread of this process, on a free loopback port, admin API on."""
    from .config import EmulatorConfig
    from .server import EmulatorServer

    server = EmulatorServer(
        EmulatorConfig(
            host=LOOPBACK,
            port=0,
            admin=True,
            clock_speed=speed,
            start_time=start,
            faults=list(faults or []),
            access_log=False,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def connection_json(emulator_url: str) -> str:
    """``clearsky_default`` pointing at the emulator; its order links open the emulator's own order pages."""
    from .config import DEMO_API_KEY

    # The emulator's default, set explicitly: a connection with extras read in the triggerer is what users have.
    extra = {"dashboard_url": f"{emulator_url}/_emulator/dashboard"}
    return json.dumps({"conn_type": "clearsky", "host": emulator_url, "password": DEMO_API_KEY, "extra": extra})


def airflow_env(home: Path, examples: Path, emulator_url: str, poke_seconds: float) -> dict[str, str]:
    """The environment of every Airflow process of the demo: its own home, SQLite, the examples, the emulator."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")):
            del env[name]  # nothing of the user's own Airflow setup leaks in
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(examples),  # the default "dags-folder" bundle reads it
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW_CONN_CLEARSKY_DEFAULT": connection_json(emulator_url),
            "CLEARSKY_EXAMPLE_POKE_SECONDS": f"{poke_seconds:g}",
            # The venv's `airflow` for the processes that `airflow standalone` starts.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    return env


def airflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def run_logged(command: list[str], env: dict[str, str], log: IO[str], timeout: float, what: str) -> int:
    """Run ``command`` with its output appended to ``log``; echo the DAG-test progress lines."""
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    with subprocess.Popen(  # noqa: S603 - our own interpreter running `airflow`, no shell
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in process.stdout:
            log.write(line)
            if "[DAG TEST] starting task_id=" in line:
                task = line.split("task_id=", 1)[1].split()[0]
                index = line.split("map_index=", 1)[1].split()[0] if "map_index=" in line else "-1"
                print(f"  running {task}" + (f"[{index}]" if index != "-1" else ""), flush=True)
            if time.monotonic() > deadline:
                process.kill()
                raise DemoError(f"{what} took longer than {timeout:.0f} s; see {log.name}")
        return process.wait()


# ----------------------------------------------------------------------------- the DAG-test demo


def month_before(day: dt.date) -> tuple[dt.date, dt.date]:
    first_of_this = day.replace(day=1)
    last = first_of_this - dt.timedelta(days=1)
    return last.replace(day=1), last


def run_demo(
    workdir: Path, clock_speed: float, faults: list[str] | None = None, conf: dict[str, Any] | None = None
) -> int:
    examples = examples_folder()
    started = time.monotonic()
    # The scheduled run of the 1st of this month fetches last month: the demo plays that run, with the emulator's
    # clock starting half an hour after it began and running `clock_speed` times faster than real time.
    now = dt.datetime.now(dt.UTC)
    logical_date = dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)
    first, last = month_before(logical_date.date())
    home = fresh_folder(workdir / "airflow")
    imagery = fresh_folder(workdir / "imagery")
    log_path = workdir / "demo.log"

    print(f"ClearSKY demo: {MONTHLY_DAG} for {first:%B %Y}, against the local emulator")
    start = logical_date + dt.timedelta(minutes=30)
    with running_emulator(start, clock_speed, faults) as emulator, open(log_path, "w") as log:
        print(f"  emulator      {emulator.url} (clock x{clock_speed:g}, demo key, loopback only)")
        print(f"  AIRFLOW_HOME  {home}")
        print(f"  log           {log_path}")
        env = airflow_env(home, examples, emulator.url, poke_seconds=1)
        if run_logged(airflow("db", "migrate"), env, log, 300, "airflow db migrate") != 0:
            raise DemoError(f"airflow db migrate failed; see {log_path}")
        # Register the DAGs (and their Assets) as the DAG processor would; Airflow 3.0's `dags test` does not.
        if run_logged(airflow("dags", "reserialize"), env, log, 300, "airflow dags reserialize") != 0:
            raise DemoError(f"airflow dags reserialize failed; see {log_path}")
        run_conf = json.dumps({"destination": str(imagery), **(conf or {})})
        command = airflow("dags", "test", MONTHLY_DAG, logical_date.isoformat(), "--conf", run_conf)
        code = run_logged(command, env, log, 600, "airflow dags test")
        return summarise(emulator.control, imagery / f"{first:%Y-%m}", first, last, code, log_path, started)


def summarise(
    control: Any, folder: Path, first: dt.date, last: dt.date, code: int, log_path: Path, started: float
) -> int:
    """Print what happened; 0 only when the run succeeded and every image date of the month is on disk."""
    orders = control.orders()
    orders_charged = [c for c in control.charges() if c["kind"] in ("order", "renewal", "refund")]
    files = sorted(folder.glob("*.tif")) if folder.is_dir() else []
    print()
    outcome = "succeeded" if code == 0 else f"FAILED (exit code {code})"
    print(f"DAG run {outcome}; the demo took {time.monotonic() - started:.0f} s")
    for order in orders:
        kind = "recurring" if order.get("To") is None else f"until {order['To']}"
        area = order.get("TaskOrderAreaKm2") or 0.0
        print(f"Order {order['TaskOrderGuid']}: {order['Model']}, {kind}, from {order['From']},")
        print(f"  every {order['ImageFrequency']} days, {area:.2f} km², status {order['OrderingProcessStatus']}")
    total = sum(c["eur"] for c in orders_charged)
    print(f"Cost: {total:.2f} EUR in order credits ({len(orders_charged)} charge(s))")
    dates = []
    print(f"Files in {folder}:")
    for file in files:
        sidecar = json.loads(Path(f"{file}.json").read_text())
        dates.append(sidecar["request"]["Date"])
        print(f"  {file.name}  {file.stat().st_size:>10,d} bytes  date {dates[-1]}  sha256 {sidecar['sha256'][:12]}")
    expected = [d for d in _image_dates(orders, first, last)]
    print(f"Image dates of {first:%B %Y}: {', '.join(expected) or 'none'}")
    ok = code == 0 and len(orders) == 1 and bool(files) and sorted(dates) == expected
    if not ok:
        print(f"The demo did not complete; the full output is in {log_path}", file=sys.stderr)
    return 0 if ok else 1


def _image_dates(orders: list[dict[str, Any]], first: dt.date, last: dt.date) -> list[str]:
    """The order's image dates inside the month (docs/api.md#values: every ImageFrequency days from ReferenceDate)."""
    if not orders:
        return []
    order = orders[0]
    reference = dt.date.fromisoformat(order.get("ReferenceDate") or order["From"])
    every = int(order["ImageFrequency"])
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    return [d.isoformat() for d in days if (d - reference).days % every == 0]


# ----------------------------------------------------------------------------- standalone


def run_standalone(
    workdir: Path, port: int, clock_speed: float, *, paused: bool = False, ready_timeout: float = 180.0
) -> int:
    import httpx

    # Ctrl-C and `kill` both stop Airflow cleanly, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    examples = examples_folder()
    home = fresh_folder(workdir / "airflow-standalone")
    port = port or free_port()
    password = secrets.token_urlsafe(12)
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({"admin": password}))
    log_path = workdir / "standalone.log"
    with running_emulator(None, clock_speed) as emulator, open(log_path, "w") as log:
        env = standalone_env(airflow_env(home, examples, emulator.url, poke_seconds=5), port, passwords_file)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter running `airflow`, no shell
            airflow("standalone"), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_until_up(f"{url}/api/v2/monitor/health", process, ready_timeout, log_path, httpx)
            if not paused:
                unpause(url, password, MONTHLY_DAG, httpx)
            print(f"Airflow is running at {url}  (user admin, password {password})", flush=True)
            print(
                f"  ClearSKY emulator {emulator.url} (clock x{clock_speed:g}), orders: {emulator.url}/_emulator/orders"
            )
            print(f"  AIRFLOW_HOME {home}; output in {log_path}", flush=True)
            if not paused:
                print(
                    f"  {MONTHLY_DAG} is unpaused and runs for last month now; trigger the others from the UI.",
                    flush=True,
                )
            print("Press Ctrl-C to stop.", flush=True)
            while process.poll() is None:
                time.sleep(0.5)
            raise DemoError(f"airflow standalone stopped (exit code {process.returncode}); see {log_path}")
        except KeyboardInterrupt:
            print("\nStopping Airflow ...", flush=True)
            return 0
        finally:
            stop_group(process)


def standalone_env(env: dict[str, str], port: int, passwords_file: Path) -> dict[str, str]:
    """``env`` plus what ``airflow standalone`` needs: the API server on loopback, its users, free log ports."""
    return env | {
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{LOOPBACK}:{port}",
        # One API server process is plenty for a demo. With the default four, uvicorn's supervisor kills
        # a child that has not answered its health ping within 5 s, which on a busy machine is every
        # child still importing the app: they restart forever and the server never answers.
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Airflow 3.0 leaves the JWT issuer unset, which newer PyJWT refuses (500 on /auth/token).
        "AIRFLOW__API_AUTH__JWT_ISSUER": "clearsky-demo",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def wait_until_up(health_url: str, process: subprocess.Popen[Any], timeout: float, log_path: Path, httpx: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"airflow standalone exited (code {process.returncode}); see {log_path}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health_url, timeout=2).status_code == 200:
                return
        time.sleep(1)
    raise DemoError(f"Airflow's API server did not answer within {timeout:.0f} s; see {log_path}")


def api_token(url: str, password: str, httpx: Any) -> str:
    answer = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def unpause(url: str, password: str, dag_id: str, httpx: Any, timeout: float = 120.0) -> None:
    """Unpause ``dag_id`` as soon as the DAG processor has registered it."""
    headers = {"Authorization": f"Bearer {api_token(url, password, httpx)}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.patch(f"{url}/api/v2/dags/{dag_id}", json={"is_paused": False}, headers=headers, timeout=10)
        if answer.status_code == 200:
            return
        time.sleep(1)
    raise DemoError(f"{dag_id} did not appear in Airflow within {timeout:.0f} s")


def stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop ``airflow standalone`` and everything it started (its own process group): INT, then TERM, then KILL."""
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            if not _group_alive(process.pid):
                return
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_clearsky.demo",
        description="Run the example DAGs against a local ClearSKY emulator (loopback only, invented key).",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="start airflow standalone with the examples and keep it running"
    )
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="where the throw-away files go (.demo)")
    parser.add_argument("--port", type=int, default=8080, help="--standalone: the Airflow UI/API port (0: a free one)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm an emulator fault, repeatable (syntax of clearsky-emulator --fault), to see how the DAG copes",
    )
    parser.add_argument(
        "--conf",
        type=json.loads,
        default={},
        metavar="JSON",
        help="DAG params of the run, e.g. '{\"max_cost_eur\": 0.5}' to see the create operator refuse above budget",
    )
    parser.add_argument("--paused", action="store_true", help="--standalone: leave every example paused")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        help="--standalone: seconds to wait for Airflow's API server to answer (180)",
    )
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=None,
        help="emulated seconds per real second (default 3600 for the DAG test, 600 for --standalone)",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.standalone:
            return run_standalone(
                workdir, args.port, args.clock_speed or 600.0, paused=args.paused, ready_timeout=args.ready_timeout
            )
        return run_demo(workdir, args.clock_speed or 3600.0, args.fault, args.conf)
    except (DemoError, ValueError) as error:  # ValueError: a bad --fault spec
        print(f"demo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
