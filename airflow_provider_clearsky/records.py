"""What the provider's tasks record about orders and files, for the ClearSKY view in the Airflow UI.

Every task that touches an order or writes a file pushes one small JSON XCom under :data:`RECORD_KEY`. The
view (``airflow_provider_clearsky.plugin``) reads these rows straight from the XCom table, which every
supported Airflow keeps in the same shape, so nothing depends on task ids, on a DAG's layout or on a table
of our own. A record never holds the API key or a signed URL: only GUIDs, costs, dates, file names and sizes.

Kinds (``record["kind"]``):

``order``
    the create operator: ``action`` ``created`` or ``reused`` (an order adopted instead of placed again),
    the cost charged by this run (``cost``, ``currency``; 0 when reused), ``recurring``, ``model``,
    ``date_from``, ``date_to``.
``status``
    the order-status sensor: the status the wait ended on.
``dates``
    the availability sensor: the image dates waited for.
``files``
    a download operator: each file's ``uri``, ``name``, ``size`` (bytes), ``date``, ``sha256``,
    ``downloaded_at``, and ``skipped`` (already complete, not downloaded or paid again).
"""

from __future__ import annotations

from typing import Any

RECORD_KEY = "clearsky_record"
KINDS = ("order", "status", "dates", "files")


def push(context: Any, kind: str, conn_id: str, order_guid: str | None, **fields: Any) -> None:
    """Push the record of the running task instance (one per task instance; the last push wins)."""
    if kind not in KINDS:
        raise ValueError(f"record kind must be one of {', '.join(KINDS)}, not {kind!r}")
    ti = context.get("ti")
    if ti is None:  # called outside a task run (a bare poke in a unit test): nothing to record
        return
    ti.xcom_push(key=RECORD_KEY, value={"kind": kind, "conn_id": conn_id, "order_guid": order_guid, **fields})


def file_entry(document: dict[str, Any], skipped: bool) -> dict[str, Any]:
    """Return a file of a ``files`` record, from the download's sidecar document."""
    request = document.get("request") or {}
    return {
        "uri": document.get("uri"),
        "name": document.get("file"),
        "size": document.get("size"),
        "date": request.get("Date") if isinstance(request, dict) else None,
        "sha256": document.get("sha256"),
        "downloaded_at": document.get("downloaded_at"),
        "skipped": skipped,
    }
