"""The fault matrix: every operation through its operator, against every emulator fault, with invariants.

Shared by ``benchmarks/fault_matrix.py`` (prints the table) and ``tests/integration/quality/test_fault_matrix.py``
(asserts it). Each scenario starts from a fresh emulator state (``control.reset()``), arms one fault on the
endpoint the operation depends on, runs the operation the way Airflow would (``execute`` with a task
context; a retryable exception is followed by a new try of the same task instance, with the same task
state store), then checks:

* **duplicate orders**: a create made more than one order (or anything else made an order at all);
* **paid downloads repeated**: a download was charged again after its file was complete (the scenario
  re-runs a successful download once more, as a cleared task would, and counts charges);
* **partial files**: any file at the final name that is not byte-identical to a clean download, or any
  leftover temporary file, in the destination folder.

Two intensities per fault: ``once`` (the fault fires on one request: a single incident) and ``outage``
(it fires on every matching request for the whole scenario, so every try meets it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_clearsky._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from airflow_provider_clearsky.exceptions import ClearSkyError
from tests.support.orders_support import DictStore, FakeTI, context

UTC = dt.UTC
START = dt.datetime(2025, 6, 10, 12, tzinfo=UTC)
CONSTELLATIONS = ["Sentinel1", "Sentinel2", "Landsat89"]
# The order's area (a 0.05° square near Frankfurt) and the field inside it that is downloaded and waited for.
ORDER_WKT = "GEOMETRYCOLLECTION (POLYGON ((8.60 50.10, 8.65 50.10, 8.65 50.15, 8.60 50.15, 8.60 50.10)))"
FIELD = "POLYGON ((8.61 50.11, 8.64 50.11, 8.64 50.14, 8.61 50.14, 8.61 50.11))"
IMAGE_DATE = "2025-05-07"  # an image date of the May order (weekly from 2025-01-01)

#: Connection extras: fast hook retries and a read timeout the trickle fault exceeds.
READ_TIMEOUT = 0.3
MAX_RETRIES = 3
CONNECTION_EXTRA = {
    "timeout": READ_TIMEOUT,
    "connect_timeout": 2.0,
    "max_retries": MAX_RETRIES,
    "backoff_initial": 0.01,
    "backoff_max": 0.02,
    "retry_after_cap": 1.0,
}
RETRY_AFTER = 0.2  # seconds, for the 429 + Retry-After fault
TRICKLE_DELAY = 0.6  # seconds between body pieces: twice the read timeout
#: Tries of one task instance (Airflow ``retries=1``): a retryable failure gets one more try.
MAX_TRIES = 2
#: Sensor settings: quick pokes, a timeout that ends an outage scenario quickly.
SENSOR_POKE = 0.05
SENSOR_TIMEOUT = 0.5


# --------------------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


FAULTS: tuple[Fault, ...] = (
    Fault("429", "429"),
    Fault("429+RA", "429", {"retry_after": RETRY_AFTER}),
    Fault("500", "500"),
    Fault("502", "502"),
    Fault("503", "503"),
    Fault("504", "504"),
    Fault("reset", "reset"),
    Fault("drop", "drop_after_commit"),
    Fault("cut", "truncate"),
    Fault("trickle", "trickle", {"delay": TRICKLE_DELAY}),
)
FAULT_HELP = {
    "429": "429 without Retry-After",
    "429+RA": f"429 with Retry-After: {RETRY_AFTER:g}",
    "500": "HTTP 500",
    "502": "HTTP 502",
    "503": "HTTP 503",
    "504": "HTTP 504",
    "reset": "connection reset before any response byte (request not processed)",
    "drop": "request processed (order created / download charged), then connection dropped without a byte",
    "cut": "headers with full Content-Length, half the body, then reset (for JSON endpoints too)",
    "trickle": f"body in pieces {TRICKLE_DELAY:g} s apart, past the {READ_TIMEOUT:g} s read timeout",
}
INTENSITIES = ("once", "outage")


# --------------------------------------------------------------------------------------------- operations


@dataclass
class Run:
    """What one scenario's operation needs between setup and checks."""

    handle: Any
    workdir: Path
    state: dict[str, Any] = field(default_factory=dict)
    store: DictStore = field(default_factory=DictStore)
    arm: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Operation:
    name: str
    #: the endpoint the fault is armed on (exact path, or a prefix ending in ``*``) and its method
    path: str
    method: str | None
    setup: Callable[[Run], None]
    attempt: Callable[[Run, int], Any]
    #: orders the operation itself is meant to make
    orders_made: int = 0
    #: the fault is armed by ``attempt`` itself (after the sensor has deferred), not before the first try
    arms_itself: bool = False
    rerun: Callable[[Run, int], Any] | None = None
    #: trickle piece size: about half the faulted answer, so the client times out after the first piece
    #: and the server-side handler, trickling on into the closed connection, ends one piece later
    trickle_chunk: int = 256
    #: what to undo after the scenario (a mounted file system)
    teardown: Callable[[Run], None] | None = None
    #: the scenario never reaches the faulted endpoint (the destination is refused before paying)
    never_requests: bool = False
    #: checks the reported result against the emulator's state; returns what does not match
    audit: Callable[[Run, bool], list[str]] | None = None


