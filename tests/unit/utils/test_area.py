"""areas_match: the requested AOI against the AOI a server echoes, by overlap, never by coordinates."""

from __future__ import annotations

import pytest

from airflow_provider_clearsky.utils.area import areas_match

FIELD = "POLYGON ((10 50, 10.01 50, 10.01 50.01, 10 50.01, 10 50))"
TRIANGLE = "POLYGON ((10 50, 10.02 50, 10 50.02, 10 50))"
TRIANGLE_BOX = "POLYGON ((10 50, 10.02 50, 10.02 50.02, 10 50.02, 10 50))"
FAR_TRIANGLE = "POLYGON ((12 50, 12.02 50, 12 50.02, 12 50))"
FAR_TRIANGLE_BOX = "POLYGON ((12 50, 12.02 50, 12.02 50.02, 12 50.02, 12 50))"


def test_same_polygon_matches() -> None:
    assert areas_match(FIELD, FIELD)


def test_rounded_reoriented_and_wrapped_in_a_collection_matches() -> None:
    echoed = "GEOMETRYCOLLECTION (POLYGON ((10 50, 10 50.0100004, 10.0099996 50.01, 10.01 50, 10 50)))"
    assert areas_match(FIELD, echoed)


def test_each_polygon_echoed_as_its_bounding_box_matches() -> None:
    requested = f"GEOMETRYCOLLECTION ({TRIANGLE}, {FAR_TRIANGLE})"
    echoed = f"GEOMETRYCOLLECTION ({TRIANGLE_BOX}, {FAR_TRIANGLE_BOX})"
    assert areas_match(requested, echoed)


def test_whole_request_echoed_as_one_box_matches() -> None:
    requested = f"MULTIPOLYGON ((({TRIANGLE[10:-2]})), (({FAR_TRIANGLE[10:-2]})))"
    assert areas_match(requested, "POLYGON ((10 50, 12.02 50, 12.02 50.02, 10 50.02, 10 50))")


def test_multipolygon_echoed_as_separate_polygons_matches() -> None:
    requested = f"MULTIPOLYGON ((({TRIANGLE[10:-2]})), (({FAR_TRIANGLE[10:-2]})))"
    assert areas_match(requested, f"GEOMETRYCOLLECTION ({TRIANGLE}, {FAR_TRIANGLE})")


def test_a_different_field_does_not_match() -> None:
    shifted = "POLYGON ((10.005 50, 10.015 50, 10.015 50.01, 10.005 50.01, 10.005 50))"
    assert not areas_match(FIELD, shifted)


def test_a_much_larger_area_containing_the_request_does_not_match() -> None:
    region = "POLYGON ((9 49, 11 49, 11 51, 9 51, 9 49))"
    assert not areas_match(FIELD, region)


def test_part_of_a_request_does_not_match() -> None:
    requested = f"GEOMETRYCOLLECTION ({TRIANGLE}, {FAR_TRIANGLE})"
    assert not areas_match(requested, TRIANGLE)


@pytest.mark.parametrize("echoed", ["not wkt", "POINT (10 50)", "POLYGON EMPTY"])
def test_an_unreadable_echo_is_an_error_not_a_mismatch(echoed: str) -> None:
    with pytest.raises(ValueError, match="echoed_wkt"):
        areas_match(FIELD, echoed)
