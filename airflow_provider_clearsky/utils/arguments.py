"""Name what the DAG author wrote: the models' field names, in their error messages, as the operators' arguments.

A model reports ``EpsgProjection: must be ...``; the task's log should say ``epsg: must be ...``. The tables map
each request field (keyed casing-free: errors name fields by their PascalCase aliases or snake_case names)
to the argument of the operator or sensor that sets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_clearsky.exceptions import InvalidRequestError


def casing_free(table: Mapping[str, str]) -> dict[str, str]:
    """Return ``table`` keyed by each field's casing-free spelling (``epsg_projection`` -> ``epsgprojection``)."""
    return {field.replace("_", "").lower(): argument for field, argument in table.items()}


#: Fields of an order (estimate, create, tile search) -> the ordering operators' arguments.
ORDER_ARGUMENTS = casing_free(
    {
        "wkt": "wkt",
        "geo_json": "geojson",
        "tile_guids": "tile_guids",
        "mini_tile_guids": "minitile_guids",
        "tile_guid_for_mini_tiles": "tile_guid_for_minitiles",
        "model": "model",
        "satellite_constellations": "satellite_constellations",
        "image_frequency": "image_frequency",
        "reference_date": "reference_date",
        "from": "date_from",
        "date_from": "date_from",
        "to": "date_to",
        "date_to": "date_to",
        "storage_months": "storage_months",
        "api_requests": "api_requests",
        "tile_deduplication": "tile_deduplication",
    }
)

#: The same names where the order models' own texts use them ("To (..) is before From (..)", "geo_json").
_ORDER_NAMES_IN_TEXT = [
    (re.compile(r"\bgeo_json\b"), "geojson"),
    (re.compile(r"\bmini_tile_guids\b"), "minitile_guids"),
    (re.compile(r"\btile_guid_for_mini_tiles\b"), "tile_guid_for_minitiles"),
    (re.compile(r"\bFrom\b"), "date_from"),
    (re.compile(r"\bTo\b"), "date_to"),
]

#: Fields of an imagery request (availability, composite and tile downloads) -> the arguments that set them.
IMAGERY_ARGUMENTS = casing_free(
    {
        "wkt": "wkt",
        "geo_json": "geojson",
        "date": "date",
        "model": "model",
        "satellite_constellations": "satellite_constellations",
        "resolution": "resolution",
        "epsg_projection": "epsg",
        "bandnames": "bands",
        "data_type": "data_type",
        "pixel_selection_mode": "pixel_selection",
        "utm_data_selection_mode": "utm_mode",
        "allow_partial_image": "allow_partial",
        "level": "level",
        "harmonize": "harmonize",
        "utm_grid_force_pixel_resolution_size": "force_pixel_resolution",
        "old_pixel_selection_mode": "old_pixel_selection",
        "clip_reflectance": "clip_reflectance",
        "tile_guid": "tile_guid",
        "mini_tile_guid": "minitile_guid",
    }
)


def _argument_or_field(field: str, argument: str | None) -> str | None:
    return argument or field


def field_errors_text(
    error: InvalidRequestError,
    arguments: Mapping[str, str],
    *,
    label: Callable[[str, str | None], str | None] = _argument_or_field,
    rewrite: Callable[[str], str] | None = None,
) -> str:
    """Return ``error``'s field errors as ``name: what is wrong; ...`` with each field named by its argument.

    ``label(field, argument)`` gives the name shown (None: the message alone); ``argument`` is None for a
    field no argument sets. ``rewrite`` adjusts the messages' own words. Without field errors: the message.
    """
    parts = []
    for location, messages in error.field_errors.items():
        field = location.split(".", 1)[0]
        message = " ".join(messages)
        if rewrite is not None:
            message = rewrite(message)
        name = label(field, arguments.get(field.replace("_", "").lower()))
        parts.append(f"{name}: {message}" if name else message)
    return "; ".join(parts) if parts else error.message


def _order_argument_text(text: str) -> str:
    for pattern, argument in _ORDER_NAMES_IN_TEXT:
        text = pattern.sub(argument, text)
    return text


def order_field_errors_text(error: InvalidRequestError) -> str:
    """Return an order model's field errors named by the ordering operators' arguments, in the text too."""
    return field_errors_text(
        error,
        ORDER_ARGUMENTS,
        label=lambda field, argument: argument or (None if field == "(request)" else field),
        rewrite=_order_argument_text,
    )
