"""One error policy: every error kind ends a ClearSKY sensor alike in poke, reschedule and deferrable mode.

Each kind runs through whole ``dag.test()`` runs of ``ClearSkyOrderStatusSensor`` and (where the kind can reach
it) ``ClearSkyImageAvailabilitySensor``, ``retries=1``, once per mode, the deferrable one with its trigger run to
its event. The outcome (final state, number of tries, the error and message of each failed try, the XCom) must
be the same in every mode, and the one ``ERROR_POLICIES`` gives the kind (``tests/unit/test_exceptions.py``
ties these expectations to the table).

Errors the emulator produces run over real HTTP (fault injection, a wrong key, an unknown order). The rest, and
any error that must start after the first check (so the deferrable mode meets it in the trigger, not in its
first check on the worker), come from a scripted ``httpx.MockTransport`` API: the first request answers "not
yet", the following ones the error (a waited-out kind clears after a few answers).

The messages are compared with the request's endpoint masked: the order-status trigger lists the connection's
orders (one request shared by every trigger), the worker's check reads the order's details, by design.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from tests.support.airflow30 import AIRFLOW_30

from .conftest import FIELD, UTC, place_order, set_connection, task_instance, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dag]

HOUR = 3600.0
DAY = 24 * HOUR
IMAGE_DATE = "2025-06-08"  # an image date of the recurring weekly order from 2025-06-01, produced on 06-09
GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
WAIT, FAIL = "wait", "fail"  # ErrorPolicy's values (spelt out, so this test also runs on code without it)
EXCEPTION_UNKNOWN_ON_30 = "(not given to callbacks on Airflow 3.0)"
MODES = {"poke": ("poke", False), "reschedule": ("reschedule", False), "deferrable": ("poke", True)}

DAG_SOURCE = """
import datetime as dt
import json
from airflow.sdk import DAG
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

def record(context):
    error = context.get("exception")
    with open({outcomes!r}, "a") as handle:
        handle.write(json.dumps({{"try": context["ti"].try_number, "error": type(error).__name__,
                                  "message": str(error)}}) + "\\n")

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
    {sensor}(
        task_id="wait",
        {what}
        mode="{mode}",
        deferrable={deferrable},
        poke_interval=0.2,
        exponential_backoff=False,
        timeout=60,
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
        on_retry_callback=record,
        on_failure_callback=record,
    )
