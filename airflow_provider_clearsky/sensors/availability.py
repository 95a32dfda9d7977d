"""``ClearSkyImageAvailabilitySensor``: wait until imagery is ready for an area and dates."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import AirflowFailException, PokeReturnValue
from airflow_provider_clearsky.exceptions import ClearSkyError, InvalidRequestError
from airflow_provider_clearsky.models.enums import AUTO_UTM_EPSG
from airflow_provider_clearsky.sensors._base import ClearSkyBaseSensor, ClearSkyWaitFailed
from airflow_provider_clearsky.utils import arguments
from airflow_provider_clearsky.utils.availability import ALL, ANY, AvailabilitySpec, AvailabilityTracker, check_once
from airflow_provider_clearsky.utils.coercion import as_int, as_list, parse_day
from airflow_provider_clearsky.utils.deprecation import renamed_argument

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_clearsky.triggers.availability import ClearSkyImageAvailabilityTrigger


#: The request's fields -> this sensor's arguments, so errors name what the DAG author wrote.
_ARGUMENTS = {**arguments.IMAGERY_ARGUMENTS, "date": "dates"}


def _name_arguments(error: InvalidRequestError) -> str:
    """``epsg (EpsgProjection): must be ...; bands (Bandnames): ...``: the argument first, the API's field after."""
    return arguments.field_errors_text(
        error, _ARGUMENTS, label=lambda field, argument: f"{argument} ({field})" if argument else field
    )


