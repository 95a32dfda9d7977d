"""The one place that knows where Airflow names live across 3.0 to 3.3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Connection


async def aget_connection(conn_id: str) -> Connection:
    """Fetch a connection without blocking the event loop (native on newer Airflow, a thread before)."""
    native = getattr(BaseHook, "aget_connection", None)
    if native is not None:
        conn: Connection = await native(conn_id)
        return conn
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


def airflow_version() -> str:
    from airflow import __version__

    return str(__version__)


__all__ = ["BaseHook", "aget_connection", "airflow_version", "mask_secret"]
