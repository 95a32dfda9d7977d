"""ClearSkyImageAvailabilitySensor against the emulator: imagery appears as the emulated clock moves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.sensors._base import ClearSkyWaitFailed
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.triggers.availability import AvailabilitySpec, ClearSkyImageAvailabilityTrigger

from .conftest import FIELD, UTC, place_order, rows, task_instance, xcom

pytestmark = pytest.mark.integration

AVAILABLE = "/api/satelliteimages/process/composite/available"
SEARCH = "/api/satelliteimages/search/available"
DAY = 86400.0
FIELD_GEOJSON = {
    "type": "Feature",
    "properties": {},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[8.61, 50.11], [8.64, 50.11], [8.64, 50.14], [8.61, 50.14], [8.61, 50.11]]],
    },
}


def sensor(**kwargs: Any) -> ClearSkyImageAvailabilitySensor:
    options: dict[str, Any] = {
        "task_id": "dates",
        "wkt": FIELD,
        "poke_interval": 0.1,
        "exponential_backoff": False,
        "timeout": 30,
        "deferrable": False,
    }
    return ClearSkyImageAvailabilitySensor(**{**options, **kwargs})


@pytest.fixture
def recurring(emu: EmulatorHandle) -> str:
    """2025-06-02 00:00: a recurring weekly order from June 1st; 06-01 is produced at 06:00, 06-08 on 06-09."""
    emu.control.set_time(dt.datetime(2025, 6, 2, tzinfo=UTC))
    return place_order(date_from="2025-06-01", date_to=None)


def test_all_dates_wait_for_the_imagery_to_be_produced(emu: EmulatorHandle, recurring: str) -> None:
    emu.control.set_speed(2 * DAY)
    dates = sensor(dates=["2025-06-08", "2025-06-01"]).execute({})
    assert dates == ["2025-06-01", "2025-06-08"]
    assert emu.control.now() > dt.datetime(2025, 6, 9, 6, tzinfo=UTC)
    assert emu.control.request_count(AVAILABLE) >= 4  # it really waited


def test_any_date_returns_the_first_ready(emu: EmulatorHandle, recurring: str) -> None:
    emu.control.set_speed(DAY / 4)
    dates = sensor(dates="2025-06-01,2025-06-08", ready_when="any").execute({})
    assert dates == ["2025-06-01"]


def test_window_of_the_month_returns_its_image_dates(emu: EmulatorHandle, recurring: str) -> None:
    emu.control.set_speed(2 * DAY)
    dates = sensor(date_from="2025-06-01", date_to="2025-06-10", wkt=None, geojson=json.dumps(FIELD_GEOJSON)).execute(
        {}
    )
    assert dates == ["2025-06-01", "2025-06-08"]
    assert emu.control.request_count(SEARCH) >= 2  # after the first pass, discovery is one search per poke


def test_expired_dates_fail_fast(emu: EmulatorHandle) -> None:
    place_order(storage_months=1)  # June imagery kept until 1 August
    emu.control.set_time(dt.datetime(2025, 8, 5, tzinfo=UTC))
    with pytest.raises(ClearSkyWaitFailed, match=r"2025-06-08: the imagery is outside its storage period"):
        sensor(dates=["2025-06-08"], skip_on_timeout=True).execute({})
    with pytest.raises(ClearSkyWaitFailed, match=r"2025-06-01"):
        sensor(date_from="2025-06-01", date_to="2025-06-30").execute({})


def test_dates_no_order_covers_or_schedules_fail_fast(emu: EmulatorHandle) -> None:
    with pytest.raises(ClearSkyWaitFailed, match="no order covers the area"):
        sensor(dates=["2025-06-08"]).execute({})
    with pytest.raises(ClearSkyWaitFailed, match="no order covers the area"):
        sensor(date_from="2025-06-01", date_to="2025-06-30").execute({})
    place_order()
    with pytest.raises(ClearSkyWaitFailed, match="2025-06-03: no order covering the area produces an image"):
        sensor(dates=["2025-06-01", "2025-06-03"]).execute({})
    # a window with no image date at all (the weekly order has none from 06-02 to 06-07)
    with pytest.raises(ClearSkyWaitFailed, match="produces an image in this window"):
        sensor(date_from="2025-06-02", date_to="2025-06-07").execute({})
    # other settings than the order's: no order of that model covers the area
    with pytest.raises(ClearSkyWaitFailed, match="no order covers"):
        sensor(dates=["2025-06-08"], satellite_constellations=["Sentinel1", "Sentinel2"], model="Stratus2Fast").execute(
            {}
        )


def test_timeout_and_soft_fail(emu: EmulatorHandle, recurring: str) -> None:
    with pytest.raises(AirflowSensorTimeout):
        sensor(dates=["2025-06-08"], timeout=0.3).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(dates=["2025-06-08"], timeout=0.3, soft_fail=True).execute({})


def test_transient_faults_are_waited_out(emu: EmulatorHandle, recurring: str) -> None:
    emu.control.add_fault("502", path=AVAILABLE, times=4)
    emu.control.set_speed(DAY / 2)
    assert sensor(dates=["2025-06-01"]).execute({}) == ["2025-06-01"]
    assert emu.control.request_count(AVAILABLE, status=502) == 4


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"wkt": "POLYGON ((1 2, 3"}, "wkt is not valid WKT"),
        ({"wkt": "POINT (8.6 50.1)"}, "wkt is a Point"),
        ({"dates": ["2025-13-01"]}, "dates: '2025-13-01' is not a date"),
        ({"dates": []}, "dates is empty"),
        ({"dates": ["2025-06-01"], "epsg": "x"}, "invalid availability settings"),
        ({"dates": ["2025-06-01"], "bands": ""}, "Bandnames"),
        ({"date_from": "2025-06-30", "date_to": "2025-06-01", "dates": None}, "before date_from"),
    ],
)
def test_bad_input_fails_before_any_request(emu: EmulatorHandle, kwargs: dict[str, Any], words: str) -> None:
    options = {"dates": ["2025-06-01"], **kwargs}
    with pytest.raises(AirflowFailException, match=words):
        sensor(**options).execute({})
    assert emu.control.request_count() == 0


def test_bad_arguments_at_construction() -> None:
    with pytest.raises(ValueError, match="ready_when"):
        sensor(dates=["2025-06-01"], ready_when="most")
    with pytest.raises(ValueError, match="not both"):
        sensor(dates=["2025-06-01"], date_from="2025-06-01", date_to="2025-06-30")
    with pytest.raises(ValueError, match="give dates"):
        sensor(date_from="2025-06-01")
    with pytest.raises(ValueError, match="exactly one of wkt or geojson"):
        sensor(dates=["2025-06-01"], geojson=FIELD_GEOJSON)


@pytest.mark.parametrize(
    ("old", "value", "new", "attribute"),
    [
        ("aoi", FIELD, "wkt", "wkt"),
        ("aoi", "field.geojson", "geojson", "geojson"),
        ("bandnames", "rgb", "bands", "bands"),
        ("epsg_projection", 4326, "epsg", "epsg"),
        ("utm_data_selection_mode", "single_utm", "utm_mode", "utm_mode"),
    ],
)
def test_old_argument_names_work_for_one_release_with_a_warning(old: str, value: Any, new: str, attribute: str) -> None:
    options: dict[str, Any] = {"task_id": "dates", "dates": ["2025-06-01"]}
    if old != "aoi":
        options["wkt"] = FIELD
    with pytest.warns(DeprecationWarning, match=f"{old}= is deprecated .* use {new}= instead"):
        task = ClearSkyImageAvailabilitySensor(**options, **{old: value})
    assert getattr(task, attribute) == value


def test_deferrable_hands_over_a_primitive_spec(emu: EmulatorHandle, recurring: str) -> None:
    from airflow_provider_clearsky._compat import TaskDeferred

    task = sensor(date_from="2025-06-01", date_to="2025-06-30", deferrable=True, allow_partial=True)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ClearSkyImageAvailabilityTrigger)
    _, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    spec = AvailabilitySpec.from_json(kwargs["spec"])
    assert (spec.date_from, spec.date_to, spec.allow_partial) == (dt.date(2025, 6, 1), dt.date(2025, 6, 30), True)
    assert sensor(dates=["2025-06-01"]).execute_complete({}, {"status": "success", "dates": ["2025-06-01"]}) == [
        "2025-06-01"
    ]


DAG_SOURCE = """
import datetime as dt
from airflow.sdk import DAG
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), template_searchpath={folder!r}) as dag:
    ClearSkyImageAvailabilitySensor(
        task_id="dates",
        geojson="field.geojson",
        date_from="{{{{ dag_run.conf['month'] }}}}-01",
        date_to="{{{{ dag_run.conf['month'] }}}}-10",
        mode="{mode}",
        deferrable={deferrable},
        poke_interval=0.3,
        exponential_backoff=False,
        timeout=60,
    )
