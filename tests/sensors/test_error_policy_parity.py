"""One error policy: every error kind ends the order-status sensor alike in poke, reschedule and deferrable mode.

Each kind runs through a whole ``dag.test()`` run of ``ClearSkyOrderStatusSensor`` (``retries=1``) per mode,
the deferrable one with its trigger run to its event. The outcome (final state, number of tries, the message of
each failed try) must be the same in every mode and must be what ``ERROR_POLICIES`` says for the kind.

Errors the emulator produces run over real HTTP (fault injection, a wrong key, an unknown order). The rest, and
any error that must start after the first check (so the deferrable mode meets it in the trigger, not in its
first check on the worker), come from a scripted ``httpx.MockTransport`` API: the first request answers the
order in Preparing, the following ones the error.

The messages are compared with the request's endpoint masked: the trigger lists the connection's orders (one
request shared by every trigger), the worker's check reads the order's details, by design.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

from .conftest import place_order, set_connection, task_instance, xcom

pytestmark = [pytest.mark.integration, pytest.mark.dag]

HOUR = 3600.0
GUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
WAIT, FAIL = "wait", "fail"  # ErrorPolicy's values (spelt out, so this test also runs on code without it)
MODES = {"poke": ("poke", False), "reschedule": ("reschedule", False), "deferrable": ("poke", True)}

DAG_SOURCE = """
import datetime as dt
import json
from airflow.sdk import DAG
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor

def record(context):
    error = context.get("exception")
    with open({outcomes!r}, "a") as handle:
        handle.write(json.dumps({{"try": context["ti"].try_number, "error": type(error).__name__,
                                  "message": str(error)}}) + "\\n")

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
    ClearSkyOrderStatusSensor(
        task_id="wait",
        order_guid="{{{{ dag_run.conf['order_guid'] }}}}",
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


def run_modes(write_dag: Any, tmp_path: Path, kind: str, guid: Callable[[], str], arm: Callable[[], None]) -> dict:
    """Run the sensor's DAG once per mode; return each mode's (state, tries, failed tries, XCom)."""
    outcomes: dict[str, Any] = {}
    for name, (mode, deferrable) in MODES.items():
        dag_id = f"error_parity_{kind}_{name}".replace("-", "_")
        log = tmp_path / f"{dag_id}.jsonl"
        dag = write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, mode=mode, deferrable=deferrable, outcomes=str(log)))
        conf = {"order_guid": guid()}
        arm()
        run = dag.test(run_conf=conf)
        ti = task_instance(dag_id, run.run_id, "wait")
        failed = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        for entry in failed:
            entry["message"] = re.sub(r"\[(GET|POST) /api/[^,\]]*", "[<request>", entry["message"])
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
        assert (state, tries, [entry["error"] for entry in failed]) == ("failed", 1, ["AirflowFailException"])


# ------------------------------------------------------------------------------------ over the emulator

#: Kinds the emulator produces: fault injection (more firings than one check's attempts, so the deferrable
#: mode's trigger meets them too), or an account error met at the first check.
EMULATOR_KINDS = {"429": "429", "503": "503", "reset": "reset"}


@pytest.mark.parametrize("fault", list(EMULATOR_KINDS))
def test_transient_faults_are_waited_out_alike(
    write_dag: Any, emu: EmulatorHandle, reschedule_start_date_parsed: None, tmp_path: Path, fault: str
) -> None:
    def arm() -> None:
        emu.control.clear_faults()
        emu.control.add_fault(EMULATOR_KINDS[fault], path="/api/tasking/orders*", times=4)
        emu.control.set_speed(2 * HOUR)  # the order completes ~2.5 emulated hours after acceptance

    def new_order() -> str:
        emu.control.set_speed(0)
        return place_order()

    outcomes = run_modes(write_dag, tmp_path, fault, new_order, arm)
    assert_same_everywhere({name: (*outcome[:3], None) for name, outcome in outcomes.items()}, WAIT)
    for *_, (record,) in outcomes.values():
        assert record["OrderingProcessStatus"] == "Completed"
    assert all(rule["fired"] == 4 for rule in emu.control.faults())


def test_wrong_key_and_unknown_order_fail_alike(
    write_dag: Any,
    emu: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    reschedule_start_date_parsed: None,
    tmp_path: Path,
) -> None:
    outcomes = run_modes(write_dag, tmp_path, "unknown", lambda: GUID, lambda: None)
    assert_same_everywhere(outcomes, FAIL)
    assert "HTTP 404" in outcomes["poke"][2][0]["message"]
    guid = place_order()
    set_connection(monkeypatch, emu, api_key="not-a-key-of-the-emulator")
    outcomes = run_modes(write_dag, tmp_path, "wrong_key", lambda: guid, lambda: None)
    assert_same_everywhere(outcomes, FAIL)
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


#: Kinds only a scripted API gives mid-wait: the answer after the first check, and what the wait must do.
SCRIPTED_KINDS: dict[str, tuple[Callable[[], httpx.Response], str]] = {
    "400": (lambda: refusal(400, None), FAIL),
    "400-validation-992": (lambda: refusal(400, 992), FAIL),
    "400-credits-994": (lambda: refusal(400, 994), FAIL),
    "400-no-imagery-1002": (lambda: refusal(400, 1002), FAIL),
    "400-not-covered-1006": (lambda: refusal(400, 1006), FAIL),
    "401": (lambda: refusal(401, None), FAIL),
    "403": (lambda: refusal(403, None), FAIL),
    "404": (lambda: refusal(404, None), FAIL),
    "unexpected-2xx-body": (html_page, WAIT),  # a proxy's maintenance page: retried like a 5xx
}
#: How many answers of the error follow the first check: a waited-out kind clears, a failing one persists.
WAITED_ANSWERS = 3


@pytest.mark.parametrize("kind", list(SCRIPTED_KINDS))
def test_errors_met_while_waiting_end_alike(
    write_dag: Any,
    clearsky_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    reschedule_start_date_parsed: None,
    tmp_path: Path,
    kind: str,
) -> None:
    error_answer, policy = SCRIPTED_KINDS[kind]
    answers: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        answers.append(1)
        if len(answers) == 1:
            return orders("Preparing")
        if policy == WAIT and len(answers) > 1 + WAITED_ANSWERS:
            return orders("Completed")
        return error_answer()

    def arm() -> None:
        answers.clear()

    original = ClearSkyHook.__init__

    def scripted(self: ClearSkyHook, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("transport", httpx.MockTransport(answer))
        kwargs.setdefault("async_transport", httpx.MockTransport(answer))
        original(self, *args, **kwargs)

    monkeypatch.setattr(ClearSkyHook, "__init__", scripted)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLEARSKY_DEFAULT",
        json.dumps(
            {
                "conn_type": "clearsky",
                "host": "http://127.0.0.1:9",
                "password": "k",
                "extra": {"backoff_initial": 0, "backoff_max": 0, "max_retries": 0},
            }
        ),
    )
    outcomes = run_modes(write_dag, tmp_path, kind, lambda: GUID, arm)
    assert_same_everywhere(outcomes, policy)
    if policy == WAIT:
        return
    assert f"ClearSKY order {GUID}: [<request>" in outcomes["poke"][2][0]["message"]
