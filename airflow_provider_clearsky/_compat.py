"""The one place that knows where Airflow names live across 3.0 to 3.3.

Everything else imports Airflow names from here, so a move between versions is fixed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator, BaseOperatorLink, BaseSensorOperator, PokeReturnValue

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0
    from airflow.configuration import conf  # type: ignore[assignment]

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.0
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

try:
    from airflow.sdk import ResumableJobMixin
except ImportError:  # below Airflow 3.3: common-compat's stand-in (a new job on every try)
    from airflow.providers.common.compat.sdk import ResumableJobMixin  # type: ignore[no-redef,unused-ignore]
from airflow.sdk.execution_time.xcom import XCom
from airflow.triggers.base import BaseTrigger, TriggerEvent

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


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "BaseTrigger",
    "PokeReturnValue",
    "ResumableJobMixin",
    "TaskDeferred",
    "TriggerEvent",
    "XCom",
    "aget_connection",
    "airflow_version",
    "conf",
    "mask_secret",
]