def _place_order(run: Run) -> str:
    """A May-2025 historical order over the field, ten download passes per date, placed at START."""
    control = run.handle.control
    control.set_speed(0)
    control.set_time(START)
    body = {
        "Wkt": ORDER_WKT,
        "Model": "Stratus2",
        "SatelliteConstellations": CONSTELLATIONS,
        "StorageMonths": 1,
        "ApiRequests": 10,
        "ImageFrequency": 7,
        "ReferenceDate": "2025-01-01",
        "From": "2025-05-01",
        "To": "2025-05-31",
    }
    with run.handle.client() as client:
        response = client.post("/api/tasking/orders", json=body)
    response.raise_for_status()
    guid = str(response.json()["Data"]["TaskOrderGuid"])
    run.state["order_guid"] = guid
    return guid


def _order_settings() -> dict[str, Any]:
    # A triangle, not a box: with the emulator's ``bbox`` echo, orders answer its bounding box, so adopting a
    # lost create's order cannot rest on the area coming back exactly as sent.
    return {
        "wkt": "POLYGON ((12.50 55.60, 12.56 55.60, 12.50 55.64, 12.50 55.60))",
        "model": "Stratus2",
        "satellite_constellations": CONSTELLATIONS,
        "image_frequency": 7,
        "date_from": "2025-06-01",
        "date_to": None,
    }


def _freeze(run: Run) -> None:
    run.handle.control.set_speed(0)
    run.handle.control.set_time(START)


def _freeze_bbox_echo(run: Run) -> None:
    """As ``_freeze``; order answers echo each polygon's bounding box (``--order-geometry-echo bbox``)."""
    _freeze(run)
    run.handle.control.set_order_geometry_echo("bbox")


def _estimate(run: Run, try_number: int) -> Any:
    from airflow_provider_clearsky.operators.orders import ClearSkyEstimateOrderOperator

    op = ClearSkyEstimateOrderOperator(task_id="estimate", **_order_settings())
    return op.execute(context(FakeTI(try_number)))


def _create(run: Run, try_number: int) -> Any:
    from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator

    op = ClearSkyCreateOrderOperator(task_id="create", max_cost=100.0, outcome_timeout=0.5, **_order_settings())
    op.lookup_interval = 0.1
    ti = FakeTI(try_number)
    # The DAG run started at START on the API's (the emulator's) clock. Below Airflow 3.3 there is no task state
    # store, and a later try adopts an identical order created since the run started.
    guid = op.execute(context(ti, run.store, run_start=START))
    run.state["xcoms"] = ti.xcoms
    return guid


def _status_sensor(**kwargs: Any) -> Any:
    from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

    options: dict[str, Any] = {
        "task_id": "wait_order",
        "poke_interval": SENSOR_POKE,
        "exponential_backoff": False,
        "timeout": SENSOR_TIMEOUT,
        "deferrable": False,
    }
    return ClearSkyOrderStatusSensor(**{**options, **kwargs})


