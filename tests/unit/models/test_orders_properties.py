"""Property-based: any input to OrderRequest either validates to a payload the API accepts, or raises
InvalidRequestError naming the fields. Never another exception."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_clearsky.exceptions import InvalidRequestError
from airflow_provider_clearsky.models import OrderRequest

FIELDS = {
    "Wkt",
    "GeoJson",
    "TileGuids",
    "MiniTileGuids",
    "SatelliteConstellations",
    "Model",
    "StorageMonths",
    "ApiRequests",
    "ImageFrequency",
    "ReferenceDate",
    "From",
    "To",
}

coordinates = st.one_of(st.floats(min_value=-200, max_value=200), st.sampled_from([float("nan"), float("inf")]))


@st.composite
def polygon_wkt(draw):
    lon, lat = draw(coordinates), draw(coordinates)
    size = draw(st.floats(min_value=-1, max_value=2, allow_nan=False))
    ring = [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat)]
    if draw(st.booleans()):
        ring = [ring[0], ring[2], ring[1], ring[3], ring[0]]  # a bow tie: self-intersecting
    text = ", ".join(f"{x} {y}" for x, y in ring)
    kind = draw(
        st.sampled_from(
            [
                "POLYGON (({}))",
                "MULTIPOLYGON ((({})))",
                "GEOMETRYCOLLECTION (POLYGON (({})))",
                "LINESTRING ({})",
                "POINT ({})",
            ]
        )
    )
    return kind.format(text if "POINT" not in kind else text.split(",")[0])


@st.composite
def geojson(draw):
    lon, lat = draw(coordinates), draw(coordinates)
    ring = [[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]
    geometry = {"type": draw(st.sampled_from(["Polygon", "Point", "Nonsense"])), "coordinates": [ring]}
    wrapper = draw(st.sampled_from(["geometry", "feature", "collection", "text"]))
    if wrapper == "feature":
        return {"type": "Feature", "geometry": geometry, "properties": {}}
    if wrapper == "collection":
        return {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": geometry}]}
    if wrapper == "text":
        import json

        return json.dumps(geometry)
    return geometry


junk = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.floats(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
dates = st.one_of(
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31)),
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31)).map(lambda d: d.replace(day=1)),
    st.dates().map(str),
    st.text(max_size=12),
    st.none(),
)
guids = st.lists(st.one_of(st.uuids().map(str), st.text(max_size=10)), max_size=3)

order_inputs = st.fixed_dictionaries(
    {},
    optional={
        "wkt": st.one_of(polygon_wkt(), junk),
        "geo_json": st.one_of(geojson(), junk),
        "tile_guids": st.one_of(guids, junk),
        "mini_tile_guids": st.one_of(guids, junk),
        "satellite_constellations": st.one_of(st.just(["Sentinel1", "Sentinel2", "Landsat89"]), junk),
        "model": st.one_of(st.sampled_from(["Stratus2", "Stratus2Fast", " "]), junk),
        "storage_months": st.one_of(st.integers(-2, 24), junk),
        "api_requests": st.one_of(st.integers(-2, 10), junk),
        "image_frequency": st.one_of(st.integers(-1, 9), junk),
        "reference_date": dates,
        "date_from": dates,
        "date_to": dates,
    },
)


def _assert_contract(payload: dict) -> None:
    assert set(payload) == FIELDS
    modes = [
        payload["Wkt"] is not None,
        payload["GeoJson"] is not None,
        payload["TileGuids"] is not None or payload["MiniTileGuids"] is not None,
    ]
    assert sum(modes) == 1
    if payload["Wkt"] is not None:
        assert payload["Wkt"].startswith("GEOMETRYCOLLECTION")
    if payload["GeoJson"] is not None:
        assert payload["GeoJson"]["type"] == "GeometryCollection"
        assert all(g["type"] in ("Polygon", "MultiPolygon") for g in payload["GeoJson"]["geometries"])
    for key in ("TileGuids", "MiniTileGuids"):
        for guid in payload[key] or []:
            uuid.UUID(guid)
    assert payload["SatelliteConstellations"] and payload["Model"].strip()
    assert payload["StorageMonths"] >= 1 and payload["ApiRequests"] >= 1
    assert 1 <= payload["ImageFrequency"] <= 7
    date_from = dt.date.fromisoformat(payload["From"])
    assert date_from.day == 1
    assert payload["To"] is None or dt.date.fromisoformat(payload["To"]) >= date_from
    assert payload["ReferenceDate"] is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order_inputs)
def test_any_input_validates_or_raises_the_validation_error(kwargs):
    try:
        request = OrderRequest(**kwargs)
    except InvalidRequestError as error:
        assert error.field_errors, "the error names at least one field"
        assert all(messages for messages in error.field_errors.values())
        return
    _assert_contract(request.to_payload())


@settings(max_examples=150, deadline=None)
@given(
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 1, 1)),
    st.integers(1, 7),
    st.booleans(),
    st.integers(0, 400),
)
def test_valid_orders_always_validate(start, frequency, recurring, days):
    start = start.replace(day=1)
    request = OrderRequest(
        wkt="POLYGON ((10 55, 10.1 55, 10.1 55.1, 10 55.1, 10 55))",
        satellite_constellations=["Sentinel1", "Sentinel2", "Landsat89"],
        model="Stratus2",
        image_frequency=frequency,
        date_from=start,
        date_to=None if recurring else start + dt.timedelta(days=days),
    )
    _assert_contract(request.to_payload())
    assert request.is_recurring == recurring
