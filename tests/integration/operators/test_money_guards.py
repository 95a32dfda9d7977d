"""Money guards no template can switch off (issue 17: D2, D5, D6, D8, D10): each bad value fails the task
before any request, naming the argument, against the emulator over HTTP on 127.0.0.1 (its request log and
charges are the evidence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.exceptions import InvalidRequestError
from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
from airflow_provider_clearsky.operators.download import ClearSkyDownloadCompositeOperator
from airflow_provider_clearsky.operators.orders import ClearSkyCreateOrderOperator, ClearSkyEstimateOrderOperator
from tests.integration.operators.test_download import DATES, FIELD, place_order, set_connection, settled_log
from tests.support.orders_support import AOI_WKT, CONSTELLATIONS, context

pytestmark = pytest.mark.integration

ORDER = {
    "wkt": AOI_WKT,
    "model": "Stratus2",
    "satellite_constellations": CONSTELLATIONS,
    "image_frequency": 7,
    "date_from": "2025-06-01",
    "date_to": "2025-06-30",
}
ANTIMERIDIAN = "POLYGON ((179.9 10, -179.9 10, -179.9 10.1, 179.9 10.1, 179.9 10))"


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    set_connection(monkeypatch, clearsky_emulator)
    settled_log(clearsky_emulator)  # an earlier test's last request is logged late: start from an empty log
    clearsky_emulator.control.reset()
    return clearsky_emulator


def no_request_and_no_charge(emu: EmulatorHandle) -> None:
    assert settled_log(emu) == []
    assert emu.control.charges() == [] and emu.control.order_count() == 0


def create(**overrides: Any) -> ClearSkyCreateOrderOperator:
    return ClearSkyCreateOrderOperator(task_id="create", **{"max_cost": 100.0, **ORDER, **overrides})


# ------------------------------------------------------------------------------------------ D2 budgets


@pytest.mark.parametrize("rendered", ["None", "", " none ", "null"])
@pytest.mark.parametrize("argument", ["max_cost", "max_next_month_cost"])
def test_a_budget_rendered_to_nothing_is_refused_before_the_estimate(
    emu: EmulatorHandle, argument: str, rendered: str
) -> None:
    op = create(**{argument: rendered, "date_to": None})
    with pytest.raises(AirflowFailException, match=argument):
        op.execute(context())
    no_request_and_no_charge(emu)


def test_only_a_literal_none_means_no_limit(emu: EmulatorHandle) -> None:
    guid = create(max_cost=None, max_next_month_cost=None).execute(context())
    assert [order["TaskOrderGuid"] for order in emu.control.orders()] == [guid]


@pytest.mark.parametrize("rendered", ["None", "", "null"])
@pytest.mark.parametrize("cls", [ClearSkyEstimateOrderOperator, create])
def test_date_to_rendered_to_nothing_never_makes_an_order_recurring(
    emu: EmulatorHandle, cls: Any, rendered: str
) -> None:
    kwargs = {**ORDER, "date_to": rendered}
    op = cls(**kwargs) if cls is create else cls(task_id="estimate", **kwargs)
    with pytest.raises(AirflowFailException, match="date_to"):
        op.execute(context())
    no_request_and_no_charge(emu)


@pytest.mark.parametrize("rendered", ["None", ""])
def test_recurring_is_asked_for_explicitly(emu: EmulatorHandle, rendered: str) -> None:
    summary = ClearSkyEstimateOrderOperator(
        task_id="estimate", **{**ORDER, "date_to": rendered, "recurring": "True"}
    ).execute(context())
    assert summary["recurring"] is True and summary["date_to"] is None


@pytest.mark.parametrize(
    ("recurring", "date_to", "message"),
    [
        ("True", "2025-06-30", "contradicts recurring=True"),
        (False, "None", "needs the order's last day"),
        ("None", None, "recurring"),
    ],
)
def test_recurring_and_date_to_must_agree(emu: EmulatorHandle, recurring: Any, date_to: Any, message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        create(recurring=recurring, date_to=date_to).execute(context())
    no_request_and_no_charge(emu)


# ------------------------------------------------------------------------------------------ D5 antimeridian


@pytest.mark.parametrize("cls", [ClearSkyEstimateOrderOperator, create])
def test_a_polygon_across_the_antimeridian_is_refused_with_the_hint_to_split_it(emu: EmulatorHandle, cls: Any) -> None:
    kwargs = {**ORDER, "wkt": ANTIMERIDIAN}
    op = cls(**kwargs) if cls is create else cls(task_id="estimate", **kwargs)
    with pytest.raises(AirflowFailException, match=r"wkt.*antimeridian.*MULTIPOLYGON"):
        op.execute(context())
    no_request_and_no_charge(emu)


def test_a_split_antimeridian_area_is_accepted() -> None:
    from airflow_provider_clearsky.models.geometry import order_wkt

    split = (
        "MULTIPOLYGON (((179.9 10, 180 10, 180 10.1, 179.9 10.1, 179.9 10)),"
        " ((-180 10, -179.9 10, -179.9 10.1, -180 10.1, -180 10)))"
    )
    assert order_wkt(split).startswith("GEOMETRYCOLLECTION (MULTIPOLYGON")


def test_a_download_across_the_antimeridian_is_refused(emu: EmulatorHandle, tmp_path: Path) -> None:
    op = ClearSkyDownloadCompositeOperator(task_id="d", wkt=ANTIMERIDIAN, date=DATES[0], destination=str(tmp_path))
    with pytest.raises(AirflowFailException, match="antimeridian"):
        op.execute({})
    no_request_and_no_charge(emu)


# ------------------------------------------------------------------------------------------ D6 destination


@pytest.mark.parametrize("destination", ["None", " none ", "{tmp}/None/imagery", "s3://bucket/None", "{{ ds }}"])
def test_a_destination_rendered_from_nothing_is_refused_before_paying(
    emu: EmulatorHandle, tmp_path: Path, destination: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    place_order(emu)
    monkeypatch.chdir(tmp_path)
    charges = len(emu.control.charges("download"))
    requests = len(emu.control.request_log())
    op = ClearSkyDownloadCompositeOperator(
        task_id="d", wkt=FIELD, date=DATES[0], bands="rgb", destination=destination.replace("{tmp}", str(tmp_path))
    )
    with pytest.raises(AirflowFailException, match="destination"):
        op.execute({})
    assert len(emu.control.request_log()) == requests
    assert len(emu.control.charges("download")) == charges
    assert not (tmp_path / "None").exists()


@pytest.mark.parametrize("guid", ["None", "", "null", "{{ ti.xcom_pull('create') }}"])
def test_an_order_guid_rendered_from_nothing_is_refused_before_paying(
    emu: EmulatorHandle, tmp_path: Path, guid: str
) -> None:
    place_order(emu)
    requests = len(emu.control.request_log())
    op = ClearSkyDownloadCompositeOperator(
        task_id="d", wkt=FIELD, date=DATES[0], bands="rgb", destination=str(tmp_path), order_guid=guid
    )
    with pytest.raises(AirflowFailException, match="order_guid"):
        op.execute({})
    assert len(emu.control.request_log()) == requests
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ D8 API key


@pytest.mark.parametrize("key", ["k7q\nzx-secret", "k7q\rzx-secret", "k7q\x00zx-secret", "k7qé-zx-secret"])
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(
    emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", json.dumps({**emu.connection_dict(), "password": key}))
    hook = ClearSkyHook()
    ok, message = hook.test_connection()
    assert not ok and "HTTP header" in message
    for shown in (message, repr(message)):
        assert "secret" not in shown and "k7q" not in shown
    with pytest.raises(InvalidRequestError, match="HTTP header") as caught:
        ClearSkyHook().get_account_info()
    assert "secret" not in str(caught.value) and "secret" not in repr(caught.value)
    assert settled_log(emu) == []


# ------------------------------------------------------------------------------------------ D10 constellations


LIST_TEXT = ["['Sentinel1', 'Sentinel2', 'Landsat89']", '["Sentinel1", "Sentinel2", "Landsat89"]']


@pytest.mark.parametrize("text", LIST_TEXT)
def test_constellations_rendered_as_list_text_are_parsed(emu: EmulatorHandle, text: str) -> None:
    summary = ClearSkyEstimateOrderOperator(task_id="estimate", **{**ORDER, "satellite_constellations": text}).execute(
        context()
    )
    assert summary["satellite_constellations"] == CONSTELLATIONS


@pytest.mark.parametrize("text", LIST_TEXT)
def test_a_download_parses_constellations_rendered_as_list_text(emu: EmulatorHandle, tmp_path: Path, text: str) -> None:
    place_order(emu)
    op = ClearSkyDownloadCompositeOperator(
        task_id="d", wkt=FIELD, date=DATES[0], bands="rgb", destination=str(tmp_path), satellite_constellations=text
    )
    uri = op.execute({})
    assert uri.startswith("file://")


@pytest.mark.parametrize("text", ["['Sentinel1', ", "[Sentinel1]", "None", "Sentinel-2 'L2A'"])
def test_unreadable_constellations_are_refused_before_any_request(emu: EmulatorHandle, text: str) -> None:
    with pytest.raises(AirflowFailException, match="satellite_constellations"):
        create(satellite_constellations=text).execute(context())
    no_request_and_no_charge(emu)
