"""pydantic models of every request and response of the ClearSKY API."""

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
