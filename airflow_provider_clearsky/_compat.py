"""The one place that knows where Airflow names live across 3.0 to 3.3.

The names come from ``apache-airflow-providers-common-compat`` (``airflow.providers.common.compat.sdk``),
which resolves each to the Task SDK on newer Airflow and to its older home on 3.0, and supplies a stand-in
``ResumableJobMixin`` below Airflow 3.3 (a new job on every try). Only what it does not provide is here.
Everything else in the package imports Airflow names from this module, so a move is fixed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    PokeReturnValue,
    ResumableJobMixin,
    TaskDeferred,
    XCom,
    conf,
    mask_secret,
)

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger, TriggerEvent


def __getattr__(name: str) -> Any:
    """Give the trigger classes when a trigger module asks (DAG files that import operators never do)."""
    if name in ("BaseTrigger", "TriggerEvent"):
        from airflow.triggers import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "airflow_version",
    "conf",
    "mask_secret",
]
