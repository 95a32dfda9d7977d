"""Download paid imagery to any storage, once, completely, with flat memory.

``ClearSkyDownloadCompositeOperator`` (a composite for an area and a date) and ``ClearSkyDownloadTileOperator``
(tiles and minitiles by GUID) share one machinery: a complete file already at its final name is never paid for
again, and nothing appears at the final name unless it is complete, with its sidecar. See
docs/operators-download.md#download-operators.

This module holds the operators and the paid requests (what their failures mean); the arguments, file names
and reports are in ``_download_base``, the checks in ``_download_checks``, the commit and its recovery in
``_download_commit``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import (
    ClearSkyError,
    ErrorPolicy,
    InvalidRequestError,
    LimitExceededError,
    RetryableTaskError,
    error_policy,
)
from airflow_provider_clearsky.operators import _atomic_writer as writing
from airflow_provider_clearsky.operators import _download_checks as checks
from airflow_provider_clearsky.operators import _download_commit as commit
from airflow_provider_clearsky.operators import _download_metadata as meta
from airflow_provider_clearsky.operators import _download_transfer as transfer
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators._download_base import DownloadOperatorBase
from airflow_provider_clearsky.operators._download_target import (
    DownloadTarget,
    expected_bytes,
    open_download,
    tile_guids,
)
from airflow_provider_clearsky.utils import arguments, coercion
from airflow_provider_clearsky.utils.deprecation import renamed_argument

if TYPE_CHECKING:
    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import AccountInfo, CompositeEstimate


def _invalid(error: InvalidRequestError, prefix: str = "invalid download settings") -> AirflowFailException:
    detail = arguments.field_errors_text(error, arguments.IMAGERY_ARGUMENTS)
    return AirflowFailException(f"{prefix}: {detail}")


def _api_failure(error: ClearSkyError, what: str) -> Exception:
    """Fail the task for good or raise for Airflow to retry, as the error policy says."""
    if error_policy(error) is ErrorPolicy.FAIL:
        return AirflowFailException(f"{what} failed: {error}")
    if isinstance(error, RetryableTaskError):  # already says what happened and that a retry helps
        return error
    return RetryableTaskError(f"{what} failed, will be retried: {error}")


def _upload_one(hook: ClearSkyHook, target: DownloadTarget) -> None:
    """Have the API write one file to the request's ``upload_url`` (it answers 201 with no body)."""
    with open_download(hook, target) as download:
        if not download.uploaded:
            raise AirflowFailException(
                f"the API answered {download.status_code} with a file instead of writing it to upload_url; "
                "nothing was saved"
            )


def _no_retry_after_uploads(error: BaseException, target: DownloadTarget, uploaded: list[str]) -> AirflowFailException:
    """Fail for good once earlier files of the task went to ``upload_url``: a retry would pay for them again.

    The API writes to a URL the operator cannot read back, so nothing tells a retry which files are there.
    """
    detail = str(error) or type(error).__name__
    return AirflowFailException(
        f"uploading {target.kind} {target.label} via upload_url failed ({detail}). Not retried: {len(uploaded)} "
        f"earlier file(s) of this task were already uploaded and paid ({'; '.join(uploaded)}), and a retry would "
        "upload and pay for them again. Clearing the task does that too; map the task over its files (one file "
        "per task instance) so that a retry repeats only its own."
    )


def _limit_refusal(error: LimitExceededError, kind: str) -> AirflowFailException:
    """Fail for good when the API refused a request above the account's limits (codes 1004/1005).

    Nothing was produced or charged then, and no retry can help: the message names the argument to change.
    """
    if error.error_code == 1005:
        return AirflowFailException(
            f"bands: the API refused the request (MaxTotalBands, code 1005: {error.message}); request fewer bands "
            "(e.g. split into several downloads). Nothing was downloaded or paid."
        )
    fixes = {  # a tile's area is fixed
        "composite": "split the area into smaller parts",
        "tile": "download its minitiles, or a composite of a smaller area, instead",
    }
    argument = "wkt/geojson" if kind == "composite" else f"{kind}_guid"
    fix = fixes.get(kind, "download a composite of a smaller area instead")
    return AirflowFailException(
        f"{argument}: the API refused the request (MaxCompositeAreaKm2, code {error.error_code}: {error.message}); "
        f"{fix}. Nothing was downloaded or paid."
    )