def _setup_completed_order(run: Run) -> None:
    _place_order(run)
    run.handle.control.advance(hours=3)  # every May date produced: the order is Completed


def _status_poke(run: Run, try_number: int) -> Any:
    return _status_sensor(order_guid=run.state["order_guid"]).execute({})


def _status_deferred(run: Run, try_number: int) -> Any:
    """The deferrable path: the first check on the worker, the wait in the trigger, the end in a fresh
    instance's ``execute_complete``. The fault is armed once the task has deferred, so it hits the trigger."""
    guid = run.state["order_guid"]
    try:
        return _status_sensor(order_guid=guid, deferrable=True).execute({})
    except TaskDeferred as deferred:
        trigger = deferred.trigger
    run.handle.control.advance(hours=3)  # the order completes while the trigger waits
    run.arm()
    event = asyncio.run(_first_event(trigger))
    return _status_sensor(order_guid=guid, deferrable=True).execute_complete({}, event)


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def _availability(run: Run, try_number: int) -> Any:
    from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor

    sensor = ClearSkyImageAvailabilitySensor(
        task_id="wait_imagery",
        wkt=FIELD,
        dates=[IMAGE_DATE],
        bands="rgb",
        poke_interval=SENSOR_POKE,
        exponential_backoff=False,
        timeout=SENSOR_TIMEOUT,
        deferrable=False,
    )
    return sensor.execute({})


def download_operator(destination: Path) -> Any:
    from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator

    return ClearSkyDownloadCompositeOperator(
        task_id="download",
        wkt=FIELD,
        date=IMAGE_DATE,
        bands="rgb",
        resolution=20,
        destination=str(destination),
    )


def _download(run: Run, try_number: int) -> Any:
    return download_operator(run.workdir).execute({})


def _download_rerun(run: Run, try_number: int) -> Any:
    """A cleared task (or a retry after success) runs again: the complete file must be kept, nothing paid."""
    return download_operator(run.workdir).execute({})


def _create_rerun(run: Run, try_number: int) -> Any:
    return _create(run, try_number)


# ------------------------------------------------------------------------ destinations that cannot take the file


def _mount_destination(run: Run, *, readonly: bool) -> None:
    """A real read-only or full tmpfs as the destination (root only, as in CI); skipped otherwise."""
    from tests.support.filesystems import fill, mount_tmpfs

    _setup_completed_order(run)
    mount = run.workdir.parent / f"{run.workdir.name}-mnt"
    if not mount_tmpfs(mount, size=256 << 10, readonly=readonly):
        raise Unsupported("mounting a tmpfs needs root")
    run.state["mount"] = mount
    if not readonly:
        (mount / "imagery").mkdir()
        fill(mount)
    run.workdir = mount / "imagery"


def _unmount(run: Run) -> None:
    from tests.support.filesystems import unmount

    if "mount" in run.state:
        unmount(run.state["mount"])


class Unsupported(Exception):
    """The scenario cannot run on this machine (e.g. no root to mount a file system)."""


# ------------------------------------------------------------------------ midnight


BEFORE_MIDNIGHT = dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC)
#: emulated seconds one extra 429 holds the create/cancel up: it lands after 00:00 UTC on the 1st
MIDNIGHT_DELAY = 5.0


def _delay_past_midnight(run: Run, path: str, method: str) -> None:
    """An extra 429, armed before the scenario's fault, that moves the frozen clock past the cut-off."""
    run.handle.control.add_fault("429", path=path, method=method, times=1, retry_after=0.01, advance=MIDNIGHT_DELAY)


def _follow_emulator_clock(run: Run) -> None:
    from airflow_provider_clearsky.operators import orders

    run.state["utc_now"] = orders.utc_now
    orders.utc_now = run.handle.control.now


def _restore_clock(run: Run) -> None:
    from airflow_provider_clearsky.operators import orders

    if "utc_now" in run.state:
        orders.utc_now = run.state.pop("utc_now")


