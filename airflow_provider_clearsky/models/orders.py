"""Tasking orders: the request shared by estimate and create, the estimate, and the order itself."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from airflow_provider_clearsky.models.base import ApiRequest, ApiResponse
from airflow_provider_clearsky.models.enums import SUCCESS_STATUSES, is_failed_status
from airflow_provider_clearsky.models.geometry import order_geojson, order_wkt

#: The ``ReferenceDate`` the vendor's own client (``clearsky_client.py``, 2025) sends when none is given. One
#: fixed anchor keeps every order's cadence in step (weekly: the same weekday), whatever its ``From``.
VENDOR_REFERENCE_DATE = dt.date(2024, 1, 1)


def utc_date(value: Any) -> Any:
    """The UTC date of a date-time, where the API wants a date; a date (or date text) is left as it is.

    ``2024-05-03T23:00:00-05:00`` is 2024-05-04 (never truncated to 2024-05-03). A date-time without an
    offset is taken as UTC, the API's time zone. Text that is not ISO 8601 raises ``ValueError``.
    """
    if isinstance(value, dt.datetime):
        return (value.astimezone(dt.UTC) if value.tzinfo is not None else value).date()
    if isinstance(value, str) and len(value.strip()) > 10 and value.strip()[10] in "Tt ":
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 date or date-time; use e.g. 2024-05-04 or 2024-05-03T23:00:00-05:00"
            ) from None
        return utc_date(moment)
    return value


ApiDate = Annotated[dt.date, BeforeValidator(utc_date)]


def _guid_list(field: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of GUID strings, e.g. ['c3528462-02fc-4301-bb37-8d226b45f149'] ({field})")
    guids = []
    for item in value:
        try:
            guids.append(str(uuid.UUID(str(item))))
        except ValueError:
            raise ValueError(f"{item!r} is not a GUID; pass tile/minitile GUIDs from tile search") from None
    return guids or None  # the API wants null, not [], for the unused mode


#: API values the docs and the vendor's clients name; a spelling that differs from one of these only by
#: case, spaces, hyphens, underscores or slashes is a display name (``Stratus-2``, ``Sentinel-2``, ``Landsat 8/9``).
KNOWN_MODELS = ("Stratus2", "Stratus2Fast", "Stratus3", "Stratus2NoSnow")
KNOWN_CONSTELLATIONS = ("Sentinel1", "Sentinel2", "Sentinel3", "Landsat89")


def _squashed(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " -_/")


def _refuse_display_name(name: str, known: tuple[str, ...], what: str) -> str:
    """``name`` as sent, unless it is a display name of a known API value: then ValueError naming the value."""
    for value in known:
        if name.lower() != value.lower() and _squashed(name) == value.lower():
            raise ValueError(f"{name!r} is a display name; the API's {what} value is {value!r}")
    return name


def model_name(value: Any) -> str:
    """A model's API value, stripped; ValueError if it is not non-empty text or is a display name."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a model's API value such as 'Stratus2' (not a display name like 'Stratus-2')")
    return _refuse_display_name(value.strip(), KNOWN_MODELS, "model")


_CONSTELLATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _listed_text(value: str) -> Any:
    """A list rendered as text by a template (``"['Sentinel1', 'Sentinel2']"`` or JSON), as a list."""
    from airflow_provider_clearsky.utils.coercion import read_list_text

    try:
        return read_list_text(value)
    except (ValueError, SyntaxError):
        raise ValueError(f"is not a readable list of constellation names: {value[:80]!r}") from None


def constellation_names(value: Any) -> list[str]:
    """Constellation names (a list, the text of a list, or comma-separated text), stripped; ValueError if any is
    not a name (so a template's rendering never reaches the API as a name like ``"['Sentinel1'"``)."""
    if isinstance(value, str):
        text = value.strip()
        value = _listed_text(text) if text.startswith(("[", "(")) else [part.strip() for part in text.split(",")]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(item, str) and item.strip() for item in value)
    ):
        raise ValueError(
            "must name at least one constellation, e.g. ['Sentinel1', 'Sentinel2', 'Landsat89'] "
            "(see GET /api/tasking/models for what each model requires)"
        )
    names = [_refuse_display_name(item.strip(), KNOWN_CONSTELLATIONS, "constellation") for item in value]
    for name in names:
        if not _CONSTELLATION_NAME.match(name) or name.lower() in ("none", "null"):
            raise ValueError(
                f"{name!r} is not a constellation name; pass names such as ['Sentinel1', 'Sentinel2', 'Landsat89'] "
                "(a list, or comma-separated text)"
            )
    return names


