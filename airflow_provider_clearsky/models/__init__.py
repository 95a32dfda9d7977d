"""pydantic models of every request and response of the ClearSKY API.

Names load on first use, so that a DAG file importing an operator does not pay for building the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_clearsky.models.catalog import (
        AccountInfo,
        OptimizedTiles,
        TaskingModel,
        TaskingModels,
        Tile,
        TileSearchRequest,
        TileSearchResult,
    )
    from airflow_provider_clearsky.models.enums import (
        AUTO_UTM_EPSG,
        SUCCESS_STATUSES,
        DataType,
        OrderStatus,
        PixelSelectionMode,
        UtmDataSelectionMode,
        is_failed_status,
    )
    from airflow_provider_clearsky.models.imagery import (
        AvailableDates,
        AvailableDatesRequest,
        CompositeAvailability,
        CompositeEstimate,
        CompositeRequest,
        GridImageryRequest,
        ImageryRequest,
        band_count,
    )
    from airflow_provider_clearsky.models.orders import OrderEstimate, OrderRequest, TaskOrder, TaskOrderList

_MODULE_OF = {
    "AUTO_UTM_EPSG": "enums",
    "AccountInfo": "catalog",
    "AvailableDates": "imagery",
    "AvailableDatesRequest": "imagery",
    "CompositeAvailability": "imagery",
    "CompositeEstimate": "imagery",
    "CompositeRequest": "imagery",
    "DataType": "enums",
    "GridImageryRequest": "imagery",
    "ImageryRequest": "imagery",
    "OptimizedTiles": "catalog",
    "OrderEstimate": "orders",
    "OrderRequest": "orders",
    "OrderStatus": "enums",
    "PixelSelectionMode": "enums",
    "SUCCESS_STATUSES": "enums",
    "TaskOrder": "orders",
    "TaskOrderList": "orders",
    "TaskingModel": "catalog",
    "TaskingModels": "catalog",
    "Tile": "catalog",
    "TileSearchRequest": "catalog",
    "TileSearchResult": "catalog",
    "UtmDataSelectionMode": "enums",
    "band_count": "imagery",
    "is_failed_status": "enums",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AUTO_UTM_EPSG",
    "SUCCESS_STATUSES",
    "AccountInfo",
    "AvailableDates",
    "AvailableDatesRequest",
    "CompositeAvailability",
    "CompositeEstimate",
    "CompositeRequest",
    "DataType",
    "GridImageryRequest",
    "ImageryRequest",
    "OptimizedTiles",
    "OrderEstimate",
    "OrderRequest",
    "OrderStatus",
    "PixelSelectionMode",
    "TaskOrder",
    "TaskOrderList",
    "TaskingModel",
    "TaskingModels",
    "Tile",
    "TileSearchRequest",
    "TileSearchResult",
    "UtmDataSelectionMode",
    "band_count",
    "is_failed_status",
]
