"""The settings that define an order, shared by the estimate and create operators, and the operators' base.

Nothing is checked or converted in ``__init__``: :meth:`_OrderSettingsOperator.order_request` validates the
rendered settings in ``execute``, before any request; a bad setting fails the task without retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_clearsky._compat import AirflowFailException, BaseOperator
from airflow_provider_clearsky.connection import DEFAULT_CONN_ID
from airflow_provider_clearsky.exceptions import InvalidRequestError
from airflow_provider_clearsky.utils import arguments, coercion

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import OrderRequest

AOI_FIELDS = ("wkt", "geojson", "tile_guids", "minitile_guids")
ORDER_FIELDS = (
    *AOI_FIELDS,
    "model",
    "satellite_constellations",
    "image_frequency",
    "reference_date",
    "date_from",
    "date_to",
    "storage_months",
    "api_requests",
    "recurring",
    "clearsky_conn_id",
)


def _invalid(task_id: str, error: InvalidRequestError) -> AirflowFailException:
    """``task: invalid settings: date_from: must be ...; image_frequency: ...``: the operator's argument names."""
    detail = arguments.order_field_errors_text(error)
    return AirflowFailException(f"{task_id}: invalid settings: {detail}")


class _ClearSkyOperator(BaseOperator):
    """Connection handling shared by the operators."""

    def __init__(self, *, clearsky_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clearsky_conn_id = clearsky_conn_id

    @cached_property
    def hook(self) -> ClearSkyHook:
        """The hook of ``clearsky_conn_id``, made on first use (not at DAG parse)."""
        from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

        return ClearSkyHook(clearsky_conn_id=self.clearsky_conn_id)


class _OrderSettingsOperator(_ClearSkyOperator):
    """The settings that define an order, shared by estimate and create."""

    template_fields: Sequence[str] = ORDER_FIELDS
    template_ext: Sequence[str] = (".wkt", ".geojson")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "geojson": "json",
        "tile_guids": "json",
        "minitile_guids": "json",
    }
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        model: str,
        satellite_constellations: list[str] | str,
        date_from: str | dt.date,
        date_to: str | dt.date | None = None,
        image_frequency: int | str = 1,
        reference_date: str | dt.date | None = None,
        wkt: str | None = None,
        geojson: dict[str, Any] | str | None = None,
        tile_guids: list[str] | str | None = None,
        minitile_guids: list[str] | str | None = None,
        storage_months: int | str = 1,
        api_requests: int | str = 1,
        recurring: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recurring = recurring
        self.wkt = wkt
        self.geojson = geojson
        self.tile_guids = tile_guids
        self.minitile_guids = minitile_guids
        self.model = model
        self.satellite_constellations = satellite_constellations
        self.image_frequency = image_frequency
        self.reference_date = reference_date
        self.date_from = date_from
        self.date_to = date_to
        self.storage_months = storage_months
        self.api_requests = api_requests

    def order_request(self) -> OrderRequest:
        """Return the validated request, from the rendered settings; a bad setting fails the task (no retry)."""
        from airflow_provider_clearsky.models import OrderRequest

        try:
            date_to = self._date_to()
            return OrderRequest(
                wkt=self.wkt,
                geo_json=self.geojson or None,
                tile_guids=coercion.as_guid_list("tile_guids", self.tile_guids),
                mini_tile_guids=coercion.as_guid_list("minitile_guids", self.minitile_guids),
                model=self.model,
                satellite_constellations=self.satellite_constellations,
                image_frequency=coercion.as_int("image_frequency", self.image_frequency),
                reference_date=self.reference_date or None,
                date_from=self.date_from,
                date_to=date_to,
                storage_months=coercion.as_int("storage_months", self.storage_months),
                api_requests=coercion.as_int("api_requests", self.api_requests),
            )
        except InvalidRequestError as error:
            raise _invalid(self.task_id, error) from None
        except ValueError as error:
            raise AirflowFailException(f"{self.task_id}: invalid order settings: {error}") from None

    def _date_to(self) -> Any:
        """Return ``date_to``, where only a literal ``None`` or ``recurring=True`` asks for a recurring order.

        A template that renders to ``"None"`` or ``""`` must not turn a historical order into a recurring one.
        """
        date_to, recurring = self.date_to, self.recurring
        if recurring is not None:
            try:
                wanted = coercion.as_bool("recurring", recurring, strict=True)
            except ValueError as error:
                raise AirflowFailException(f"{self.task_id}: invalid order settings: {error}") from None
            blank = date_to is None or coercion.is_blank_text(date_to)
            if wanted and not blank:
                raise AirflowFailException(
                    f"{self.task_id}: date_to: {date_to!r} contradicts recurring=True (a recurring order has no end); "
                    "leave date_to empty or set recurring=False"
                )
            if wanted:
                return None
            if blank:
                raise AirflowFailException(
                    f"{self.task_id}: date_to: recurring=False needs the order's last day (YYYY-MM-DD), got {date_to!r}"
                )
            return date_to
        if coercion.is_blank_text(date_to):
            raise AirflowFailException(
                f"{self.task_id}: date_to rendered to {date_to!r}, which is not a date; give the last day "
                "(YYYY-MM-DD), or for a recurring order a literal date_to=None or recurring=True (a text never "
                "turns an order into a recurring one)"
            )
        return date_to