def order_guid(value: Any, argument: str = "order_guid") -> str:
    """An order's GUID (``TaskOrderGuid``) as text; ValueError naming ``argument`` and the fix if it is not one."""
    text = value.strip() if isinstance(value, str) else ""
    hint = (
        "pass the order's GUID (TaskOrderGuid), e.g. the create-order task's return value (create.output or "
        "\"{{ ti.xcom_pull(task_ids='create_order') }}\")"
    )
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{argument} must be the order's GUID as text, not {type(value).__name__} {value!r}; {hint}")
    if not text or text.lower() in ("none", "null"):
        raise ValueError(f"{argument} is empty; {hint}")
    try:
        uuid.UUID(text)
    except ValueError:
        what = " (an unrendered template?)" if "{{" in text or "{%" in text else ""
        raise ValueError(f"{argument} must be the order's GUID, not {value!r}{what}; {hint}") from None
    return text


class OrderRequest(ApiRequest):
    """The body of ``POST /api/tasking/orders/estimate`` and ``POST /api/tasking/orders``.

    Exactly one area mode: ``wkt`` or ``geo_json`` (polygon mode, sent as a GeometryCollection), or
    ``tile_guids`` and/or ``mini_tile_guids`` (grid mode). ``date_to=None`` makes a recurring order.
    """

    wkt: str | None = None
    geo_json: dict[str, Any] | None = None
    tile_guids: list[str] | None = None
    mini_tile_guids: list[str] | None = None
    satellite_constellations: list[str]
    model: str
    storage_months: int = 1
    api_requests: int = 1
    image_frequency: int
    reference_date: ApiDate | None = None
    date_from: ApiDate = Field(alias="From")
    date_to: ApiDate | None = Field(default=None, alias="To")

    @field_validator("wkt", mode="before")
    @classmethod
    def _wkt_as_collection(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError("must be WKT text; pass GeoJSON objects as geo_json")
        return order_wkt(value)

    @field_validator("geo_json", mode="before")
    @classmethod
    def _geojson_as_collection(cls, value: Any) -> Any:
        if value is None:
            return None
        return order_geojson(value)

    @field_validator("tile_guids", "mini_tile_guids", mode="before")
    @classmethod
    def _guids(cls, value: Any) -> list[str] | None:
        return _guid_list("tile_guids / mini_tile_guids", value)

    @field_validator("satellite_constellations", mode="before")
    @classmethod
    def _constellations(cls, value: Any) -> Any:
        return constellation_names(value)

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        return model_name(value)

    @field_validator("storage_months", "api_requests", mode="before")
    @classmethod
    def _at_least_one(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be a whole number of at least 1")
        return value

    @field_validator("image_frequency", mode="before")
    @classmethod
    def _frequency(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7:
            raise ValueError("must be the days between images, a whole number from 1 (daily) to 7 (weekly)")
        return value

    @field_validator("date_from")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"must be the first day of a month; use {value.replace(day=1).isoformat()}")
        return value

    @model_validator(mode="after")
    def _one_area_mode_and_dates(self) -> OrderRequest:
        modes = [
            name
            for name, present in (
                ("wkt", self.wkt is not None),
                ("geo_json", self.geo_json is not None),
                (
                    "tile_guids/mini_tile_guids",
                    self.tile_guids is not None or self.mini_tile_guids is not None,
                ),
            )
            if present
        ]
        if len(modes) != 1:
            found = ", ".join(modes) if modes else "none"
            raise ValueError(f"give exactly one area: wkt, geo_json, or tile_guids/mini_tile_guids (got {found})")
        if self.date_to is not None and self.date_to < self.date_from:
            raise ValueError(
                f"To ({self.date_to}) is before From ({self.date_from}); set To after From, "
                "or To=None for a recurring order"
            )
        if self.reference_date is None:
            self.reference_date = VENDOR_REFERENCE_DATE
        return self

    @property
    def is_recurring(self) -> bool:
        return self.date_to is None

    @property
    def is_grid_order(self) -> bool:
        return self.tile_guids is not None or self.mini_tile_guids is not None


class CostTotal(ApiResponse):
    """The 2025 client's cost objects: ``{TotalCost | TotalCostEuro, CurrencyCode}``."""

    total_cost: float | None = None
    total_cost_euro: float | None = None
    currency_code: str | None = None

    @property
    def total(self) -> float | None:
        return self.total_cost if self.total_cost is not None else self.total_cost_euro


class EstimateCosts(ApiResponse):
    currency_code: str | None = None
    current_month_order_cost_estimate: float | None = None
    current_month_storage_costs: float | None = None
    next_month_order_cost_estimate: float | None = None
    next_month_storage_costs: float | None = None


def _sum(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


class OrderEstimate(ApiResponse):
    """``Data`` of the order estimate. Both documented shapes are read (docs/api.md#order-estimate-and-create)."""

    model: str | None = None
    satellite_constellations: list[str] | None = None
    storage_months: int | None = None
    api_requests: int | None = None
    cancellation_date: ApiDate | None = None
    area_km2: float | None = None
    area_km2_before_minimum1_km2_per_aoi: float | None = None
    current_month_cost: float | None = None
    next_month_cost: float | None = None
    costs: EstimateCosts | None = None
    current_month_costs: CostTotal | None = None
    recurring_costs_estimate: CostTotal | None = None
    tiles: list[Any] | None = None
    mini_tiles: list[Any] | None = None
    areas_of_interest_wkt: str | None = None
    image_dates: list[ApiDate] = Field(default_factory=list)

    @property
    def current_month_total(self) -> float | None:
        """What the order costs this month, whichever shape the API used."""
        if self.current_month_cost is not None:
            return self.current_month_cost
        if self.current_month_costs is not None and self.current_month_costs.total is not None:
            return self.current_month_costs.total
        if self.costs is not None:
            return _sum(self.costs.current_month_order_cost_estimate, self.costs.current_month_storage_costs)
        return None

    @property
    def next_month_total(self) -> float | None:
        """What a recurring order costs next month (renewal), whichever shape the API used."""
        if self.next_month_cost is not None:
            return self.next_month_cost
        if self.recurring_costs_estimate is not None and self.recurring_costs_estimate.total is not None:
            return self.recurring_costs_estimate.total
        if self.costs is not None:
            return _sum(self.costs.next_month_order_cost_estimate, self.costs.next_month_storage_costs)
        return None

    @property
    def currency(self) -> str:
        for source in (self.costs, self.current_month_costs, self.recurring_costs_estimate):
            if source is not None and source.currency_code:
                return source.currency_code
        return "EUR"


def _guid_of(item: Any) -> Any:
    """Order details may list tiles as objects ``{Guid, Wkt}`` instead of strings."""
    if isinstance(item, dict):
        for key, value in item.items():
            if key.lower() in ("guid", "tileguid", "minitileguid"):
                return value
    return item


def _guids_of(value: Any) -> Any:
    if isinstance(value, list):
        return [_guid_of(item) for item in value]
    return value


class TaskOrder(ApiResponse):
    """A tasking order as listed, created or detailed. ``To`` is null for a recurring order."""

    task_order_guid: str
    ordering_process_status: str = ""
    billing_cycle: str | None = None
    storage_months: int | None = None
    api_requests: int | None = None
    image_frequency: int | None = None
    task_order_area_km2: float | None = None
    model: str | None = None
    reference_date: ApiDate | None = None
    date_from: ApiDate | None = Field(default=None, alias="From")
    date_to: ApiDate | None = Field(default=None, alias="To")
    satellite_constellations: list[str] | None = None
    tiles: Annotated[list[str] | None, BeforeValidator(_guids_of)] = None
    mini_tiles: Annotated[list[str] | None, BeforeValidator(_guids_of)] = None
    wkt: str | None = None
    created_date: dt.datetime | None = None

    @property
    def guid(self) -> str:
        return self.task_order_guid

    @property
    def status(self) -> str:
        return self.ordering_process_status

    @property
    def is_recurring(self) -> bool:
        return self.date_to is None

    @property
    def is_succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES

    @property
    def is_failed(self) -> bool:
        return is_failed_status(self.status)


class TaskOrderList(ApiResponse):
    task_orders: list[TaskOrder]
