"""Extra links from task instances to the ClearSKY dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class ClearSkyOrderLink(BaseOperatorLink):
    """ "ClearSKY order": the order a task created, adopted or cancelled, in the ClearSKY dashboard.

    The operator stores the URL in the task instance's XCom (key ``clearsky_order_url``) the moment the order
    is known, so the link works for mapped task instances (each has its own XCom) and for tasks that fail
    afterwards. Airflow 3 copies it to the link's own XCom key when the task ends; :meth:`persist` writes that
    key at once too, so the link shows even when the worker dies before the task ends.
    """

    name = "ClearSKY order"
    url_xcom_key = "clearsky_order_url"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(ti_key=ti_key, key=self.url_xcom_key)
        return url if isinstance(url, str) else ""

    @classmethod
    def persist(cls, context: Any, url: str) -> None:
        """Store ``url`` as the link of the running task instance."""
        ti = context.get("ti")
        if ti is None:  # outside a task run: no task instance to link from
            return
        ti.xcom_push(key=cls.url_xcom_key, value=url)
        ti.xcom_push(key=cls().xcom_key, value=url)