def _midnight_settings() -> dict[str, Any]:
    return {**_order_settings(), "date_from": "2026-06-01"}


def _setup_create_midnight(run: Run) -> None:
    from airflow_provider_clearsky.operators.orders import ClearSkyEstimateOrderOperator

    control = run.handle.control
    control.set_speed(0)
    control.set_time(BEFORE_MIDNIGHT)
    _follow_emulator_clock(run)
    june = ClearSkyEstimateOrderOperator(task_id="estimate", **_midnight_settings()).execute(context())
    run.state["budget"] = float(june["current_month_cost"]) * 1.5  # June fits, June and July do not
    _delay_past_midnight(run, "/api/tasking/orders", "POST")


def _create_midnight(run: Run, try_number: int) -> Any:
    from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator

    op = ClearSkyCreateOrderOperator(
        task_id="create", max_cost=run.state["budget"], outcome_timeout=0.5, **_midnight_settings()
    )
    op.lookup_interval = 0.1
    return op.execute(context(FakeTI(try_number), run.store, run_start=BEFORE_MIDNIGHT))


def _audit_create_midnight(run: Run, succeeded: bool) -> list[str]:
    """A success must not hide an order charged above the budget."""
    if not succeeded:
        return []
    return [
        f"reported success, but order {order['TaskOrderGuid']} was charged {order['ChargedEur']:.2f} above "
        f"max_cost {run.state['budget']:.2f}"
        for order in run.handle.control.orders()
        if order["ChargedEur"] > run.state["budget"] + 1e-6
    ]


def _setup_cancel_midnight(run: Run) -> None:
    from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator

    control = run.handle.control
    control.set_speed(0)
    control.set_time(START)
    _follow_emulator_clock(run)
    run.state["order_guid"] = ClearSkyCreateOrderOperator(
        task_id="create", max_cost=None, **_midnight_settings()
    ).execute(context())
    control.set_time(BEFORE_MIDNIGHT)
    _delay_past_midnight(run, "/api/tasking/orders/cancel", "DELETE")


def _cancel_midnight(run: Run, try_number: int) -> Any:
    from airflow_provider_clearsky.operators.cancel import ClearSkyCancelOrderOperator

    result = ClearSkyCancelOrderOperator(task_id="cancel", order_guid=run.state["order_guid"]).execute(context())
    run.state["result"] = result
    return result


def _audit_cancel_midnight(run: Run, succeeded: bool) -> list[str]:
    """The reported coverage and renewal equal the emulator's order and charges."""
    if not succeeded:
        return []
    control = run.handle.control
    guid = run.state["order_guid"]
    order = control.order(guid)
    renewed = sorted(c["at"][:7] for c in control.charges() if c["kind"] == "renewal" and c["order"] == guid)
    result = run.state["result"]
    wrong = []
    if result["coverage_until"] != order["CoverageEnds"]:
        wrong.append(f"reported coverage until {result['coverage_until']}, paid until {order['CoverageEnds']}")
    if result["renewal_already_happened_for"] != (renewed[-1] if renewed else None):
        wrong.append(f"reported renewal {result['renewal_already_happened_for']}, charged renewals {renewed}")
    return wrong


