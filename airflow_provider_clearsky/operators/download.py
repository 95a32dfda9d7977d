"""Download paid imagery to any storage, once, completely, with flat memory.

``ClearSkyDownloadCompositeOperator`` downloads a composite for an area and a date;
``ClearSkyDownloadTileOperator`` downloads tiles and minitiles by GUID. Both share one machinery:

1. settings validated before any request (bad input fails at once, without retries);
2. the final file name is known before paying (a template, or a deterministic default), so an existing,
   complete file (size and checksum recorded in its sidecar) is returned without any request: a retry or
   a re-run never pays twice;
3. account limits (``MaxCompositeAreaKm2``, ``MaxTotalBands``) and, optionally, the processing-unit
   estimate are checked before the download;
4. the bytes stream in chunks to a temporary name next to the final one and are moved into place only
   when ``Content-Length`` bytes arrived; a sidecar ``<file>.json`` (settings, order GUID, SHA-256, size,
   attribution notices) and, optionally, a STAC Item ``<file>.stac.json`` are written beside the file.

See ``docs/operators-download.md``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import AirflowFailException, BaseOperator, mask_secret
from airflow_provider_clearsky.exceptions import (
    ClearSkyError,
    InvalidRequestError,
    LimitExceededError,
    RateLimitedError,
    RetryableTaskError,
    ServerError,
    TransportError,
)
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.operators import _atomic_writer as writing
from airflow_provider_clearsky.operators import _download_metadata as meta
from airflow_provider_clearsky.operators import _download_transfer as transfer
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators import _storage_leftovers as leftovers
from airflow_provider_clearsky.utils.deprecation import renamed_argument

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import AccountInfo, CompositeEstimate, ImageryRequest

# Model field -> operator argument, so error messages name what the DAG author wrote.
_FIELD_ARGUMENTS = {
    "wkt": "wkt",
    "geo_json": "geojson",
    "date": "date",
    "model": "model",
    "satellite_constellations": "satellite_constellations",
    "resolution": "resolution",
    "epsg_projection": "epsg",
    "bandnames": "bands",
    "data_type": "data_type",
    "pixel_selection_mode": "pixel_selection",
    "utm_data_selection_mode": "utm_mode",
    "allow_partial_image": "allow_partial",
    "level": "level",
    "harmonize": "harmonize",
    "utm_grid_force_pixel_resolution_size": "force_pixel_resolution",
    "old_pixel_selection_mode": "old_pixel_selection",
    "clip_reflectance": "clip_reflectance",
    "tile_guid": "tile_guid",
    "mini_tile_guid": "minitile_guid",
}
# Keyed by the field's casing-free spelling: errors name fields by their PascalCase aliases.
_ARGUMENT_NAMES = {field.replace("_", ""): argument for field, argument in _FIELD_ARGUMENTS.items()}
_VERIFY_MODES = ("checksum", "size")
#: Without an execution_timeout, a temporary object of a remote destination older than this is a dead
#: writer's leftover (local temporaries are told apart by their lock, whatever their age).
DEFAULT_STALE_AFTER = dt.timedelta(hours=24)


@dataclass
class _Target:
    """One file to produce: its request, its name and what is known about it so far."""

    kind: str  # composite | tile | minitile
    request: ImageryRequest
    settings: dict[str, Any]
    key: str
    guid: str | None = None
    final: ObjectStoragePath | None = None
    uri: str = ""
    skipped: bool = False
    result: dict[str, Any] = field(default_factory=dict)


def _invalid(error: InvalidRequestError, prefix: str = "invalid download settings") -> AirflowFailException:
    parts = []
    for location, messages in error.field_errors.items():
        head = location.split(".", 1)[0]
        name = _ARGUMENT_NAMES.get(head.replace("_", "").lower(), head)
        parts.append(f"{name}: {' '.join(messages)}")
    detail = "; ".join(parts) if parts else error.message
    return AirflowFailException(f"{prefix}: {detail}")


def _api_failure(error: ClearSkyError, what: str) -> Exception:
    """Transient errors are raised for Airflow to retry; anything else fails the task for good."""
    if isinstance(error, RetryableTaskError):  # already says what happened and that a retry helps
        return error
    if isinstance(error, (RateLimitedError, ServerError, TransportError)):
        return RetryableTaskError(f"{what} failed, will be retried: {error}")
    return AirflowFailException(f"{what} failed: {error}")


def _limit_refusal(error: LimitExceededError, kind: str) -> AirflowFailException:
    """Fail for good when the API refused a request above the account's limits (codes 1004/1005).

    Nothing was produced or charged then, and no retry can help: the message names the argument to change.
    """
    if error.error_code == 1005:
        return AirflowFailException(
            f"bands: the API refused the request (MaxTotalBands, code 1005: {error.message}); request fewer bands "
            "(e.g. split into several downloads). Nothing was downloaded or paid."
        )
    argument = "wkt/geojson" if kind == "composite" else f"{kind}_guid"
    return AirflowFailException(
        f"{argument}: the API refused the request (MaxCompositeAreaKm2, code {error.error_code}: {error.message}); "
        "split the area into smaller parts. Nothing was downloaded or paid."
    )


def _as_int(name: str, value: Any) -> Any:
    """Templated numbers arrive as text; turn ``"10"`` into ``10`` (anything else is left to validation)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def _date_text(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # its UTC date, never the date of its own time zone
        return (value.astimezone(dt.timezone.utc) if value.tzinfo is not None else value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _ClearSkyDownloadOperator(BaseOperator):
    """Shared machinery of the download operators (not for direct use)."""

    _kind_label: ClassVar[str] = "download"
    template_fields: Sequence[str] = (
        "date",
        "destination",
        "filename",
        "resolution",
        "epsg",
        "bands",
        "data_type",
        "pixel_selection",
        "utm_mode",
        "model",
        "satellite_constellations",
        "order_guid",
        "order_details",
        "upload_url",
        "clearsky_conn_id",
    )
    ui_color = "#cfe8fc"
    operator_extra_links = (ClearSkyOrderLink(),)

    def __init__(
        self,
        *,
        date: Any,
        destination: str | None = None,
        filename: str | None = None,
        resolution: int | str = 10,
        epsg: int | str = 47000,
        bands: str | Sequence[str] = "all",
        data_type: str = "INT16",
        pixel_selection: str = "intersect",
        utm_mode: str = "combined_utm",
        model: str = "Stratus2",
        satellite_constellations: str | Sequence[str] | None = None,
        allow_partial: bool = False,
        level: int | None = None,
        harmonize: bool | None = None,
        force_pixel_resolution: bool = True,
        old_pixel_selection: bool = False,
        order_guid: str | None = None,
        order_details: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        verify_existing: str = "checksum",
        write_stac: bool = True,
        upload_url: str | None = None,
        chunk_size: int | None = None,
        clearsky_conn_id: str = "clearsky_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.date = date
        self.destination = destination
        self.filename = filename
        self.resolution = resolution
        self.epsg = epsg
        self.bands = bands
        self.data_type = data_type
        self.pixel_selection = pixel_selection
        self.utm_mode = utm_mode
        self.model = model
        self.satellite_constellations = satellite_constellations
        self.allow_partial = allow_partial
        self.level = level
        self.harmonize = harmonize
        self.force_pixel_resolution = force_pixel_resolution
        self.old_pixel_selection = old_pixel_selection
        self.order_guid = order_guid
        self.order_details = order_details
        self.overwrite = overwrite
        self.verify_existing = verify_existing
        self.write_stac = write_stac
        self.upload_url = upload_url
        self.chunk_size = chunk_size
        self.clearsky_conn_id = clearsky_conn_id

    # ------------------------------------------------------------------ secrets

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Any,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        # Register the rendered signed URL with the secrets masker before Airflow stores rendered fields,
        # so it shows as *** in the UI, the logs and anything else that is redacted.
        if parent is self:
            self._mask_upload_url()

    def _mask_upload_url(self) -> None:
        if isinstance(self.upload_url, str) and self.upload_url:
            mask_secret(self.upload_url)

    # ------------------------------------------------------------------ what subclasses provide

    def _targets(self) -> list[_Target]:
        raise NotImplementedError

    def _returns_list(self) -> bool:
        return False

    def _check_limits(self, targets: list[_Target], account: AccountInfo) -> None:
        """Bands above ``MaxTotalBands`` fail before any download request."""
        limit = account.max_total_bands
        for target in targets:
            count = target.request.band_count
            if limit is not None and count > limit:
                raise AirflowFailException(
                    f"bands: {target.request.bandnames!r} asks for {count} bands but the account allows "
                    f"MaxTotalBands={limit} per request; request fewer bands (e.g. split into several downloads)"
                )

    def _estimate(self, hook: ClearSkyHook, target: _Target, account: AccountInfo | None) -> CompositeEstimate | None:
        return None

    # ------------------------------------------------------------------ shared helpers for subclasses

    def _settings_kwargs(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "date": _date_text(self.date),
            "model": self.model,
            "resolution": _as_int("resolution", self.resolution),
            "epsg_projection": _as_int("epsg", self.epsg),
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

    def _target(self, kind: str, request: ImageryRequest, guid: str | None = None) -> _Target:
        settings = request.estimate_payload()  # never contains the upload URL
        return _Target(kind=kind, request=request, settings=settings, key=meta.request_key(settings), guid=guid)

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> str | list[str]:
        self._mask_upload_url()
        self._check_arguments()
        targets = self._targets()
        if self.upload_url:
            return self._execute_upload(targets)

        assert self.destination is not None
        try:
            folder = storage.storage_path(str(self.destination))
        except Exception as error:  # unknown protocol, bad URL, missing fsspec implementation
            raise AirflowFailException(
                f"destination: {self.destination!r} is not a usable storage path ({type(error).__name__}: {error}); "
                "pass a local folder, file://, memory:// or an fsspec URL such as s3://conn_id@bucket/prefix"
            ) from None
        for target in targets:
            target.final = folder / self._file_name(target, several=len(targets) > 1)
            target.uri = storage.uri_of(target.final)

        pending = [target for target in targets if not self._already_downloaded(target)]
        if pending:
            self._download_all(pending)
        uris = [target.uri for target in targets]
        self._written_uris = uris  # for OpenLineage, after the task
        self._annotate_outlets(context, targets)
        self._record(context, targets)
        return uris if self._returns_list() or len(uris) != 1 else uris[0]

    def _check_arguments(self) -> None:
        if self.verify_existing not in _VERIFY_MODES:
            raise AirflowFailException(
                f"verify_existing: must be one of {', '.join(_VERIFY_MODES)}, not {self.verify_existing!r}"
            )
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size < 4096):
            raise AirflowFailException(
                f"chunk_size: must be None (as received, fastest) or at least 4096 bytes, not {self.chunk_size!r}"
            )
        if self.upload_url and self.destination:
            raise AirflowFailException(
                "destination and upload_url: give one of them; with upload_url the API writes the file itself"
            )
        if not self.upload_url and not self.destination:
            raise AirflowFailException(
                "destination: required (a local folder, file://, memory:// or any fsspec URL, e.g. "
                "'s3://aws_default@bucket/imagery/{{ ds }}'), unless upload_url is given"
            )
        if self.upload_url and not str(self.upload_url).lower().startswith(("https://", "http://")):
            raise AirflowFailException("upload_url: must be an http(s) URL (a signed URL the API can PUT to)")
        if self.destination is not None and not self.upload_url:
            self._check_destination_text(self.destination)
        if self.order_guid is not None:
            from airflow_provider_clearsky.models.orders import order_guid

            try:
                self.order_guid = order_guid(self.order_guid)
            except ValueError as error:
                raise AirflowFailException(f"{error}; or leave order_guid unset (a literal None)") from None
        if self.order_details is not None:
            self._check_order_details()

    def _check_order_details(self) -> None:
        """Take the order's GUID from the record the run already has, or check it names ``order_guid``'s order."""
        from airflow_provider_clearsky.models.orders import order_guid

        details = self.order_details
        guid = details.get("TaskOrderGuid") if isinstance(details, Mapping) else None
        if not isinstance(guid, str):
            raise AirflowFailException(
                "order_details: must be the order record ClearSkyOrderStatusSensor returns (a mapping with "
                f"TaskOrderGuid, e.g. wait_for_order.output), not {type(details).__name__}; or leave it unset"
            )
        try:
            guid = order_guid(guid, "order_details' TaskOrderGuid")
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
        if self.order_guid is None:
            self.order_guid = guid
        elif str(self.order_guid).lower() != guid.lower():
            raise AirflowFailException(
                f"order_details: it is the record of order {guid} but order_guid is {self.order_guid}; pass the "
                "same order's record, or leave order_details unset"
            )

    @staticmethod
    def _check_destination_text(destination: Any) -> None:
        """Refuse, before paying, a destination a template rendered from nothing.

        ``"None"``, ``""`` or a ``None`` folder would be paid for and written to the worker's current directory.
        """
        if not isinstance(destination, (str, os.PathLike)):
            raise AirflowFailException(
                f"destination: must be a folder path or URL as text, not {type(destination).__name__}"
            )
        text = os.fspath(destination).strip()
        parts = [part.strip().lower() for part in text.split("://", 1)[-1].split("/")]
        if not text or any(part in ("none", "null") for part in parts) or "{{" in text or "{%" in text:
            raise AirflowFailException(
                f"destination: {text!r} looks like a template that rendered nothing (a 'None' or empty part, or an "
                "unrendered template); give the folder to write to, e.g. '/data/imagery/{{ ds }}' or "
                "'s3://aws_default@bucket/imagery'. Nothing was downloaded or paid."
            )

    def _file_name(self, target: _Target, *, several: bool) -> str:
        if not self.filename:
            return meta.default_filename(target.kind, target.settings, target.key, target.guid)
        fields = meta.filename_fields(target.kind, target.settings, target.key, target.guid)
        try:
            name = str(self.filename).format_map(fields)
        except (KeyError, IndexError, ValueError) as error:
            raise AirflowFailException(
                f"filename: {self.filename!r} uses an unknown placeholder ({error}); available: "
                f"{', '.join('{' + k + '}' for k in fields)}"
            ) from None
        name = name.strip().lstrip("/")
        if not name or name.endswith("/") or ".." in name.split("/"):
            raise AirflowFailException(f"filename: {self.filename!r} must name a file inside destination")
        if several and "{guid}" not in str(self.filename) and "{key}" not in str(self.filename):
            raise AirflowFailException(
                "filename: several files are downloaded, so the template must contain {guid} or {key}"
            )
        return name

    # ------------------------------------------------------------------ never twice

    def _already_downloaded(self, target: _Target) -> bool:
        """Tell whether the final file is a complete download of this very request (nothing is sent then)."""
        assert target.final is not None
        if not storage.exists(target.final):
            return self._finish_kept(target)
        if self.overwrite:
            self.log.info("%s exists; overwrite=True, so it will be downloaded again (and paid again)", target.uri)
            return False
        sidecar_path = target.final.parent / (target.final.name + meta.SIDECAR_SUFFIX)
        document = storage.read_json(sidecar_path)
        ok, why = meta.sidecar_matches(document, target.key)
        if ok:
            assert document is not None
            size = storage.size_of(target.final)
            if size != document["size"]:
                ok, why = False, f"its size ({size} bytes) differs from the sidecar's ({document['size']} bytes)"
            elif self.verify_existing == "checksum" and storage.sha256_of(target.final) != document["sha256"]:
                ok, why = False, "its SHA-256 differs from the sidecar's"
        if not ok or document is None:
            raise AirflowFailException(
                f"{target.uri} already exists but {why}, so it is not known to be a complete download of this "
                "request. Nothing was downloaded or paid. Set overwrite=True to replace it, or choose another "
                "destination or filename."
            )
        self.log.info(
            "%s is already downloaded and complete (%d bytes, SHA-256 %s...): skipping the request, no processing "
            "units spent",
            target.uri,
            document["size"],
            document["sha256"][:16],
        )
        target.skipped = True
        target.result = document
        return True

    # ------------------------------------------------------------------ paying

    def _hook(self) -> ClearSkyHook:
        from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

        return ClearSkyHook(self.clearsky_conn_id)

    def _needs_account(self, targets: list[_Target]) -> bool:
        """Whether the account's limits must be read before paying.

        One transfer needs no look: the API refuses a request above ``MaxCompositeAreaKm2`` or ``MaxTotalBands``
        itself (codes 1004/1005) before producing or charging anything. Several transfers in one task are
        checked all at once first, so a later one's refusal cannot come after earlier ones were paid.
        """
        return len(targets) > 1

    def _prepare(self, hook: ClearSkyHook, targets: list[_Target]) -> tuple[AccountInfo | None, dict[str, Any]]:
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
        # The order as the run already read it, when its record carries notices; else its details, read once.
        # (A deferred wait's record comes from the order list, which may leave the details' notices out.)
        order_notices = meta.notices("order", self.order_details) if self.order_details is not None else {}
        if not order_notices and self.order_guid:
            order_notices = self._order_notices(hook, str(self.order_guid))
        notices.update(order_notices)
        return account, notices

    def _order_notices(self, hook: ClearSkyHook, order_guid: str) -> dict[str, Any]:
        """Attribution or provenance fields of the order's details (free call), passed through unchanged."""
        try:
            order = hook.get_order(order_guid)
        except ClearSkyError as error:
            self.log.warning("could not read order %s for its attribution notices: %s", order_guid, error)
            return {}
        return meta.notices("order", order.model_extra)

    def _download_all(self, targets: list[_Target]) -> None:
        with self._hook() as hook:
            account, notices = self._prepare(hook, targets)
            limit = hook.settings.max_concurrent_connections
            if account is not None and account.max_concurrent_connections:
                limit = min(limit, account.max_concurrent_connections)
            slots = transfer.connection_slots(self.clearsky_conn_id, hook.settings.base_url, limit)
            for target in targets:
                with slots:
                    self._download_one(hook, target, notices)

    def _open(self, hook: ClearSkyHook, target: _Target) -> Any:
        from airflow_provider_clearsky.models import GridImageryRequest

        if isinstance(target.request, GridImageryRequest):
            return hook.stream_tile(target.request)
        return hook.stream_composite(target.request)

    def _download_one(self, hook: ClearSkyHook, target: _Target, notices: dict[str, Any]) -> None:
        assert target.final is not None
        label = target.guid or target.settings.get("Date")
        self._remove_stale_temporaries(target)
        paid = False
        try:
            # Everything that can find the destination unwritable happens before the paid request.
            storage.check_free_space(target.final.parent, self._expected_bytes(target))
            with writing.AtomicWriter(target.final) as writer:
                self.log.info("Downloading ClearSKY %s %s to %s", target.kind, label, target.uri)
                started_at = dt.datetime.now(dt.timezone.utc)
                started = time.monotonic()
                paid = True
                with self._open(hook, target) as download:
                    if download.uploaded:
                        raise AirflowFailException("the API answered 201 (uploaded) although no upload_url was given")
                    total = download.content_length if download.exact_length else None
                    storage.check_free_space(target.final.parent, total)
                    progress = transfer.Progress(self.log, target.final.name, total, started=started)
                    transfer.pump(download.iter_bytes(self.chunk_size), writer.write, progress)
                    writer.finish(total)
                    progress.finish()
                    document = meta.sidecar_document(
                        kind=target.kind,
                        uri=target.uri,
                        filename=target.final.name,
                        size=writer.size,
                        sha256=writer.sha256,
                        key=target.key,
                        settings=target.settings,
                        order_guid=str(self.order_guid) if self.order_guid else None,
                        source_filename=download.filename,
                        content_type=download.content_type,
                        attribution={**notices, **meta.notices("header", dict(download.headers))},
                        estimate=target.result.get("estimate"),
                        downloaded_at=started_at,
                        duration_seconds=time.monotonic() - started,
                        provider_version=_provider_version(),
                    )
                self._commit_with_metadata(target, writer, document)
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

    def _commit_with_metadata(self, target: _Target, writer: writing.AtomicWriter, document: dict[str, Any]) -> None:
        """Write the sidecar and STAC first (a file at the final name always has its sidecar), then the file.

        If the metadata cannot be written, the complete, paid bytes are kept beside the final name and a later
        try writes only the metadata.
        """
        assert target.final is not None
        try:
            self._write_metadata(target, document)
        except Exception as error:
            storage.remove(target.final.parent / (target.final.name + meta.SIDECAR_SUFFIX))
            kept = writer.keep(target.key)
            raise RetryableTaskError(
                f"{target.uri}: the download is complete ({writer.size} bytes, SHA-256 {writer.sha256[:16]}...) and "
                f"kept as {kept.name}, but its metadata could not be written ({type(error).__name__}: {error}). "
                "The next try (or a re-run) writes only the metadata and moves the file into place; nothing is paid "
                "again."
            ) from None
        writer.commit()

    def _finish_kept(self, target: _Target) -> bool:
        """Finish a complete download an earlier try kept because its metadata failed.

        Verify it, write the metadata and move it into place, without any request (True), or say there is
        none (False).
        """
        assert target.final is not None
        found = leftovers.find_kept(target.final, target.key)
        if found is None:
            return False
        kept, size, sha256 = found
        if storage.size_of(kept) != size or storage.sha256_of(kept) != sha256:
            self.log.warning("%s does not match the size and checksum in its name; ignoring it", kept.name)
            return False
        document = meta.sidecar_document(
            kind=target.kind,
            uri=target.uri,
            filename=target.final.name,
            size=size,
            sha256=sha256,
            key=target.key,
            settings=target.settings,
            order_guid=str(self.order_guid) if self.order_guid else None,
            source_filename=None,
            content_type=None,
            attribution={},
            estimate=None,
            downloaded_at=dt.datetime.now(dt.timezone.utc),
            duration_seconds=0.0,
            provider_version=_provider_version(),
        )
        self._write_metadata(target, document)
        storage.move(kept, target.final)
        self.log.info(
            "%s: an earlier try downloaded and paid it completely but could not write its metadata; wrote the "
            "metadata and moved it into place, no request, nothing paid",
            target.uri,
        )
        target.skipped = True
        target.result = document
        return True

    def _remove_stale_temporaries(self, target: _Target) -> None:
        assert target.final is not None
        timeout = self.execution_timeout
        stale_after = timeout.total_seconds() if timeout else DEFAULT_STALE_AFTER.total_seconds()
        try:
            removed = leftovers.remove_stale_temporaries(target.final, stale_after)
        except Exception as error:  # cleaning is a courtesy: it never stops a download
            self.log.warning("could not look for stale temporaries of %s: %s", target.uri, error)
            return
        if removed:
            self.log.info("Removed what killed earlier writers of %s left: %s", target.uri, ", ".join(removed))

    def _expected_bytes(self, target: _Target) -> int | None:
        """Return the raster's uncompressed size from the estimate's area, when an estimate was made."""
        area = (target.result.get("estimate") or {}).get("AreaEstimateKm2")
        resolution = target.settings.get("Resolution")
        if not isinstance(area, (int, float)) or not isinstance(resolution, int) or resolution <= 0:
            return None
        sample = 1 if str(target.settings.get("DataType", "")).upper() == "UINT8" else 2
        return int(area * 1e6 / resolution**2 * target.request.band_count * sample)

    def _write_metadata(self, target: _Target, document: dict[str, Any]) -> None:
        assert target.final is not None
        parent, name = target.final.parent, target.final.name
        storage.write_json_atomically(parent / (name + meta.SIDECAR_SUFFIX), document)
        if self.write_stac:
            geometry = target.settings.get("GeoJson") or self._geometry_of(target)
            item = meta.stac_item(
                item_id=name.rsplit(".", 1)[0],
                filename=name,
                date=str(target.settings.get("Date")),
                geometry=geometry,
                sidecar=document,
            )
            storage.write_json_atomically(parent / (name + meta.STAC_SUFFIX), item)

    def _geometry_of(self, target: _Target) -> dict[str, Any] | None:
        wkt = target.settings.get("Wkt")
        if not wkt:
            return None
        from airflow_provider_clearsky.models.geometry import imagery_geojson

        return imagery_geojson(wkt)

    # ------------------------------------------------------------------ upload mode

    def _execute_upload(self, targets: list[_Target]) -> str | list[str]:
        """Have the API PUT each file to ``upload_url`` (201, no body); the URL is never returned or logged."""
        host = urlsplit(str(self.upload_url)).hostname or "?"
        described = []
        with self._hook() as hook:
            self._prepare(hook, targets)
            for target in targets:
                try:
                    with self._open(hook, target) as download:
                        if not download.uploaded:
                            raise AirflowFailException(
                                f"the API answered {download.status_code} with a file instead of writing it to "
                                "upload_url; nothing was saved"
                            )
                except LimitExceededError as error:
                    raise _limit_refusal(error, target.kind) from None
                except ClearSkyError as error:
                    raise _api_failure(error, f"uploading {target.kind} via upload_url") from None
                label = target.guid or target.settings.get("Date")
                text = f"{target.kind} {label} uploaded to {host} via upload_url (URL redacted)"
                self.log.info("%s", text)
                described.append(text)
        return described if self._returns_list() or len(described) != 1 else described[0]

    # ------------------------------------------------------------------ lineage

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Return the files written (or found complete) as OpenLineage outputs, and the order as input.

        Upload mode reports no output: the signed URL is a secret, and its host alone names no dataset.
        """
        from airflow_provider_clearsky.utils import openlineage

        inputs = []
        if self.order_guid:
            base_url = self._hook().settings.base_url
            inputs.append(openlineage.order_dataset_name(base_url, str(self.order_guid)))
        outputs = [openlineage.file_dataset_name(uri) for uri in getattr(self, "_written_uris", [])]
        return openlineage.operator_lineage(inputs, outputs)

    # ------------------------------------------------------------------ what the UI shows

    def _record(self, context: Context, targets: list[_Target]) -> None:
        """Record the files for the ClearSKY view, and store the order link when the task knows its order."""
        guid = str(self.order_guid) if self.order_guid else None
        files = [records.file_entry(target.result, target.skipped) for target in targets]
        records.push(context, "files", self.clearsky_conn_id, guid, files=files)
        if guid:
            ClearSkyOrderLink.persist(context, self._hook().settings.order_url(guid))

    # ------------------------------------------------------------------ assets

    def _annotate_outlets(self, context: Context, targets: list[_Target]) -> None:
        """Put the file URIs and checksums on the asset events of this task's Asset outlets."""
        if not self.outlets:
            return
        try:
            from airflow.sdk import Asset
        except ImportError:  # pragma: no cover - every supported Airflow has it
            return
        events = context.get("outlet_events")
        if events is None:
            return
        files = [
            {"uri": t.uri, "sha256": t.result.get("sha256"), "size": t.result.get("size"), "skipped": t.skipped}
            for t in targets
        ]
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                events[outlet].extra["clearsky_files"] = files  # type: ignore[assignment]


def _provider_version() -> str:
    from airflow_provider_clearsky import __version__

    return __version__


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
        too, must match); when it carries attribution notices they go to the sidecar without reading the order
        again (a record without any, e.g. from a deferred wait's order list, still has the details read).
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
    :param chunk_size: re-chunk the body into pieces of this many bytes; default ``None`` writes chunks as
        they arrive from the network (fastest: no extra copies; memory stays flat either way).
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

    def _targets(self) -> list[_Target]:
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
        return [self._target("composite", request)]

    def _max_units(self) -> float | None:
        value = self.max_processing_units
        if value is None or value == "":
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isnan(number) or number < 0:
            raise AirflowFailException(f"max_processing_units: must be a number >= 0, not {value!r}")
        return number

    def _check_limits(self, targets: list[_Target], account: AccountInfo) -> None:
        super()._check_limits(targets, account)
        limit = account.max_composite_area_km2
        if limit is None:
            return
        for target in targets:
            geometry = target.settings.get("GeoJson") or self._geometry_of(target)
            area = meta.area_km2(geometry) if geometry else 0.0
            if area > limit:
                raise AirflowFailException(
                    f"wkt/geojson: the area is about {area:,.1f} km² but the account allows "
                    f"MaxCompositeAreaKm2={limit:,.0f} per composite; split the area into smaller parts"
                )

    def _needs_account(self, targets: list[_Target]) -> bool:
        # An estimate is checked against the account's balance and area limit before paying.
        return super()._needs_account(targets) or self._estimating()

    def _estimating(self) -> bool:
        return self.estimate_first or self._max_units() is not None

    def _estimate(self, hook: ClearSkyHook, target: _Target, account: AccountInfo | None) -> CompositeEstimate | None:
        ceiling = self._max_units()
        if not self._estimating():
            return None
        assert account is not None  # read whenever an estimate is made (_needs_account)
        try:
            estimate = hook.estimate_composite(target.request)
        except ClearSkyError as error:
            raise _api_failure(error, "estimating the composite") from None
        units, area = estimate.credit_estimate, estimate.area_estimate_km2
        self.log.info("Composite estimate: %s processing units for %s km²", units, area)
        if ceiling is not None:
            if units is None:
                raise AirflowFailException(
                    "max_processing_units is set but the estimate returned no CreditEstimate; not downloading"
                )
            if units > ceiling:
                raise AirflowFailException(
                    f"max_processing_units: the download would cost {units:g} processing units, above the "
                    f"limit of {ceiling:g}; raise max_processing_units or reduce the area/resolution. Nothing was "
                    "downloaded or paid."
                )
        limit = account.max_composite_area_km2
        if area is not None and limit is not None and area > limit:
            raise AirflowFailException(
                f"wkt/geojson: the estimate puts the area at {area:,.1f} km², above MaxCompositeAreaKm2={limit:,.0f}; "
                "split the area into smaller parts"
            )
        balance = account.credit_amount
        if units is not None and balance is not None and units > balance + (account.credit_limit or 0):
            raise AirflowFailException(
                f"the download needs {units:g} processing units but the account has {balance:g} left; top up "
                "processing units or reduce the area/resolution"
            )
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

    @staticmethod
    def _guids(value: str | Sequence[str] | None, argument: str = "tile_guid") -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise AirflowFailException(
                f"{argument}: must be a GUID, a comma-separated text of GUIDs or a list of them (e.g. from "
                f"ClearSkySearchTilesOperator's tile_guids), not {type(value).__name__} {value!r}"
            )
        return [str(item) for item in value]

    def _returns_list(self) -> bool:
        given = [v for v in (self.tile_guid, self.minitile_guid) if v]
        return not (len(given) == 1 and isinstance(given[0], str) and "," not in given[0])

    def _targets(self) -> list[_Target]:
        from airflow_provider_clearsky.models import GridImageryRequest

        wanted = [("tile", g) for g in self._guids(self.tile_guid, "tile_guid")]
        wanted += [("minitile", g) for g in self._guids(self.minitile_guid, "minitile_guid")]
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
            targets.append(self._target(kind, request, guid=request.tile_guid or request.mini_tile_guid))
        return targets
