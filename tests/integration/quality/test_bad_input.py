"""Bad input, property-based: every operator's and sensor's arguments, valid and invalid values mixed.

For each generated set of arguments, against the emulator over HTTP on 127.0.0.1:

* if every value is one the provider accepts, the task **runs**: it reaches the API (the emulator logs at
  least one request) or it completes; a failure then is a provider or Airflow error, never a bare one;
* if any value is invalid, the task **fails before any HTTP request** (the emulator's log stays empty), in
  ``__init__`` (a ``ValueError``/``TypeError`` at DAG parse time) or in ``execute`` (an
  ``AirflowFailException``, so Airflow does not retry it), with a message that names one of the invalid
  arguments.

Values the API alone can judge (model and constellation names, EPSG codes, target statuses) count as valid
here: the provider passes them on. Gaps found (and since closed) are pinned at the end by name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_clearsky._compat import AirflowException, AirflowFailException
from airflow_provider_clearsky.emulator.handle import EmulatorHandle
from airflow_provider_clearsky.exceptions import ClearSkyError
from airflow_provider_clearsky.operators.download import (
    ClearSkyDownloadCompositeOperator,
    ClearSkyDownloadTileOperator,
)
from airflow_provider_clearsky.operators.orders import (
    ClearSkyCancelOrderOperator,
    ClearSkyCreateOrderOperator,
    ClearSkyEstimateOrderOperator,
    ClearSkyOptimizeTilesOperator,
    ClearSkySearchTilesOperator,
)
from airflow_provider_clearsky.sensors.availability import ClearSkyImageAvailabilitySensor
from airflow_provider_clearsky.sensors.order_status import ClearSkyOrderStatusSensor
from tests.integration.quality import _matrix as matrix
from tests.support.orders_support import DictStore, FakeTI, context

pytestmark = pytest.mark.integration

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OMIT: Any = object()  # the argument is not passed at all

FIELD = matrix.FIELD
FIELD_GEOJSON = {
    "type": "Polygon",
    "coordinates": [[[8.61, 50.11], [8.64, 50.11], [8.64, 50.14], [8.61, 50.14], [8.61, 50.11]]],
}
ORDER_AOI = "POLYGON ((12.50 55.60, 12.56 55.60, 12.56 55.64, 12.50 55.64, 12.50 55.60))"
TEMPLATED = st.sampled_from(["{{ ds }}", "{{ params.value }}", "{{ ti.xcom_pull(task_ids='x') }}", "{% if x %}"])
GUIDS = st.uuids(version=4).map(str)
BAD_GUIDS = st.sampled_from(["nope", "1234", "c3528462-02fc-4301-bb37", "{{ ti.xcom_pull('create') }}", "g" * 36])

# ----------------------------------------------------------------------------------------------- values

BAD_WKT = st.one_of(
    st.sampled_from(
        [
            "garbage",
            "POLYGON ((0 0, 1 1))",  # not a ring
            "POINT (8.6 50.1)",  # not an area
            "LINESTRING (8.6 50.1, 8.7 50.2)",
            "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))",  # self-intersecting bow tie
            "POLYGON ((200 0, 201 0, 201 1, 200 1, 200 0))",  # outside lon/lat range
            "POLYGON EMPTY",
            "{{ params.aoi }}",
        ]
    ),
    st.integers(),
)
BAD_GEOJSON = st.sampled_from(
    [
        {"type": "Point", "coordinates": [8.6, 50.1]},
        {"type": "Polygon", "coordinates": "x"},
        {"type": "Polygon"},
        {"type": "Nope", "coordinates": []},
        "{not json",
        "{{ params.aoi }}",
        42,
        [],
    ]
)


def area(
    *, geojson_name: str = "geojson"
) -> tuple[st.SearchStrategy[dict[str, Any]], st.SearchStrategy[dict[str, Any]]]:
    """Valid and invalid areas as keyword sets: exactly one of wkt/geojson, or a bad one, or both, or none."""
    valid = st.one_of(
        st.sampled_from([{"wkt": FIELD}, {"wkt": f"  {FIELD}\n"}, {geojson_name: FIELD_GEOJSON}]),
        st.just({geojson_name: {"type": "Feature", "properties": {}, "geometry": FIELD_GEOJSON}}),
    )
    invalid = st.one_of(
        BAD_WKT.map(lambda v: {"wkt": v}),
        BAD_GEOJSON.map(lambda v: {geojson_name: v}),
        st.just({"wkt": FIELD, geojson_name: FIELD_GEOJSON}),  # two areas
        st.just({}),  # no area
    )
    return valid, invalid


@dataclasses.dataclass
class Arg:
    valid: st.SearchStrategy[Any]
    invalid: st.SearchStrategy[Any] | None = None
    #: spellings a message may use for this argument (default: the name and its API PascalCase)
    names: tuple[str, ...] = ()
    #: the strategy yields a dict of keyword arguments (an area), not one value
    merge: bool = False


@dataclasses.dataclass
class Target:
    """An operator or sensor under test: its fixed arguments, the arguments to vary, and how to run it."""

    cls: Callable[..., Any]
    args: dict[str, Arg]
    fixed: dict[str, Any]
    run: Callable[[Any, Path], Any]

    def names_of(self, arg: str) -> tuple[str, ...]:
        given_names = self.args[arg].names
        pascal = "".join(part.capitalize() for part in arg.split("_"))
        return given_names or (arg, pascal)


def _execute(op: Any, tmp: Path) -> Any:
    return op.execute(context(FakeTI(), DictStore()))


# --- the ordering operators

DATES_FROM_OK = st.sampled_from(["2025-01-01", "2025-05-01", "2025-06-01", dt.date(2025, 3, 1), "2025-06-01T00:00:00Z"])
DATES_BAD = st.one_of(
    st.sampled_from(["2025-13-01", "2025-02-30", "01/06/2025", "yesterday", "2025-6-1", 20250601, 3.5, []]),
    TEMPLATED,
)
ORDER_AREA_OK = st.sampled_from(
    [
        {"wkt": ORDER_AOI},
        {"geojson": {"type": "Polygon", "coordinates": [[[12.5, 55.6], [12.56, 55.6], [12.56, 55.64], [12.5, 55.6]]]}},
        {"tile_guids": [str(uuid.UUID(int=7, version=4))]},
        {"minitile_guids": f"['{uuid.UUID(int=9, version=4)}']"},  # as rendered from an XCom
    ]
)
ORDER_AREA_BAD = st.one_of(
    BAD_WKT.map(lambda v: {"wkt": v}),
    BAD_GEOJSON.map(lambda v: {"geojson": v}),
    BAD_GUIDS.map(lambda v: {"tile_guids": [v]}),
    st.sampled_from(
        [
            {"minitile_guids": "[not, a list"},
            {"tile_guids": 5},
            {},
            {"wkt": ORDER_AOI, "tile_guids": [str(uuid.UUID(int=7, version=4))]},
        ]
    ),
)
ORDER_AREA_NAMES = (
    "wkt",
    "Wkt",
    "geojson",
    "GeoJson",
    "geo_json",
    "tile_guids",
    "TileGuids",
    "minitile_guids",
    "MiniTileGuids",
    "area",
)
MODEL_OK = st.one_of(
    st.sampled_from(["Stratus2", " Stratus3 ", "Stratus2Fast"]),
    st.sampled_from(["NoSuchModel"]),  # unknown to the provider: the API judges it
    TEMPLATED,
)
# A display name of a known model is refused before any request (the docs: API values only).
MODEL_BAD = st.sampled_from(["", "   ", 7, None, ["Stratus2"], "Stratus-2", "stratus 2"])
CONSTELLATIONS_OK = st.sampled_from([matrix.CONSTELLATIONS, "Sentinel1, Sentinel2, Landsat89", ("Sentinel2",)])
CONSTELLATIONS_BAD = st.sampled_from(
    [[], "", 5, [""], [None], [" "], {"Sentinel2": True}, ["Sentinel1", "Sentinel-2", "Landsat89"], "sentinel 2"]
)
SMALL_COUNT_BAD = st.one_of(st.sampled_from([0, -1, "x", 1.5, True, "", None]), TEMPLATED)

ORDER_ARGS: dict[str, Arg] = {
    "area": Arg(ORDER_AREA_OK, ORDER_AREA_BAD, ORDER_AREA_NAMES, merge=True),
    "model": Arg(MODEL_OK, MODEL_BAD),
    "satellite_constellations": Arg(CONSTELLATIONS_OK, CONSTELLATIONS_BAD),
    "date_from": Arg(
        DATES_FROM_OK, st.one_of(DATES_BAD, st.sampled_from(["2025-06-15", None])), ("date_from", r"\bFrom\b")
    ),
    "date_to": Arg(
        st.sampled_from([None, "2025-06-30", OMIT]),
        # malformed, before every valid date_from, or a template that rendered nothing (never "recurring")
        st.one_of(DATES_BAD, st.sampled_from(["2024-12-31", "", "None"])),
        ("date_to", r"\bTo\b"),
    ),
    "reference_date": Arg(st.sampled_from([None, "2025-01-01", OMIT]), DATES_BAD.filter(lambda v: v != [])),
    "image_frequency": Arg(
        st.one_of(st.integers(1, 7), st.sampled_from(["3", " 7 "])),
        st.one_of(st.sampled_from([0, 8, -1, 3.5, "x", True]), TEMPLATED),
    ),
    "storage_months": Arg(st.one_of(st.integers(1, 6), st.just("2")), SMALL_COUNT_BAD),
    "api_requests": Arg(st.one_of(st.integers(1, 5), st.just("3")), SMALL_COUNT_BAD),
}
CREATE_ARGS: dict[str, Arg] = {
    **ORDER_ARGS,
    "max_cost": Arg(
        st.sampled_from([1e6, "100000", None]),
        st.one_of(st.sampled_from(["lots", -1, float("nan"), [], "-5", "None", ""]), TEMPLATED),
    ),
    "max_next_month_cost": Arg(
        st.sampled_from([None, 1e6, OMIT]), st.sampled_from(["x", -5, float("nan"), "None", ""])
    ),
    "expect_image_dates": Arg(
        st.sampled_from([False, "false", "True", OMIT]), st.one_of(st.sampled_from(["maybe", 2.5, []]), TEMPLATED)
    ),
    "tile_deduplication": Arg(
        st.sampled_from([False, "false", OMIT]), st.one_of(st.sampled_from(["perhaps", 2.5]), TEMPLATED)
    ),
}


def _create(op: Any, tmp: Path) -> Any:
    op.outcome_timeout = 0.5
    return _execute(op, tmp)


# --- tiles and cancel

SEARCH_AREA_OK = st.one_of(
    area()[0],
    GUIDS.map(lambda g: {"tile_guids": [g]}),
    GUIDS.map(lambda g: {"minitile_guids": g}),
    GUIDS.map(lambda g: {"tile_guid_for_minitiles": g}),
)
SEARCH_AREA_BAD = st.one_of(
    area()[1],
    BAD_GUIDS.map(lambda g: {"tile_guids": [g]}),
    BAD_GUIDS.map(lambda g: {"tile_guid_for_minitiles": g}),
    GUIDS.map(lambda g: {"wkt": FIELD, "tile_guid_for_minitiles": g}),
)
SEARCH_NAMES = (
    "wkt",
    "Wkt",
    "geojson",
    "GeoJson",
    "tile_guids",
    "TileGuids",
    "minitile_guids",
    "MiniTileGuids",
    "tile_guid_for_minitiles",
    "TileGuidForMiniTiles",
    "exactly one",
)

# --- downloads

DOWNLOAD_ARGS: dict[str, Arg] = {
    "date": Arg(
        st.sampled_from(["2025-05-07", dt.date(2025, 5, 7), dt.datetime(2025, 5, 7, 6), "2025-05-07T00:00:00Z"]),
        st.one_of(st.sampled_from(["2025-02-30", "07/05/2025", "", "soon", 20250507, None, []]), TEMPLATED),
    ),
    "resolution": Arg(
        st.one_of(st.sampled_from([10, 20, 40, 80, 160, 320, 640, 1280]), st.just("20")),
        st.one_of(st.sampled_from([15, 0, -10, "ten", 10.5, True, None]), TEMPLATED),
    ),
    "epsg": Arg(
        st.sampled_from([4326, 47000, 32632, "4326", 3857]),
        st.one_of(st.sampled_from(["abc", -1, 0, 4326.5, True, None, ""]), TEMPLATED),
    ),
    "bands": Arg(
        st.sampled_from(["all", "rgb", "B8,B4,B3", ["B4", "B3"], "[B8_B4]", "B8, B4, [B8_B4]", " RGB "]),
        st.sampled_from(["", "  ", [], 5, None, "B99", "B8;B4", "red,green", "[B8-B4]"]),
    ),
    "data_type": Arg(st.sampled_from(["INT16", "uint8", OMIT]), st.sampled_from(["float", 16, "", None])),
    "pixel_selection": Arg(st.sampled_from(["intersect", "CONTAINED", OMIT]), st.sampled_from(["x", "", 1, None])),
    "utm_mode": Arg(
        st.sampled_from(["combined_utm", "SINGLE_UTM", "single_utm_fully_covered", OMIT]),
        st.sampled_from(["utm", "", 2, None]),
    ),
    "model": Arg(MODEL_OK, st.sampled_from(["", "   ", 7, ["Stratus2"], None])),
    "satellite_constellations": Arg(
        st.sampled_from([None, matrix.CONSTELLATIONS, "Sentinel1,Sentinel2,Landsat89"]),
        st.sampled_from([[], "", 5, "  ", [" "]]),
    ),
    "level": Arg(st.sampled_from([None, 1, 2, OMIT]), st.sampled_from([3, 0, "two", -1])),
    "harmonize": Arg(st.sampled_from([None, True, False, OMIT]), st.sampled_from(["maybe", 2.5, []])),
    "allow_partial": Arg(
        st.sampled_from([False, True, OMIT]), st.sampled_from(["perhaps", 2.5, [], "{{ params.partial }}"])
    ),
    "filename": Arg(
        st.sampled_from([None, "{date}_{model}_{key}.tif", "sub/{kind}.tif", OMIT]),
        st.sampled_from(["{nope}.tif", "../x.tif", "/", "{0}.tif", "a/../../b.tif"]),
    ),
    "verify_existing": Arg(st.sampled_from(["checksum", "size", OMIT]), st.sampled_from(["md5", "", None, 1])),
    "chunk_size": Arg(st.sampled_from([None, 65536, OMIT]), st.sampled_from([10, "big", -1, 4095, 1.5])),
    "upload_url": Arg(st.just(OMIT), st.sampled_from(["ftp://example.invalid/x", "file:///tmp/x", "not a url"])),
}
COMPOSITE_ARGS: dict[str, Arg] = {
    "area": Arg(*area(), names=("wkt", "geojson", "GeoJson", "Wkt", "area"), merge=True),
    **DOWNLOAD_ARGS,
    "max_processing_units": Arg(
        st.sampled_from([None, 1000, "1000", 0.5e6, OMIT]), st.sampled_from(["x", -1, "nan", [], "{{ params.units }}"])
    ),
}
TILE_ARGS: dict[str, Arg] = {
    "tiles": Arg(
        st.one_of(
            GUIDS.map(lambda g: {"tile_guid": g}),
            GUIDS.map(lambda g: {"mini_tile_guid": [g]}),
            GUIDS.map(lambda g: {"tile_guid": f"{g}, {g}"}),
        ),
        st.one_of(
            BAD_GUIDS.map(lambda g: {"tile_guid": g}),
            BAD_GUIDS.map(lambda g: {"mini_tile_guid": [g]}),
            st.sampled_from([{}, {"tile_guid": ""}, {"tile_guid": 5}]),
        ),
        ("tile_guid", "mini_tile_guid"),
        merge=True,
    ),
    **DOWNLOAD_ARGS,
    # several GUIDs give several files: a template must tell them apart
    "filename": Arg(
        st.sampled_from([None, "{guid}_{date}.tif", "{kind}/{key}.tif", OMIT]),
        st.sampled_from(["{nope}.tif", "../x.tif", "/", "{0}.tif"]),
    ),
}


OMIT_DEST = "<tmp>"  # replaced by the example's own folder


def _download(op: Any, tmp: Path) -> Any:
    if op.destination == OMIT_DEST:
        op.destination = str(tmp / "out")
    return op.execute({})


# --- sensors

SENSOR_FIXED = {"poke_interval": 0.01, "timeout": 2, "exponential_backoff": False, "deferrable": False}
STATUS_ARGS: dict[str, Arg] = {
    "order_guid": Arg(GUIDS, st.one_of(st.sampled_from(["", "   ", None]), BAD_GUIDS)),
    "target_statuses": Arg(
        st.sampled_from([None, ["Completed"], "Completed, UpToDate", '["Processing"]', OMIT]),
        st.sampled_from(["['unclosed", "[Completed"]),
    ),
}
AVAILABILITY_ARGS: dict[str, Arg] = {
    "wkt": Arg(
        st.sampled_from(
            [
                FIELD,
                FIELD_GEOJSON,
                {"type": "Feature", "properties": {}, "geometry": FIELD_GEOJSON},
                '{"type": "Polygon", "coordinates": [[[8.61, 50.11], [8.64, 50.11], [8.64, 50.14], [8.61, 50.11]]]}',
            ]
        ),
        st.one_of(BAD_WKT, BAD_GEOJSON),
    ),
    "dates": Arg(
        st.sampled_from([["2025-05-07"], "2025-05-07,2025-05-14", '["2025-05-07"]', [dt.date(2025, 5, 7)]]),
        st.one_of(st.sampled_from([["2025-05-37"], "07/05/2025", ["2025-5-7"], ["soon"], "[bad"]), TEMPLATED),
    ),
    "ready_when": Arg(st.sampled_from(["all", "any", OMIT]), st.sampled_from(["some", "", "ALL", None])),
    "model": Arg(st.sampled_from(["Stratus2", "NoSuchModel", OMIT]), st.sampled_from(["", "  ", 7])),
    "satellite_constellations": Arg(
        st.sampled_from([matrix.CONSTELLATIONS, "Sentinel1,Sentinel2,Landsat89", OMIT]),
        st.sampled_from([[], "", 5, [" "]]),
    ),
    # the sensor also takes the API's names (epsg_projection, bandnames, utm_data_selection_mode), and its
    # messages use them
    "epsg": Arg(
        st.sampled_from([4326, 47000, "32632", OMIT]),
        st.one_of(st.sampled_from([-1, 0, "abc", None, 1.5, True]), TEMPLATED),
        ("epsg", "EpsgProjection", "epsg_projection"),
    ),
    "bands": Arg(
        st.sampled_from(["all", "rgb", ["B4", "B3"], "[B8_B4]", OMIT]),
        st.sampled_from(["", "  ", [], 5, "B99", "red,green"]),
        ("bands", "Bandnames"),
    ),
    "utm_mode": Arg(
        st.sampled_from(["combined_utm", "single_utm", OMIT]),
        st.sampled_from(["utm", "", 3]),
        ("utm_mode", "UtmDataSelectionMode", "utm_data_selection_mode"),
    ),
    "allow_partial": Arg(st.sampled_from([False, True, "false", "True", OMIT]), st.sampled_from(["perhaps", 2.5, []])),
}


def _sensor(op: Any, tmp: Path) -> Any:
    return op.execute({})


TARGETS: dict[str, Target] = {
    "estimate": Target(ClearSkyEstimateOrderOperator, ORDER_ARGS, {}, _execute),
    "create": Target(ClearSkyCreateOrderOperator, CREATE_ARGS, {}, _create),
    "cancel": Target(
        ClearSkyCancelOrderOperator,
        {"order_guid": Arg(GUIDS, st.sampled_from(["", "   ", "None", None, 12]))},
        {},
        _execute,
    ),
    "search_tiles": Target(
        ClearSkySearchTilesOperator,
        {"area": Arg(SEARCH_AREA_OK, SEARCH_AREA_BAD, SEARCH_NAMES, merge=True)},
        {},
        _execute,
    ),
    "optimize_tiles": Target(
        ClearSkyOptimizeTilesOperator,
        {"area": Arg(*area(), names=("wkt", "geojson", "Wkt", "GeoJson", "area"), merge=True)},
        {},
        _execute,
    ),
    "download_composite": Target(
        ClearSkyDownloadCompositeOperator, COMPOSITE_ARGS, {"destination": OMIT_DEST}, _download
    ),
    "download_tile": Target(ClearSkyDownloadTileOperator, TILE_ARGS, {"destination": OMIT_DEST}, _download),
    "order_status_sensor": Target(ClearSkyOrderStatusSensor, STATUS_ARGS, SENSOR_FIXED, _sensor),
    "availability_sensor": Target(ClearSkyImageAvailabilitySensor, AVAILABILITY_ARGS, SENSOR_FIXED, _sensor),
}


# ----------------------------------------------------------------------------------------------- the property


@st.composite
def arguments(draw: st.DrawFn, target: Target) -> tuple[dict[str, Any], set[str]]:
    """Keyword arguments with up to two invalid ones (none, in about a third of the examples)."""
    can_fail = sorted(name for name, arg in target.args.items() if arg.invalid is not None)
    invalid = draw(st.one_of(st.just(set()), st.sets(st.sampled_from(can_fail), min_size=1, max_size=2)))
    kwargs: dict[str, Any] = dict(target.fixed)
    for name, arg in target.args.items():
        strategy = arg.invalid if name in invalid and arg.invalid is not None else arg.valid
        value = draw(strategy)
        if arg.merge:
            kwargs.update(value)
        elif value is not OMIT:
            kwargs[name] = value
    return kwargs, invalid


def names_any(target: Target, invalid: set[str], text: str) -> bool:
    for arg in invalid:
        for name in target.names_of(arg):
            pattern = name if name.startswith(r"\b") else re.escape(name)
            if re.search(pattern, text, re.IGNORECASE if not name.startswith(r"\b") else 0):
                return True
    return False


def check(emu: EmulatorHandle, target: Target, kwargs: dict[str, Any], invalid: set[str], tmp: Path) -> None:
    emu.control.reset()
    emu.control.set_speed(0)
    emu.control.set_time(matrix.START)
    constructed = False
    raised: BaseException | None = None
    try:
        op = target.cls(task_id="task", **kwargs)
        constructed = True
        target.run(op, tmp)
    except Exception as error:
        raised = error
    matrix.wait_idle(emu)
    requests = emu.control.request_count()
    shown = {k: v for k, v in kwargs.items() if k not in target.fixed}
    where = "__init__" if not constructed else "execute"
    summary = f"{shown} invalid={sorted(invalid)} -> {type(raised).__name__ if raised else 'ran'} in {where}: {raised}"
    if invalid:
        assert raised is not None, f"invalid input accepted: {summary}"
        assert requests == 0, f"{requests} request(s) sent for invalid input: {summary}"
        if constructed:
            assert isinstance(raised, AirflowFailException), f"not a fail-fast error: {summary}"
        else:
            assert isinstance(raised, (ValueError, TypeError, AirflowException)), summary
        text = str(raised)
        for value in kwargs.values():  # a message echoing a template ('{{ params.epsg }}') does not count
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                text = text.replace(repr(value), "").replace(value, "")
        assert names_any(target, invalid, text), f"the message does not name {sorted(invalid)}: {summary}"
    else:
        assert raised is None or requests > 0, f"valid input refused before any request: {summary}"
        if raised is not None:
            assert isinstance(raised, (AirflowException, ClearSkyError)), f"bare error: {summary}"


@pytest.fixture
def emu(clearsky_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    monkeypatch.setenv("AIRFLOW_CONN_CLEARSKY_DEFAULT", matrix.connection_json(clearsky_emulator))
    return clearsky_emulator


def _property(name: str) -> Callable[..., None]:
    target = TARGETS[name]

    @EXAMPLES
    @given(case=arguments(target))
    def test(emu: EmulatorHandle, tmp_path: Path, case: tuple[dict[str, Any], set[str]]) -> None:
        kwargs, invalid = case
        check(emu, target, kwargs, invalid, tmp_path / uuid.uuid4().hex[:8])

    test.__name__ = f"test_{name}_bad_input"
    return test


test_estimate_bad_input = _property("estimate")
test_create_bad_input = _property("create")
test_cancel_bad_input = _property("cancel")
test_search_tiles_bad_input = _property("search_tiles")
test_optimize_tiles_bad_input = _property("optimize_tiles")
test_download_composite_bad_input = _property("download_composite")
test_download_tile_bad_input = _property("download_tile")
test_order_status_sensor_bad_input = _property("order_status_sensor")
test_availability_sensor_bad_input = _property("availability_sensor")


# ----------------------------------------------------------------------------------------------- gaps found


def rejected_before_any_request(emu: EmulatorHandle, cls: Any, argument: str, tmp: Path, **kwargs: Any) -> None:
    target = Target(cls, {argument: Arg(st.nothing())}, {}, _download if "Download" in cls.__name__ else _sensor)
    if cls in (ClearSkyCancelOrderOperator, ClearSkyOptimizeTilesOperator):
        target.run = _execute
    check(emu, target, kwargs, {argument}, tmp)


@pytest.mark.parametrize("guid", ["not-a-guid", "{{ ti.xcom_pull(task_ids='create') }}"])
def test_cancel_refuses_a_non_guid_before_any_request(emu: EmulatorHandle, tmp_path: Path, guid: str) -> None:
    rejected_before_any_request(emu, ClearSkyCancelOrderOperator, "order_guid", tmp_path, order_guid=guid)


@pytest.mark.parametrize("guid", ["not-a-guid", "{{ ti.xcom_pull(task_ids='create') }}"])
def test_status_sensor_refuses_a_non_guid_before_any_request(emu: EmulatorHandle, tmp_path: Path, guid: str) -> None:
    rejected_before_any_request(emu, ClearSkyOrderStatusSensor, "order_guid", tmp_path, order_guid=guid, **SENSOR_FIXED)


def test_status_sensor_refuses_unreadable_target_statuses_before_any_request(
    emu: EmulatorHandle, tmp_path: Path
) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyOrderStatusSensor,
        "target_statuses",
        tmp_path,
        order_guid=str(uuid.UUID(int=1, version=4)),
        target_statuses="['unclosed",
        **SENSOR_FIXED,
    )


@pytest.mark.parametrize("bands", ["B99", "B8;B4", "red,green"])
def test_download_refuses_unknown_band_names_before_any_request(
    emu: EmulatorHandle, tmp_path: Path, bands: str
) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyDownloadCompositeOperator,
        "bands",
        tmp_path,
        wkt=FIELD,
        date="2025-05-07",
        destination=str(tmp_path / "out"),
        bands=bands,
    )


def test_download_refuses_blank_constellation_names_before_any_request(emu: EmulatorHandle, tmp_path: Path) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyDownloadCompositeOperator,
        "satellite_constellations",
        tmp_path,
        wkt=FIELD,
        date="2025-05-07",
        destination=str(tmp_path / "out"),
        satellite_constellations=[" "],
    )


@pytest.mark.parametrize("value", ["perhaps", 2.5, "{{ params.partial }}"])
def test_availability_sensor_refuses_a_non_boolean_allow_partial(
    emu: EmulatorHandle, tmp_path: Path, value: Any
) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyImageAvailabilitySensor,
        "allow_partial",
        tmp_path,
        wkt=FIELD,
        dates=["2025-05-07"],
        allow_partial=value,
        **SENSOR_FIXED,
    )


@pytest.mark.parametrize(
    ("value", "meaning"), [("false", False), ("False", False), ("0", False), ("true", True), (1, True)]
)
def test_availability_sensor_reads_allow_partial_as_the_download_does(value: Any, meaning: bool) -> None:
    """A rendered template gives text: 'false' means False (it used to be bool('false'), True), as in the download."""
    sensor = ClearSkyImageAvailabilitySensor(
        task_id="task", wkt=FIELD, dates=["2025-05-07"], allow_partial=value, **SENSOR_FIXED
    )
    assert sensor._spec().allow_partial is meaning


def test_optimize_tiles_names_geojson_when_geojson_is_bad(emu: EmulatorHandle, tmp_path: Path) -> None:
    target = Target(
        ClearSkyOptimizeTilesOperator, {"geojson": Arg(st.nothing(), names=("geojson", "GeoJson"))}, {}, _execute
    )
    check(emu, target, {"geojson": {"type": "Point", "coordinates": [8.6, 50.1]}}, {"geojson"}, tmp_path)


@pytest.mark.parametrize("model", ["", "   "])
def test_download_refuses_an_empty_model_before_any_request(emu: EmulatorHandle, tmp_path: Path, model: str) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyDownloadTileOperator,
        "model",
        tmp_path,
        tile_guid=str(uuid.UUID(int=3, version=4)),
        date="2025-05-07",
        destination=str(tmp_path / "out"),
        model=model,
    )


def test_availability_sensor_names_dates_when_the_list_is_unreadable(emu: EmulatorHandle, tmp_path: Path) -> None:
    rejected_before_any_request(
        emu, ClearSkyImageAvailabilitySensor, "dates", tmp_path, wkt=FIELD, dates="[bad", **SENSOR_FIXED
    )


def test_download_tile_names_tile_guid_when_it_is_not_text(emu: EmulatorHandle, tmp_path: Path) -> None:
    rejected_before_any_request(
        emu,
        ClearSkyDownloadTileOperator,
        "tile_guid",
        tmp_path,
        tile_guid=5,
        date="2025-05-07",
        destination=str(tmp_path),
    )


AVAILABILITY_GAPS = [
    # (argument, value, what happens)
    ("epsg", "abc", "\"invalid literal for int() with base 10: 'abc'\": the message does not name epsg"),
    ("epsg", "{{ ds }}", "the same for an unrendered template"),
    ("epsg", None, "\"int() argument must be ... not 'NoneType'\""),
    ("epsg", 1.5, "int(1.5) == 1: EPSG 1 is sent to the API"),
    ("bands", 5, '"can only join an iterable": the message does not name bands'),
    ("model", "", "an empty model is sent to the API"),
    ("satellite_constellations", 5, "[5] is sent to the API as constellation '5'"),
]


@pytest.mark.parametrize(
    ("argument", "value", "why"), AVAILABILITY_GAPS, ids=[f"{a}={v!r}: {w}" for a, v, w in AVAILABILITY_GAPS]
)
def test_availability_sensor_refuses_before_any_request_naming_the_argument(
    emu: EmulatorHandle, tmp_path: Path, argument: str, value: Any, why: str
) -> None:
    kwargs = {"wkt": FIELD, "dates": ["2025-05-07"], **SENSOR_FIXED, argument: value}
    rejected_before_any_request(emu, ClearSkyImageAvailabilitySensor, argument, tmp_path, **kwargs)