OPERATIONS: tuple[Operation, ...] = (
    Operation("estimate", "/api/tasking/orders/estimate", "POST", _freeze, _estimate, trickle_chunk=600),
    Operation(
        "create",
        "/api/tasking/orders",
        "POST",
        _freeze,
        _create,
        orders_made=1,
        rerun=_create_rerun,
        trickle_chunk=500,
    ),
    # The same create scenarios with the order's area echoed as its bounding box.
    Operation(
        "create:bbox",
        "/api/tasking/orders",
        "POST",
        _freeze_bbox_echo,
        _create,
        orders_made=1,
        rerun=_create_rerun,
        trickle_chunk=500,
    ),
    Operation(
        "status:poke", "/api/tasking/orders/details", None, _setup_completed_order, _status_poke, trickle_chunk=500
    ),
    Operation(
        "status:deferred",
        "/api/tasking/orders*",
        None,
        _place_order,
        _status_deferred,
        arms_itself=True,
        trickle_chunk=350,
    ),
    Operation(
        "availability", "/api/satelliteimages/*", "POST", _setup_completed_order, _availability, trickle_chunk=200
    ),
    Operation(
        "download",
        "/api/satelliteimages/process/composite",
        "POST",
        _setup_completed_order,
        _download,
        rerun=_download_rerun,
        trickle_chunk=65536,
    ),
    Operation(
        "download:read-only",
        "/api/satelliteimages/process/composite",
        "POST",
        lambda run: _mount_destination(run, readonly=True),
        _download,
        teardown=_unmount,
        never_requests=True,
    ),
    Operation(
        "download:disk-full",
        "/api/satelliteimages/process/composite",
        "POST",
        lambda run: _mount_destination(run, readonly=False),
        _download,
        teardown=_unmount,
        never_requests=True,
    ),
    Operation(
        "create:midnight",
        "/api/tasking/orders",
        "POST",
        _setup_create_midnight,
        _create_midnight,
        orders_made=1,
        teardown=_restore_clock,
        audit=_audit_create_midnight,
        trickle_chunk=500,
    ),
    Operation(
        "cancel:midnight",
        "/api/tasking/orders/cancel",
        "DELETE",
        _setup_cancel_midnight,
        _cancel_midnight,
        teardown=_restore_clock,
        audit=_audit_cancel_midnight,
        trickle_chunk=500,
    ),
)
DOWNLOADS = ("download", "download:read-only", "download:disk-full")


# --------------------------------------------------------------------------------------------- outcomes

FIRST_TRY = "ok"  # succeeded in the first try (with or without hook retries)
AFTER_RETRY = "ok-retry"  # succeeded in a later try of the same task instance
FAILED_CLEAR = "failed"  # failed with an error that names the cause
TIMED_OUT = "timeout"  # a sensor waited the fault out until its timeout (its message names the last error)
FAILED_UNCLEAR = "UNCLEAR"  # failed with a bare or uninformative error

#: Words that name the cause of a failure, in an error's text or its causes' texts.
_CAUSE_WORDS = (
    "HTTP 429",
    "HTTP 500",
    "HTTP 502",
    "HTTP 503",
    "HTTP 504",
    "ReadTimeout",
    "ConnectTimeout",
    "reset",
    "closed",
    "disconnected",
    "cut short",
    "incomplete",
    "outcome is unknown",
    "protocol",
    "/api/",
    "cannot be written",
    "max_cost",
)


def error_text(error: BaseException) -> str:
    """The error's text and its causes' texts (what a log shows of the failure)."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def is_clear(error: BaseException) -> bool:
    """A provider or Airflow error whose message (or cause's) names what went wrong."""
    if not isinstance(error, (ClearSkyError, AirflowException)):
        return False
    text = error_text(error).lower()
    return any(word.lower() in text for word in _CAUSE_WORDS)


def retryable(error: BaseException) -> bool:
    """Whether Airflow would give the task instance another try (it has retries left)."""
    return not isinstance(error, (AirflowFailException, AirflowSensorTimeout))


@dataclass
class Result:
    operation: str
    fault: str
    intensity: str
    outcome: str = ""
    tries: int = 0
    requests: int = 0
    fired: int = 0
    new_orders: int = 0
    duplicate_orders: int = 0
    download_charges: int = 0
    repeated_paid_downloads: int = 0
    partial_files: int = 0
    misreported: int = 0
    skipped: str = ""
    error: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.operation}|{self.fault}|{self.intensity}"

    @property
    def invariants_ok(self) -> bool:
        return (
            self.duplicate_orders == 0
            and self.repeated_paid_downloads == 0
            and self.partial_files == 0
            and self.misreported == 0
        )


# --------------------------------------------------------------------------------------------- running


def connection_json(handle: Any) -> str:
    return json.dumps({**handle.connection_dict(), "extra": CONNECTION_EXTRA})