def _date_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # its UTC date, never the date of its own time zone
        return (value.astimezone(dt.UTC) if value.tzinfo is not None else value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _ClearSkyDownloadOperator(DownloadOperatorBase):
    """The paid requests of the download operators, and what their failures mean (not for direct use)."""

    def _settings_kwargs(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "date": _date_text(self.date),
            "model": self.model,
            "resolution": coercion.as_int("resolution", self.resolution),
            "epsg_projection": coercion.as_int("epsg", self.epsg),
            "bandnames": self.bands,
            "data_type": self.data_type,
            "pixel_selection_mode": self.pixel_selection,
            "utm_data_selection_mode": self.utm_mode,
            "allow_partial_image": self.allow_partial,
            "level": self.level,
            "harmonize": self.harmonize,
            "utm_grid_force_pixel_resolution_size": self.force_pixel_resolution,
            "old_pixel_selection_mode": self.old_pixel_selection,
        }
        if self.satellite_constellations is not None:
            values["satellite_constellations"] = self.satellite_constellations
        if self.upload_url:
            values["upload_url"] = self.upload_url
        return values

    def _estimate(
        self, hook: ClearSkyHook, target: DownloadTarget, account: AccountInfo | None
    ) -> CompositeEstimate | None:
        return None

    def _prepare(self, hook: ClearSkyHook, targets: list[DownloadTarget]) -> tuple[AccountInfo | None, dict[str, Any]]:
        """Limits and estimates before anything is paid; returns the account (if read) and attribution notices."""
        account: AccountInfo | None = None
        if self._needs_account(targets):
            try:
                account = hook.get_account_info()
            except ClearSkyError as error:
                raise _api_failure(error, "reading the account limits") from None
            self._check_limits(targets, account)
        notices: dict[str, Any] = {}
        for target in targets:
            estimate = self._estimate(hook, target, account)
            if estimate is not None:
                target.result["estimate"] = estimate.model_dump(mode="json", by_alias=True)
                notices.update(meta.notices("estimate", estimate.model_extra))
        # The order as the run already read it (the wait's record), else its details, read once per task.
        if self.order_details is not None:
            notices.update(meta.notices("order", self.order_details))
        elif self.order_guid:
            notices.update(self._order_notices(hook, str(self.order_guid)))
        return account, notices

    def _order_notices(self, hook: ClearSkyHook, order_guid: str) -> dict[str, Any]:
        """Attribution or provenance fields of the order's details (free call), passed through unchanged."""
        try:
            order = hook.get_order(order_guid)
        except ClearSkyError as error:
            self.log.warning("could not read order %s for its attribution notices: %s", order_guid, error)
            return {}
        return meta.notices("order", order.model_extra)

    def _download_all(self, targets: list[DownloadTarget]) -> None:
        with self._hook() as hook:
            account, notices = self._prepare(hook, targets)
            limit = hook.settings.max_concurrent_connections
            if account is not None and account.max_concurrent_connections:
                limit = min(limit, account.max_concurrent_connections)
            slots = transfer.connection_slots(self.clearsky_conn_id, hook.settings.base_url, limit)
            for target in targets:
                with slots:
                    self._download_one(hook, target, notices)

    def _download_one(self, hook: ClearSkyHook, target: DownloadTarget, notices: dict[str, Any]) -> None:
        assert target.final is not None
        commit.remove_stale_temporaries(target, self.execution_timeout, self.log)
        paid = False
        try:
            # Everything that can find the destination unwritable happens before the paid request.
            storage.check_free_space(target.final.parent, expected_bytes(target))
            with writing.AtomicWriter(target.final) as writer:
                self.log.info("Downloading ClearSKY %s %s to %s", target.kind, target.label, target.uri)
                started_at = dt.datetime.now(dt.UTC)
                started = time.monotonic()
                paid = True
                with open_download(hook, target) as download:
                    transfer.receive(
                        download, writer, target, chunk_size=self.chunk_size, log=self.log, started=started
                    )
                    document = commit.sidecar(
                        target,
                        size=writer.size,
                        sha256=writer.sha256,
                        order_guid=str(self.order_guid) if self.order_guid else None,
                        source_filename=download.filename,
                        content_type=download.content_type,
                        attribution={**notices, **meta.notices("header", dict(download.headers))},
                        estimate=target.result.get("estimate"),
                        downloaded_at=started_at,
                        duration_seconds=time.monotonic() - started,
                    )
                commit.commit_with_metadata(target, writer, document, write_stac=self.write_stac)
        except LimitExceededError as error:
            raise _limit_refusal(error, target.kind) from None
        except ClearSkyError as error:
            raise _api_failure(error, f"downloading {target.kind} to {target.uri}") from None
        except writing.IncompleteDownloadError as error:
            raise RetryableTaskError(f"download of {target.uri} was cut short: {error}; will be retried") from None
        except storage.DestinationError as error:
            raise AirflowFailException(
                f"destination: {target.uri} cannot be written ({error}). "
                + (
                    "The download was paid once; the task is not retried, so it is not paid again. Fix the "
                    "destination, then clear the task."
                    if paid
                    else "Nothing was downloaded or paid. Fix the destination (permissions, free space) or choose "
                    "another one."
                )
            ) from None
        target.result = document
        self.log.info("Saved %s (%d bytes, SHA-256 %s)", target.uri, document["size"], document["sha256"])

    def _execute_upload(self, targets: list[DownloadTarget]) -> str | list[str]:
        """Have the API PUT each file to ``upload_url`` (201, no body); the URL is never returned or logged."""
        host = urlsplit(str(self.upload_url)).hostname or "?"
        described: list[str] = []
        with self._hook() as hook:
            self._prepare(hook, targets)
            for target in targets:
                try:
                    _upload_one(hook, target)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as error:  # a task timeout too
                    if described:
                        raise _no_retry_after_uploads(error, target, described) from None
                    if isinstance(error, LimitExceededError):
                        raise _limit_refusal(error, target.kind) from None
                    if isinstance(error, ClearSkyError):
                        raise _api_failure(error, f"uploading {target.kind} {target.label} via upload_url") from None
                    raise
                text = f"{target.kind} {target.label} uploaded to {host} via upload_url (URL redacted)"
                self.log.info("%s", text)
                described.append(text)
        return described if self._returns_list() or len(described) != 1 else described[0]


class ClearSkyDownloadCompositeOperator(_ClearSkyDownloadOperator):
    """Download a ClearSKY composite (area and date) to any storage, once, completely.

    :param wkt: the area as WKT (Polygon or MultiPolygon, EPSG:4326), or a path to a ``.wkt`` file
        (relative to the DAG folder or ``template_searchpath``). Templated.
    :param geojson: the area as GeoJSON (geometry, Feature or FeatureCollection; dict or text), or a path
        to a ``.geojson`` file. Templated. Give exactly one of ``wkt`` and ``geojson``.
    :param date: the image date (``YYYY-MM-DD``, date or datetime). Templated; map it over the dates the
        availability sensor returns.
    :param destination: the folder to write to: a local path, ``file://``, ``memory://`` or any fsspec URL
        Airflow can reach (``s3://conn_id@bucket/prefix``). Templated. Required unless ``upload_url``.
    :param filename: the file name (templated; may use ``{date}``, ``{model}``, ``{resolution}``,
        ``{epsg}``, ``{bands}``, ``{kind}``, ``{guid}``, ``{key}``). Default: a deterministic name from the
        date, model, resolution, projection and a hash of every setting including the area.
    :param resolution: metres per pixel (10, 20, 40, ... 1280).
    :param epsg: output projection; 47000 picks the best UTM zone.
    :param bands: ``"all"``, ``"rgb"``, ``"B8,B4,B3"``, a list, or index expressions like ``"[B8_B4]"``.
    :param data_type: ``INT16`` or ``UINT8``.
    :param pixel_selection: ``intersect`` or ``contained``.
    :param utm_mode: ``combined_utm``, ``single_utm`` or ``single_utm_fully_covered``.
    :param model: the model (API value, e.g. ``Stratus2``).
    :param satellite_constellations: constellations of the order to use (default: the model's default set).
    :param allow_partial: accept an image that covers only part of the area.
    :param level: processing level 1 (L1C) or 2 (L2A); default: the API's.
    :param harmonize: harmonised reflectance (default: the API's).
    :param force_pixel_resolution: ``UtmGridForcePixelResolutionSize``: pixels of exactly ``resolution``
        metres after reprojection (default ``True``, what ClearSKY's own client sends).
    :param old_pixel_selection: ``OldPixelSelectionMode``: the service's earlier pixel selection (default
        ``False``, as the vendor client sends; composites only, tiles ignore it).
    :param order_guid: the order the imagery belongs to; recorded in the sidecar, and its attribution
        notices are copied there (read from the order's details, once per task, unless ``order_details``).
    :param order_details: the order as the run already read it: the record ``ClearSkyOrderStatusSensor``
        returns (e.g. ``wait_for_order.output``). Its ``TaskOrderGuid`` is the ``order_guid`` (which, if given
        too, must match), and the notices it carries go to the sidecar: the order is not read again.
    :param overwrite: download again (and pay again) even if a complete file is already there.
    :param verify_existing: how an existing file is checked before skipping: ``checksum`` (read back and
        compare SHA-256 with the sidecar; default) or ``size`` (size only; cheaper on remote stores).
    :param write_stac: also write a STAC 1.0.0 Item ``<file>.stac.json``.
    :param estimate_first: ask the (free) composite estimate before downloading; its figures go to the
        sidecar.
    :param max_processing_units: refuse the download if the estimate exceeds this many processing units
        (implies ``estimate_first``). Templated.
    :param upload_url: a signed URL the API writes the file to (201, no body). Secret: masked in logs and
        rendered fields, never returned. Templated.
    :param chunk_size: re-chunk the body into pieces of this many bytes; default ``None`` receives it
        straight into a few reused buffers (fastest: no extra copies; memory stays flat either way).
    :param clearsky_conn_id: the ClearSKY connection.

    Returns the destination URI (``file:///...`` for local files), or a redacted description in upload
    mode. Never bytes.
    """

    _kind_label = "composite"
    template_fields: Sequence[str] = (
        "wkt",
        "geojson",
        *_ClearSkyDownloadOperator.template_fields,
        "max_processing_units",
    )
    template_ext: Sequence[str] = (".wkt", ".geojson")

    def __init__(
        self,
        *,
        wkt: str | None = None,
        geojson: str | Mapping[str, Any] | None = None,
        estimate_first: bool = False,
        max_processing_units: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wkt = wkt
        self.geojson = geojson
        self.estimate_first = estimate_first
        self.max_processing_units = max_processing_units

    def _targets(self) -> list[DownloadTarget]:
        from airflow_provider_clearsky.models import ImageryRequest

        if self.max_processing_units is not None:
            self._max_units()  # validate early
        try:
            request = ImageryRequest(
                wkt=self.wkt or None,
                geo_json=self.geojson or None,
                **self._settings_kwargs(),
            )
        except InvalidRequestError as error:
            raise _invalid(error) from None
        return [DownloadTarget.of("composite", request)]

    def _max_units(self) -> float | None:
        return checks.max_units(self.max_processing_units)

    def _check_limits(self, targets: list[DownloadTarget], account: AccountInfo) -> None:
        super()._check_limits(targets, account)
        checks.check_area(targets, account)

    def _needs_account(self, targets: list[DownloadTarget]) -> bool:
        # An estimate is checked against the account's balance and area limit before paying.
        return super()._needs_account(targets) or self._estimating()

    def _estimating(self) -> bool:
        return self.estimate_first or self._max_units() is not None

    def _estimate(
        self, hook: ClearSkyHook, target: DownloadTarget, account: AccountInfo | None
    ) -> CompositeEstimate | None:
        ceiling = self._max_units()
        if not self._estimating():
            return None
        assert account is not None  # read whenever an estimate is made (_needs_account)
        try:
            estimate = hook.estimate_composite(target.request)
        except ClearSkyError as error:
            raise _api_failure(error, "estimating the composite") from None
        self.log.info(
            "Composite estimate: %s processing units for %s km²", estimate.credit_estimate, estimate.area_estimate_km2
        )
        checks.check_estimate(estimate, ceiling, account)
        return estimate


class ClearSkyDownloadTileOperator(_ClearSkyDownloadOperator):
    """Download ClearSKY tiles and minitiles by GUID (grid-aligned), with the composite download's guarantees.

    Streamed, atomic, never twice, sidecar and STAC beside each file.

    :param tile_guid: one tile GUID or a list of them. Templated.
    :param minitile_guid: one minitile GUID or a list of them. Templated. (``mini_tile_guid`` is its
        deprecated name, for one release.)

    :param clip_reflectance: ``ClipReflectance`` (model-dependent reflectance clipping); not sent unless set,
        so the API's own default applies.

    Give ``tile_guid``, ``minitile_guid`` or both. Every other argument is as for
    :class:`ClearSkyDownloadCompositeOperator` (except the area, the estimate and ``max_processing_units``:
    the API has no estimate for tiles). Returns one URI for one GUID given as a string, else a list of URIs
    in the order given (tiles first, then minitiles).
    """

    _kind_label = "tile"
    template_fields: Sequence[str] = ("tile_guid", "minitile_guid", *_ClearSkyDownloadOperator.template_fields)

    def __init__(
        self,
        *,
        tile_guid: str | Sequence[str] | None = None,
        minitile_guid: str | Sequence[str] | None = None,
        mini_tile_guid: str | Sequence[str] | None = None,
        clip_reflectance: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.clip_reflectance = clip_reflectance
        if mini_tile_guid is not None:  # the old name; only whether it was given is read before rendering
            minitile_guid = renamed_argument(self.task_id, "mini_tile_guid", "minitile_guid", mini_tile_guid, None)
        self.tile_guid = tile_guid
        self.minitile_guid = minitile_guid

    def _returns_list(self) -> bool:
        given = [v for v in (self.tile_guid, self.minitile_guid) if v]
        return not (len(given) == 1 and isinstance(given[0], str) and "," not in given[0])

    def _targets(self) -> list[DownloadTarget]:
        from airflow_provider_clearsky.models import GridImageryRequest

        wanted = [("tile", g) for g in tile_guids(self.tile_guid, "tile_guid")]
        wanted += [("minitile", g) for g in tile_guids(self.minitile_guid, "minitile_guid")]
        if not wanted:
            raise AirflowFailException("tile_guid / minitile_guid: give at least one tile or minitile GUID")
        targets = []
        for kind, guid in wanted:
            argument = "tile_guid" if kind == "tile" else "minitile_guid"
            try:
                request = GridImageryRequest(
                    **{argument: guid}, clip_reflectance=self.clip_reflectance, **self._settings_kwargs()
                )
            except InvalidRequestError as error:
                raise _invalid(error, f"invalid download settings for {argument} {guid!r}") from None
            targets.append(DownloadTarget.of(kind, request, guid=request.tile_guid or request.mini_tile_guid))
        return targets