"""


@pytest.mark.dag
@pytest.mark.parametrize(("mode", "deferrable"), [("reschedule", False), ("poke", True)])
def test_availability_sensor_in_a_dag_run(
    write_dag: Any,
    emu: EmulatorHandle,
    recurring: str,
    reschedule_start_date_parsed: None,
    tmp_path: Path,
    mode: str,
    deferrable: bool,
) -> None:
    (tmp_path / "field.geojson").write_text(json.dumps(FIELD_GEOJSON))  # read through template_ext
    dag_id = f"availability_{mode}_{deferrable}".lower()
    dag = write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, folder=str(tmp_path), mode=mode, deferrable=deferrable))
    emu.control.set_speed(DAY)
    run = dag.test(run_conf={"month": "2025-06"})
    assert run.state == "success"
    assert xcom(dag_id, run.run_id, "dates") == [["2025-06-01", "2025-06-08"]]
    from airflow.models.taskreschedule import TaskReschedule

    ti = task_instance(dag_id, run.run_id, "dates")
    assert (len([r for r in rows(TaskReschedule) if r.ti_id == ti.id]) > 0) == (mode == "reschedule")


def test_deferring_hands_the_first_check_to_the_trigger(emu: EmulatorHandle, recurring: str) -> None:
    from airflow_provider_clearsky._compat import TaskDeferred

    emu.control.set_time(dt.datetime(2025, 6, 2, 7, tzinfo=UTC))  # 06-01 produced at 06:00, 06-08 on 06-09
    waiting = sensor(dates=["2025-06-01", "2025-06-08"], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, ClearSkyImageAvailabilityTrigger)
    # 06-01 is produced, 06-08 not yet: the trigger starts from that, so its first poll asks about 06-08 only.
    assert trigger.serialize()[1]["known_states"] == {"2025-06-01": "ready", "2025-06-08": "pending"}