def wait_idle(handle: Any, limit: float = 5.0) -> None:
    """Until the emulator has no request in flight and its log has caught up (a trickled or streamed answer
    finishes, and is logged, after the client has gone; the entry is written just after the slot is freed)."""
    emulator = handle.server.emulator
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with emulator.inflight_lock:
            busy = sum(emulator.inflight.values())
        if busy:
            time.sleep(0.01)
            continue
        count = len(emulator.request_log)
        time.sleep(0.005)
        with emulator.inflight_lock:
            busy = sum(emulator.inflight.values())
        if not busy and len(emulator.request_log) == count:
            return


_baseline: dict[str, tuple[int, str]] = {}


def clean_download(handle: Any, workdir: Path) -> tuple[int, str]:
    """Size and SHA-256 of the composite downloaded with no fault (the reference for partial files)."""
    if handle.url not in _baseline:
        handle.control.reset()
        run = Run(handle, workdir / "baseline")
        _setup_completed_order(run)
        uri = download_operator(run.workdir).execute({})
        data = Path(str(uri).removeprefix("file://")).read_bytes()
        _baseline[handle.url] = (len(data), hashlib.sha256(data).hexdigest())
        wait_idle(handle)
    return _baseline[handle.url]


def partial_files(folder: Path, reference: tuple[int, str]) -> tuple[int, list[str]]:
    """Files in ``folder`` that are not a complete download or its metadata."""
    if not folder.exists():
        return 0, []
    bad = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.endswith((".tif.json", ".tif.stac.json")):
            continue
        if not name.endswith(".tif"):
            bad.append(f"leftover {name}")
            continue
        data = path.read_bytes()
        if (len(data), hashlib.sha256(data).hexdigest()) != reference:
            bad.append(f"{name}: {len(data)} bytes, not the {reference[0]} of a complete download")
    return len(bad), bad


def run_scenario(handle: Any, operation: Operation, fault: Fault, intensity: str, workdir: Path) -> Result:
    """One operation against one fault, from a fresh emulator state; the invariants are checked after."""
    reference = clean_download(handle, workdir) if operation.name in DOWNLOADS else None
    control = handle.control
    wait_idle(handle)
    control.reset()
    run = Run(handle, workdir / f"{operation.name.replace(':', '-')}-{fault.name}-{intensity}")
    result = Result(operation.name, fault.name, intensity)
    try:
        operation.setup(run)
        wait_idle(handle)
        return _run(run, operation, fault, intensity, result, reference)
    except Unsupported as why:
        result.skipped = str(why)
        return result
    finally:
        if operation.teardown is not None:
            operation.teardown(run)


def _run(
    run: Run, operation: Operation, fault: Fault, intensity: str, result: Result, reference: tuple[int, str] | None
) -> Result:
    handle, control = run.handle, run.handle.control

    armed: list[dict[str, Any]] = []

    def arm() -> None:
        if not armed:
            armed.append(
                control.add_fault(
                    fault.kind,
                    path=operation.path,
                    method=operation.method,
                    times=1 if intensity == "once" else 0,
                    **_fault_options(fault, operation),
                )
            )

    run.arm = arm
    if not operation.arms_itself:
        arm()
    requests_before = len(control.request_log())
    orders_before = control.order_count()
    charges_before = len(control.charges("download"))
    started = time.monotonic()

    succeeded = False
    for try_number in range(1, MAX_TRIES + 1):
        result.tries = try_number
        try:
            operation.attempt(run, try_number)
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            result.error = error_text(error)
            if retryable(error) and try_number < MAX_TRIES:
                continue
            if isinstance(error, AirflowSensorTimeout):
                result.outcome = TIMED_OUT
            else:
                result.outcome = FAILED_CLEAR if is_clear(error) else FAILED_UNCLEAR
            break
        succeeded = True
        result.error = ""
        result.outcome = FIRST_TRY if try_number == 1 else AFTER_RETRY
        break
    result.seconds = time.monotonic() - started
    wait_idle(handle)
    result.fired = sum(rule["fired"] for rule in control.faults())
    control.clear_faults()
    charges_done = len(control.charges("download"))

    if succeeded and operation.rerun is not None:
        # What a cleared task or a late retry does after success: nothing may be ordered or paid again.
        orders_done = control.order_count()
        operation.rerun(run, result.tries + 1)
        wait_idle(handle)
        if control.order_count() != orders_done:
            result.notes.append("the re-run after success made another order")
        result.repeated_paid_downloads = len(control.charges("download")) - charges_done
    result.requests = len(control.request_log()) - requests_before
    result.new_orders = control.order_count() - orders_before
    result.duplicate_orders = max(0, result.new_orders - operation.orders_made)
    result.download_charges = len(control.charges("download")) - charges_before
    if operation.name.startswith("create") and succeeded:
        orders = control.orders()
        if (
            len(orders) == 1
            and run.state.get("xcoms", {}).get("order_summary", {}).get("order_guid") != orders[0]["TaskOrderGuid"]
        ):
            result.notes.append("the returned GUID is not the order that exists")
    if reference is not None:
        result.partial_files, details = partial_files(run.workdir, reference)
        result.notes.extend(details)
        if succeeded and not any(p.name.endswith(".tif") for p in run.workdir.iterdir()):
            result.notes.append("succeeded but no file at the final name")
    if operation.audit is not None:
        wrong = operation.audit(run, succeeded)
        result.misreported = len(wrong)
        result.notes.extend(wrong)
    return result


