"""Enumerations of the API. Values are the exact strings the API uses."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """``OrderingProcessStatus`` values from the order-lifecycle docs.

    The API may send a status this list lacks (the string for a denied order is not documented), so
    orders keep their status as plain text and these helpers classify it.
    """

    REVIEW = "Review"
    PREPARING = "Preparing"
    AWAITING_SATELLITE_PRODUCTS = "AwaitingSatelliteProducts"
    PROCESSING = "Processing"
    PREDICTING = "Predicting"
    PROCESSING_PREDICTING = "ProcessingPredicting"
    COMPLETED = "Completed"
    UP_TO_DATE = "UpToDate"
    CANCELED = "Canceled"


SUCCESS_STATUSES = frozenset({OrderStatus.COMPLETED.value, OrderStatus.UP_TO_DATE.value})


def is_failed_status(status: str) -> bool:
    """Canceled, or any denial/rejection wording: terminal, and the imagery will not come."""
    lowered = status.lower()
    return lowered in ("canceled", "cancelled") or "deni" in lowered or "reject" in lowered


class DataType(StrEnum):
    """Pixel data type of downloads: INT16 (nodata -32768) or UINT8 (nodata 0)."""

    INT16 = "INT16"
    UINT8 = "UINT8"


class PixelSelectionMode(StrEnum):
    INTERSECT = "intersect"
    CONTAINED = "contained"


class UtmDataSelectionMode(StrEnum):
    SINGLE_UTM_FULLY_COVERED = "single_utm_fully_covered"
    SINGLE_UTM = "single_utm"
    COMBINED_UTM = "combined_utm"


RESOLUTIONS = (10, 20, 40, 80, 160, 320, 640, 1280)
AUTO_UTM_EPSG = 47000
