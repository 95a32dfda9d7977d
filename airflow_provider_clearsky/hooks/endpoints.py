"""Every endpoint of the ClearSKY API as an :class:`ApiCall`: path, method, body, and how to read ``Data``.

Paths follow the current docs (docs/api.md#endpoints); where sources conflict the choice is noted.
"""

from __future__ import annotations

import uuid
from typing import Any

from airflow_provider_clearsky.exceptions import InvalidRequestError
from airflow_provider_clearsky.hooks._api import ApiCall
from airflow_provider_clearsky.models import (
    AccountInfo,
    AvailableDates,
    AvailableDatesRequest,
    CompositeAvailability,
    CompositeEstimate,
    GridImageryRequest,
    ImageryRequest,
    OptimizedTiles,
    OrderEstimate,
    OrderRequest,
    TaskingModel,
    TaskingModels,
    TaskOrder,
    TaskOrderList,
    TileSearchRequest,
    TileSearchResult,
)
from airflow_provider_clearsky.models.geometry import Aoi, order_wkt


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _orders(data: Any) -> list[TaskOrder]:
    return TaskOrderList.model_validate(data).task_orders


def _models(data: Any) -> list[TaskingModel]:
    return TaskingModels.model_validate(data).tasking_models


def _raw(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {"Data": data}


def account_info() -> ApiCall[AccountInfo]:
    """Return the call for the account info at the 2025 path.

    The hook falls back to the 2024 ``/api/apikey/info`` on 404 (docs/api.md#account).
    """
    return ApiCall("GET", "/api/account/info", AccountInfo.model_validate)


def apikey_info() -> ApiCall[AccountInfo]:
    """Return the call for the 2024 path of the account info, the fallback of :func:`account_info`."""
    return ApiCall("GET", "/api/apikey/info", AccountInfo.model_validate)


def tasking_models() -> ApiCall[list[TaskingModel]]:
    """Return the call that lists the tasking models."""
    return ApiCall("GET", "/api/tasking/models", _models)


def search_tiles(request: TileSearchRequest) -> ApiCall[TileSearchResult]:
    """Return the call that searches the tiles and minitiles of ``request``."""
    return ApiCall("POST", "/api/tasking/search/tiles", TileSearchResult.model_validate, json=request.to_payload())


def optimize_tiles(aoi: Aoi) -> ApiCall[OptimizedTiles]:
    """Return the call for the cheapest cover of ``aoi``; bad geometry raises InvalidRequestError."""
    try:
        wkt = order_wkt(aoi)
    except ValueError as error:
        raise InvalidRequestError("invalid tile optimize request", field_errors={"Wkt": [str(error)]}) from None
    return ApiCall("POST", "/api/tasking/tile/optimize", OptimizedTiles.model_validate, json={"Wkt": wkt})


def estimate_order(order: OrderRequest, simulated_euro_usage: float | None = None) -> ApiCall[OrderEstimate]:
    """Return the call that prices ``order``: the create body plus ``SimulatedEuroUsage`` (null unless given)."""
    if simulated_euro_usage is not None and (
        isinstance(simulated_euro_usage, bool) or not isinstance(simulated_euro_usage, (int, float))
    ):
        raise InvalidRequestError(
            "invalid order estimate",
            field_errors={"SimulatedEuroUsage": ["an amount in EUR already spent this month, e.g. 1500.0"]},
        )
    payload = {**order.to_payload(), "SimulatedEuroUsage": simulated_euro_usage}
    return ApiCall("POST", "/api/tasking/orders/estimate", OrderEstimate.model_validate, json=payload)


def create_order_payload(order: OrderRequest, tile_deduplication: bool = False) -> dict[str, Any]:
    """Return the create body: the estimate body plus ``TileDeduplication`` (grid orders only)."""
    if tile_deduplication and not order.is_grid_order:
        raise InvalidRequestError(
            "invalid order",
            field_errors={"TileDeduplication": ["applies to tile/minitile orders only; drop it for polygon orders"]},
        )
    payload = order.to_payload()
    if order.is_grid_order:
        payload["TileDeduplication"] = tile_deduplication
    return payload


def create_order(
    order: OrderRequest, tile_deduplication: bool = False, automatic_order_guid: str | None = None
) -> ApiCall[TaskOrder]:
    """Return the call that creates ``order`` (never re-sent blindly); ``automaticOrderGuid`` in the query."""
    params = None
    if automatic_order_guid is not None:
        try:
            params = {"automaticOrderGuid": str(uuid.UUID(str(automatic_order_guid).strip()))}
        except ValueError:
            raise InvalidRequestError(
                "invalid order", field_errors={"automaticOrderGuid": ["must be a GUID of the automatic order flow"]}
            ) from None
    return ApiCall(
        "POST",
        "/api/tasking/orders",
        TaskOrder.model_validate,
        json=create_order_payload(order, tile_deduplication),
        params=params,
        creates_order=True,
    )


def list_orders(recurring_only: bool = False, include_expired: bool = False) -> ApiCall[list[TaskOrder]]:
    """Return the call that lists the account's orders."""
    params = {"recurringOnly": _flag(recurring_only), "getExpired": _flag(include_expired)}
    return ApiCall("GET", "/api/tasking/orders", _orders, params=params)


def order_details(guids: list[str]) -> ApiCall[list[TaskOrder]]:
    """Return the order-details POST ``{"Guids": [...]}`` of the 2025 client (:func:`order_details_get`: GET)."""
    if not guids:
        raise InvalidRequestError("invalid order details request", field_errors={"Guids": ["name at least one order"]})
    return ApiCall("POST", "/api/tasking/orders/details", _orders, json={"Guids": list(guids)})


def order_details_get(guids: list[str]) -> ApiCall[list[TaskOrder]]:
    """Return the docs' ``GET /api/tasking/orders/details`` call; its parameter is undocumented (``guids``)."""
    return ApiCall("GET", "/api/tasking/orders/details", _orders, params={"guids": ",".join(guids)})


def cancel_order(order_guid: str) -> ApiCall[dict[str, Any]]:
    """Return the call that cancels an order; a blank GUID raises InvalidRequestError."""
    if not order_guid or not order_guid.strip():
        raise InvalidRequestError("invalid cancel request", field_errors={"taskOrderGuid": ["pass the order GUID"]})
    return ApiCall(
        "DELETE", "/api/tasking/orders/cancel", _raw, params={"taskOrderGuid": order_guid.strip()}, empty_body_ok=True
    )


def search_available_dates(request: AvailableDatesRequest) -> ApiCall[AvailableDates]:
    """Return the call that lists the dates with imagery for ``request``."""
    return ApiCall(
        "POST",
        "/api/satelliteimages/search/available",
        AvailableDates.model_validate,
        json=request.to_payload(),
    )


def composite_available(request: ImageryRequest) -> ApiCall[CompositeAvailability]:
    """Return the call that asks whether the composite of ``request`` can be downloaded."""
    return ApiCall(
        "POST",
        "/api/satelliteimages/process/composite/available",
        CompositeAvailability.model_validate,
        json=request.availability_payload(),
    )


def composite_estimate(request: ImageryRequest) -> ApiCall[CompositeEstimate]:
    """Return the call that estimates the processing units of the composite of ``request``."""
    return ApiCall(
        "POST",
        "/api/satelliteimages/process/composite/estimate",
        CompositeEstimate.model_validate,
        json=request.estimate_payload(),
    )


def _download(path: str, request: ImageryRequest) -> ApiCall[None]:
    return ApiCall("POST", path, lambda _: None, json=request.to_payload(), paid=True)


def download_composite(request: ImageryRequest) -> ApiCall[None]:
    """Return the paid call that produces the composite of ``request``."""
    if isinstance(request, GridImageryRequest):
        raise InvalidRequestError("invalid composite request", field_errors={"Wkt": ["composites take an area"]})
    return _download("/api/satelliteimages/process/composite", request)


def download_grid(request: GridImageryRequest) -> ApiCall[None]:
    """Return the paid call that produces a tile or minitile, by which GUID the request names."""
    kind = "tile" if request.tile_guid is not None else "minitile"
    return _download(f"/api/satelliteimages/process/{kind}", request)