def _fault_options(fault: Fault, operation: Operation) -> dict[str, Any]:
    options = dict(fault.options)
    if fault.kind == "trickle":
        options["chunk"] = operation.trickle_chunk
    return options


def scenarios() -> list[tuple[Operation, Fault, str]]:
    return [(op, fault, intensity) for op in OPERATIONS for intensity in INTENSITIES for fault in FAULTS]


def scenario_id(operation: Operation, fault: Fault, intensity: str) -> str:
    return f"{operation.name}-{fault.name}-{intensity}"


# --------------------------------------------------------------------------------------------- report


def _cell(result: Result) -> str:
    if result.skipped:
        return "skipped"
    mark = "" if result.invariants_ok else "!"
    return f"{result.outcome}{mark} {result.tries}t/{result.requests}r"


def table(results: list[Result]) -> str:
    """One table: a row per operation and intensity, a column per fault; each cell is the outcome, the
    task tries and the API requests the scenario took."""
    by_key = {r.key: r for r in results}
    rows = [(op.name, intensity) for op in OPERATIONS for intensity in INTENSITIES]
    head = ["operation / fault"] + [f.name for f in FAULTS]
    body = []
    for name, intensity in rows:
        cells = [f"{name} ({intensity})"]
        for fault in FAULTS:
            found = by_key.get(f"{name}|{fault.name}|{intensity}")
            cells.append(_cell(found) if found else "-")
        body.append(cells)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(row) for row in body]
    return "\n".join(out)


def totals(results: list[Result]) -> dict[str, int]:
    return {
        "scenarios": len(results),
        "succeeded (first try)": sum(r.outcome == FIRST_TRY for r in results),
        "succeeded after retry": sum(r.outcome == AFTER_RETRY for r in results),
        "failed with a clear error": sum(r.outcome == FAILED_CLEAR for r in results),
        "sensor timeouts": sum(r.outcome == TIMED_OUT for r in results),
        "failed unclearly": sum(r.outcome == FAILED_UNCLEAR for r in results),
        "duplicate orders": sum(r.duplicate_orders for r in results),
        "paid downloads repeated": sum(r.repeated_paid_downloads for r in results),
        "partial files": sum(r.partial_files for r in results),
        "misreported results": sum(r.misreported for r in results),
        "download charges with an unusable destination": sum(
            r.download_charges for r in results if r.operation in ("download:read-only", "download:disk-full")
        ),
        "skipped (needs root)": sum(bool(r.skipped) for r in results),
    }


def closing_line(results: list[Result]) -> str:
    return "TOTAL: " + ", ".join(f"{name} {value}" for name, value in totals(results).items())