class ClearSkyImageAvailabilitySensor(ClearSkyBaseSensor):
    """Waits until ClearSKY imagery is ready for an area and dates; returns the ready dates (ISO strings).

    Ready means ready for the exact download settings (docs/sensors.md#what-ready-means), so the returned list
    feeds ``.expand()`` of a download task directly. Give either ``dates`` or a window ``date_from``/``date_to``
    (typically the DAG run's month); which dates count, and what fails at once, is in
    docs/sensors.md#explicit-dates and docs/sensors.md#a-window-date_from-to-date_to.

    :param wkt: the area as WKT, or a ``.wkt`` file path (read through ``template_ext``); templated.
    :param geojson: the area as GeoJSON (dict or text; geometry, Feature or FeatureCollection), or a
        ``.geojson``/``.json`` file path; templated. Give exactly one of ``wkt`` and ``geojson`` (``aoi=`` is
        the deprecated spelling of either, for one release).
    :param dates: dates to wait for (templated): a list, JSON text, or comma-separated ``YYYY-MM-DD``.
    :param date_from: first day of the window (templated), e.g. ``{{ data_interval_start | ds }}``.
    :param date_to: last day of the window, inclusive (templated).
    :param ready_when: ``"all"`` (default) or ``"any"``.
    :param model: model as in the download (default ``Stratus2``).
    :param satellite_constellations: constellations as in the download.
    :param epsg: EPSG as in the download (default 47000, automatic UTM); ``epsg_projection`` is deprecated.
    :param bands: bands as in the download (default ``all``); ``bandnames`` is deprecated.
    :param utm_mode: UTM mode as in the download (default ``combined_utm``); ``utm_data_selection_mode`` is
        deprecated.
    :param allow_partial: accept partially available imagery (as ``AllowPartialImage`` in the download).
    :param clearsky_conn_id: the ClearSKY connection.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poke_interval: seconds between checks at first (default 600), growing with ``exponential_backoff``
        up to ``max_wait`` (default one hour).
    :param skip_on_timeout: skip the task when ``timeout`` passes, and only then (``soft_fail`` keeps
        Airflow's meaning: skip on any failure).
    """

    template_fields: Sequence[str] = (
        *ClearSkyBaseSensor.template_fields,
        "wkt",
        "geojson",
        "dates",
        "date_from",
        "date_to",
        "model",
        "satellite_constellations",
        "epsg",
        "bands",
    )
    template_ext: Sequence[str] = (".wkt", ".geojson", ".json")

    def __init__(
        self,
        *,
        aoi: str | Mapping[str, Any] | None = None,
        wkt: str | None = None,
        geojson: str | Mapping[str, Any] | None = None,
        dates: Sequence[Any] | str | None = None,
        date_from: Any = None,
        date_to: Any = None,
        ready_when: str = ALL,
        model: str = "Stratus2",
        satellite_constellations: Sequence[str] | str = ("Sentinel1", "Sentinel2", "Landsat89"),
        epsg: int | str = AUTO_UTM_EPSG,
        bands: str | Sequence[str] = "all",
        utm_mode: str = "combined_utm",
        allow_partial: bool = False,
        poke_interval: float = 600,
        bandnames: str | Sequence[str] | None = None,
        epsg_projection: int | str | None = None,
        utm_data_selection_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if aoi is not None:
            if wkt is not None or geojson is not None:
                raise ValueError("give the area as exactly one of wkt or geojson (aoi is their deprecated name)")
            if not isinstance(aoi, str) or aoi.strip().startswith("{") or aoi.endswith((".geojson", ".json")):
                geojson = renamed_argument(self.task_id, "aoi", "geojson", aoi, None)
            else:
                wkt = renamed_argument(self.task_id, "aoi", "wkt", aoi, None)
        if (wkt is None) == (geojson is None):
            raise ValueError("give the area as exactly one of wkt or geojson")
        if ready_when not in (ALL, ANY):
            raise ValueError(f"ready_when must be 'all' or 'any', got {ready_when!r}")
        if dates is not None and (date_from is not None or date_to is not None):
            raise ValueError("give either dates, or a window date_from/date_to, not both")
        if dates is None and (date_from is None or date_to is None):
            raise ValueError("give dates, or both date_from and date_to (e.g. the DAG run's month)")
        # The API's names, accepted for one release (one name per concept across operators and sensors). Only
        # whether they were given is read here: the values are rendered later, in execute.
        if epsg_projection is not None:
            epsg = renamed_argument(self.task_id, "epsg_projection", "epsg", epsg_projection, None)
        if bandnames is not None:
            bands = renamed_argument(self.task_id, "bandnames", "bands", bandnames, None)
        if utm_data_selection_mode is not None:
            utm_mode = renamed_argument(
                self.task_id, "utm_data_selection_mode", "utm_mode", utm_data_selection_mode, None
            )
        self.wkt = wkt
        self.geojson = geojson
        self.dates = dates
        self.date_from = date_from
        self.date_to = date_to
        self.ready_when = ready_when
        self.model = model
        self.satellite_constellations = satellite_constellations
        self.epsg = epsg
        self.bands = bands
        self.utm_mode = utm_mode
        self.allow_partial = allow_partial
        self._tracker: AvailabilityTracker | None = None

    # ------------------------------------------------------------------ input

    def _spec(self) -> AvailabilitySpec:
        """Return what to wait for, from the rendered arguments; bad input fails the task before any request."""
        from airflow_provider_clearsky.models import ImageryRequest
        from airflow_provider_clearsky.models.geometry import imagery_wkt

        argument = "wkt" if self.wkt is not None else "geojson"
        try:
            aoi: Any = self.wkt if self.wkt is not None else self.geojson
            if isinstance(aoi, str) and aoi.strip().startswith("{"):
                aoi = json.loads(aoi)
            wkt = imagery_wkt(aoi)
        except (ValueError, TypeError) as error:
            raise AirflowFailException(
                f"{argument} {str(error).removeprefix('aoi ')}: pass WKT, GeoJSON, or a .wkt/.geojson file path"
            ) from None
        try:
            raw_dates = as_list(self.dates)
        except (ValueError, SyntaxError):
            raise AirflowFailException(
                f"dates: {self.dates!r} is not a readable list of dates; pass a list, JSON text such as "
                "'[\"2025-05-07\"]', or comma-separated YYYY-MM-DD"
            ) from None
        constellations: Any
        try:
            constellations = as_list(self.satellite_constellations)
        except (ValueError, SyntaxError):
            constellations = self.satellite_constellations  # the model names what is wrong with it
        try:
            # The dates and the window first, then every download setting through the download's own model.
            spec = AvailabilitySpec(
                wkt=wkt,
                dates=tuple(parse_day(day, "dates") for day in raw_dates) if raw_dates is not None else None,
                date_from=parse_day(self.date_from, "date_from") if self.date_from not in (None, "") else None,
                date_to=parse_day(self.date_to, "date_to") if self.date_to not in (None, "") else None,
                ready_when=self.ready_when,
            )
            request = ImageryRequest(
                wkt=wkt,
                date=spec.days()[0],
                model=self.model,
                satellite_constellations=constellations,
                epsg_projection=as_int("epsg", self.epsg),
                bandnames=self.bands,
                utm_data_selection_mode=self.utm_mode,
                allow_partial_image=self.allow_partial,
            )
        except InvalidRequestError as error:
            raise AirflowFailException(f"invalid availability settings: {_name_arguments(error)}") from None
        except (ValueError, TypeError) as error:
            raise AirflowFailException(f"invalid availability settings: {error}") from None
        return dataclasses.replace(
            spec,
            model=request.model,
            satellite_constellations=tuple(request.satellite_constellations),
            epsg_projection=request.epsg_projection,
            bandnames=request.bandnames,
            utm_data_selection_mode=request.utm_data_selection_mode.value,
            allow_partial=request.allow_partial_image,
        )

    # ------------------------------------------------------------------ waiting

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check once: the ready dates when the wait is over, False while it goes on; fail if it never can."""
        spec = self._spec()
        if self._tracker is None or self._tracker.spec != spec:
            # Poke mode keeps what it learnt between pokes; reschedule mode starts afresh each time.
            self._tracker = AvailabilityTracker(spec)
        try:
            outcome = check_once(self.hook, self._tracker)
        except ClearSkyError as error:
            self.check_failed("ClearSKY availability check failed", error)
            return False
        self._failures.answered()
        if outcome is None:
            self.log.info(
                "ClearSKY imagery for %s: ready %s, pending %s",
                spec.describe(),
                self._tracker.ready_dates() or "none",
                self._tracker.pending_dates() or "none",
            )
            return False
        if outcome.status == "failure":
            raise ClearSkyWaitFailed(outcome.message)
        self.log.info("%s", outcome.message)
        records.push(context, "dates", self.clearsky_conn_id, None, dates=list(outcome.dates))
        return PokeReturnValue(is_done=True, xcom_value=outcome.dates)

    def _waiting_for(self) -> str:
        tracker = self._tracker
        if tracker is None:
            return "ClearSKY imagery"
        pending = tracker.pending_dates()
        return f"ClearSKY imagery for {tracker.spec.describe()}" + (
            f" (pending: {', '.join(pending)})" if pending else ""
        )

    def _trigger(self, deadline: float) -> ClearSkyImageAvailabilityTrigger:
        from airflow_provider_clearsky.triggers.availability import ClearSkyImageAvailabilityTrigger  # at defer

        spec = self._spec()
        tracker = self._tracker
        # The worker's check hands what it learnt to the trigger: no date is asked about twice.
        known = tracker.states_json() if tracker is not None and tracker.spec == spec else None
        return ClearSkyImageAvailabilityTrigger(
            spec=spec.to_json(),
            clearsky_conn_id=self.clearsky_conn_id,
            deadline=deadline,
            known_states=known,
            **self._poll_settings(),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        """Return the ready dates from the trigger's ``event`` (runs on a fresh instance when the trigger fires)."""
        dates = list(self.finish(event).get("dates") or [])
        records.push(context, "dates", self.clearsky_conn_id, None, dates=dates)
        return dates