"""
#: What each sensor waits for (the order's GUID comes from the run's conf).
SENSORS = {
    "status": ("ClearSkyOrderStatusSensor", "order_guid=\"{{ dag_run.conf['order_guid'] }}\","),
    "availability": ("ClearSkyImageAvailabilitySensor", f"wkt={FIELD!r}, dates=[{IMAGE_DATE!r}],"),
}


def run_modes(
    write_dag: Any, tmp_path: Path, sensor: str, kind: str, guid: Callable[[], str], arm: Callable[[], None]
) -> dict[str, Any]:
    """Run the sensor's DAG once per mode; return each mode's (state, tries, failed tries, XCom)."""
    outcomes: dict[str, Any] = {}
    operator, what = SENSORS[sensor]
    for name, (mode, deferrable) in MODES.items():
        dag_id = f"error_parity_{sensor}_{kind}_{name}".replace("-", "_")
        log = tmp_path / f"{dag_id}.jsonl"
        source = DAG_SOURCE.format(
            dag_id=dag_id, sensor=operator, what=what, mode=mode, deferrable=deferrable, outcomes=str(log)
        )
        dag = write_dag(dag_id, source)
        conf = {"order_guid": guid()}
        arm()
        run = dag.test(run_conf=conf)
        ti = task_instance(dag_id, run.run_id, "wait")
        failed = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        for entry in failed:
            entry["message"] = re.sub(r"\[(GET|POST) /api/[^,\]]*", "[<request>", entry["message"])
            if AIRFLOW_30:  # 3.0's dag.test() gives callbacks no "exception": tries and states only
                entry.update(error=EXCEPTION_UNKNOWN_ON_30, message=EXCEPTION_UNKNOWN_ON_30)
        outcomes[name] = (ti.state, ti.try_number, failed, xcom(dag_id, run.run_id, "wait"))
    return outcomes


def assert_same_everywhere(outcomes: dict[str, Any], policy: str) -> None:
    """The same outcome in every mode, and the one ``ERROR_POLICIES`` gives (``wait`` or ``fail``) for a wait."""
    first = outcomes["poke"]
    for name, outcome in outcomes.items():
        assert outcome == first, f"{name} differs from poke:\n{outcome}\n{first}"
    state, tries, failed, _ = first
    if policy == WAIT:  # waited out: the order then completes in the first try
        assert (state, tries, failed) == ("success", 1, [])
    else:
        error = EXCEPTION_UNKNOWN_ON_30 if AIRFLOW_30 else "AirflowFailException"
        assert (state, tries, [entry["error"] for entry in failed]) == ("failed", 1, [error])


# ------------------------------------------------------------------------------------ over the emulator

#: Faults the emulator injects, per sensor: more firings than one check's attempts (the hook retries once), so
#: the deferrable mode meets them in its first check and in the trigger.
EMULATOR_FAULTS = [("status", "429"), ("status", "503"), ("status", "reset"), ("availability", "503")]
FAULT_PATHS = {"status": "/api/tasking/orders*", "availability": "/api/satelliteimages/*"}
FIRINGS = 4


@pytest.mark.parametrize(("sensor", "fault"), EMULATOR_FAULTS)
def test_transient_faults_are_waited_out_alike(
    write_dag: Any, emu: EmulatorHandle, reschedule_start_date_parsed: None, tmp_path: Path, sensor: str, fault: str
) -> None:
    fired: list[int] = []

    def collect_firings() -> None:
        fired.extend(rule["fired"] for rule in emu.control.faults())

    def new_order() -> str:
        collect_firings()
        emu.control.reset()
        if sensor == "status":
            emu.control.set_time(dt.datetime(2025, 7, 10, tzinfo=UTC))
            return place_order()
        emu.control.set_time(dt.datetime(2025, 6, 2, tzinfo=UTC))
        return place_order(date_from="2025-06-01", date_to=None)

    def arm() -> None:
        emu.control.add_fault(fault, path=FAULT_PATHS[sensor], times=FIRINGS)
        # the order completes ~2.5 emulated hours after acceptance; 06-08's imagery appears on 06-09 06:00
        emu.control.set_speed(2 * HOUR if sensor == "status" else 4 * DAY)

    outcomes = run_modes(write_dag, tmp_path, sensor, fault, new_order, arm)
    collect_firings()
    assert fired == [FIRINGS] * len(MODES)
    assert_same_everywhere({name: (*outcome[:3], None) for name, outcome in outcomes.items()}, WAIT)
    for *_, (result,) in outcomes.values():
        assert result == [IMAGE_DATE] if sensor == "availability" else result["OrderingProcessStatus"] == "Completed"


def test_wrong_key_and_unknown_order_fail_alike(
    write_dag: Any,
    emu: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    reschedule_start_date_parsed: None,
    tmp_path: Path,
) -> None:
    outcomes = run_modes(write_dag, tmp_path, "status", "unknown", lambda: GUID, lambda: None)
    assert_same_everywhere(outcomes, FAIL)
    if not AIRFLOW_30:
        assert "HTTP 404" in outcomes["poke"][2][0]["message"]
    guid = place_order()
    set_connection(monkeypatch, emu, api_key="not-a-key-of-the-emulator")
    outcomes = run_modes(write_dag, tmp_path, "status", "wrong_key", lambda: guid, lambda: None)
    assert_same_everywhere(outcomes, FAIL)
    if not AIRFLOW_30:
        assert "HTTP 401" in outcomes["poke"][2][0]["message"]


# ------------------------------------------------------------------------------------ scripted API


def envelope(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"Succeeded": True, "Error": None, "Data": data})


def refusal(status: int, code: int | None) -> httpx.Response:
    error = {"Message": f"refused with {status}/{code}", "Code": code}
    return httpx.Response(status, json={"Succeeded": False, "Error": error, "Data": None})


def orders(status: str) -> httpx.Response:
    order = {
        "TaskOrderGuid": GUID,
        "OrderingProcessStatus": status,
        "Model": "Stratus2",
        "From": "2025-06-01",
        "To": "2025-06-30",
        "ImageFrequency": 7,
        "Wkt": "GEOMETRYCOLLECTION (POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0)))",
    }
    return envelope({"TaskOrders": [order]})


def html_page() -> httpx.Response:
    return httpx.Response(200, text="<html>Down for maintenance</html>", headers={"content-type": "text/html"})


def imagery(request: httpx.Request, ready: bool) -> httpx.Response:
    """``composite/available`` (ready or not yet) or ``search/available`` (the date produced or not)."""
    if request.url.path.endswith("/search/available"):
        dates = [IMAGE_DATE] if ready else []
        found = {
            "Model": "Stratus2",
            "SatelliteConstellations": ["Sentinel2"],
            "DatesByGeog": [{"Wkt": FIELD, "Dates": dates}],
        }
        return envelope({"ModelImageDates": [found]})
    flags = {
        "FullyAvailable": ready,
        "PartiallyAvailable": False,
        "OrdersCoverPolygon": True,
        "DataAvailableForUser": True,
        "DataOnZoneDataFrequencyDate": True,
        "AnyImageWithinStorageMonths": True,
    }
    return envelope(flags)


#: Kinds only a scripted API gives mid-wait: the answer after the first check, and what the wait must do.
SCRIPTED_KINDS: dict[str, tuple[Callable[[], httpx.Response], str]] = {
    "400": (lambda: refusal(400, None), FAIL),
    "400-validation-992": (lambda: refusal(400, 992), FAIL),
    "400-credits-994": (lambda: refusal(400, 994), FAIL),
    "400-no-imagery-1002": (lambda: refusal(400, 1002), FAIL),
    "400-limit-1004": (lambda: refusal(400, 1004), FAIL),
    "400-not-covered-1006": (lambda: refusal(400, 1006), FAIL),
    "401": (lambda: refusal(401, None), FAIL),
    "403": (lambda: refusal(403, None), FAIL),
    "404": (lambda: refusal(404, None), FAIL),
    "unexpected-2xx-body": (html_page, WAIT),  # a proxy's maintenance page: retried like a 5xx
}
#: The availability checks read 1002 and 1006 as what a date is (not yet, not covered), not as errors.
STATUS_ONLY = {"400-no-imagery-1002", "400-not-covered-1006"}
SCRIPTED = [
    (sensor, kind) for sensor in SENSORS for kind in SCRIPTED_KINDS if sensor == "status" or kind not in STATUS_ONLY
]
#: How many answers of the error follow the first check: a waited-out kind clears, a failing one persists.
WAITED_ANSWERS = 3
MESSAGES = {
    "status": f"ClearSKY order {GUID}: [<request>",
    "availability": "ClearSKY availability check failed: [<request>",
}


@pytest.mark.parametrize(("sensor", "kind"), SCRIPTED)
def test_errors_met_while_waiting_end_alike(
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    reschedule_start_date_parsed: None,
    tmp_path: Path,
    sensor: str,
    kind: str,
) -> None:
    error_answer, policy = SCRIPTED_KINDS[kind]
    answers: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        answers.append(1)
        cleared = policy == WAIT and len(answers) > 1 + WAITED_ANSWERS
        if len(answers) > 1 and not cleared:
            return error_answer()
        if sensor == "status":
            return orders("Completed" if cleared else "Preparing")
        return imagery(request, ready=cleared)

    original = ClearSkyHook.__init__

    def scripted(self: ClearSkyHook, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("transport", httpx.MockTransport(answer))
        kwargs.setdefault("async_transport", httpx.MockTransport(answer))
        original(self, *args, **kwargs)

    monkeypatch.setattr(ClearSkyHook, "__init__", scripted)
    connection = {
        "conn_type": "clearsky",
        "host": "http://127.0.0.1:9",  # never reached: every request goes to the scripted transport
        "password": "scripted-key",
        "extra": {"backoff_initial": 0, "backoff_max": 0, "max_retries": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps(connection))
    outcomes = run_modes(write_dag, tmp_path, sensor, kind, lambda: GUID, answers.clear)
    assert_same_everywhere(outcomes, policy)
    if policy == FAIL and not AIRFLOW_30:
        assert outcomes["poke"][2][0]["message"].startswith(MESSAGES[sensor])
