"""What every download task is, before and after it pays: its arguments, its files and what it reports.

:class:`DownloadOperatorBase` holds the shared arguments, masks the upload URL when templates render, checks
the arguments before any request, names the files before paying, skips a file already downloaded, and
reports the files (XCom, the ClearSKY view, Asset events, OpenLineage). Paying (the requests and what their
failures mean) is the concern of the operators in :mod:`.download`, which implement
:meth:`~DownloadOperatorBase._download_all` and :meth:`~DownloadOperatorBase._execute_upload`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_clearsky import records
from airflow_provider_clearsky._compat import AirflowFailException, BaseOperator, mask_secret
from airflow_provider_clearsky.links import ClearSkyOrderLink
from airflow_provider_clearsky.operators import _download_checks as checks
from airflow_provider_clearsky.operators import _download_commit as commit
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators._download_target import DownloadTarget, file_name

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook
    from airflow_provider_clearsky.models import AccountInfo


class DownloadOperatorBase(BaseOperator):
    """Shared arguments and file handling of the download operators (not for direct use)."""

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

    def _targets(self) -> list[DownloadTarget]:
        raise NotImplementedError

    def _returns_list(self) -> bool:
        return False

    def _check_limits(self, targets: list[DownloadTarget], account: AccountInfo) -> None:
        checks.check_bands(targets, account)

    def _needs_account(self, targets: list[DownloadTarget]) -> bool:
        """Whether the account's limits must be read before paying.

        One transfer needs no look: the API refuses a request above ``MaxCompositeAreaKm2`` or ``MaxTotalBands``
        itself (codes 1004/1005) before producing or charging anything. Several transfers in one task are
        checked all at once first, so a later one's refusal cannot come after earlier ones were paid.
        """
        return len(targets) > 1

    def _download_all(self, targets: list[DownloadTarget]) -> None:
        """Pay for and write each target (every one of them is missing at its final name)."""
        raise NotImplementedError

    def _execute_upload(self, targets: list[DownloadTarget]) -> str | list[str]:
        """Have the API write each target to ``upload_url``; returns what was uploaded, URL redacted."""
        raise NotImplementedError

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> str | list[str]:
        """Download every file not yet complete at its final name; return the URIs (one, or a list)."""
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
            target.final = folder / file_name(self.filename, target, several=len(targets) > 1)
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
        checks.check_transfer_arguments(
            verify_existing=self.verify_existing,
            chunk_size=self.chunk_size,
            destination=self.destination,
            upload_url=self.upload_url,
        )
        self.order_guid = checks.checked_order_guid(self.order_guid)
        if self.order_details is not None:
            self.order_guid = checks.order_guid_of_details(self.order_details, self.order_guid)

    def _already_downloaded(self, target: DownloadTarget) -> bool:
        return commit.already_downloaded(
            target,
            overwrite=self.overwrite,
            verify_existing=self.verify_existing,
            order_guid=self.order_guid,
            write_stac=self.write_stac,
            log=self.log,
        )

    def _hook(self) -> ClearSkyHook:
        from airflow_provider_clearsky.hooks.clearsky import ClearSkyHook

        return ClearSkyHook(self.clearsky_conn_id)

    # ------------------------------------------------------------------ what the task reports

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
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

    def _record(self, context: Context, targets: list[DownloadTarget]) -> None:
        """Record the files for the ClearSKY view, and store the order link when the task knows its order."""
        guid = str(self.order_guid) if self.order_guid else None
        files = [records.file_entry(target.result, target.skipped) for target in targets]
        records.push(context, "files", self.clearsky_conn_id, guid, files=files)
        if guid:
            ClearSkyOrderLink.persist(context, self._hook().settings.order_url(guid))

    def _annotate_outlets(self, context: Context, targets: list[DownloadTarget]) -> None:
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
