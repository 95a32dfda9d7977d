"""The emulator's state: one ``Store`` that keeps the records and serves the API's operations on them.

The parts, by concern: ``dates`` (calendar arithmetic), ``records`` (orders, accounts), ``store`` (the records,
balances, charges, persistence, renewals), ``lifecycle`` (status, production and storage of image dates),
``ordering`` (estimates, create, list, details, cancel), ``imagery`` (availability) and ``downloads``
(estimates, limits, raster layout, charging).
"""

from __future__ import annotations

from .downloads import DownloadStore
from .ordering import OrderingStore


class Store(OrderingStore, DownloadStore):
    """Everything the app and the control API read and change; see ``store.RecordStore`` for the locking."""


__all__ = ["Store"]
