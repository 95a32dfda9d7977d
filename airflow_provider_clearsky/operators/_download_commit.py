"""A paid file and its metadata at the final name: never twice, never without its sidecar, never lost.

* **Never twice**: a file already at the final name whose sidecar records this very request, its size and
  its SHA-256 is returned without any request (:func:`already_downloaded`).
* **Metadata first**: the sidecar and the STAC Item are written before the file is moved into place, so a file
  at the final name always has its sidecar (:func:`commit_with_metadata`).
* **Kept-file recovery**: when the metadata cannot be written, the complete, paid bytes are kept beside the
  final name and a later try writes only the metadata, paying nothing (:func:`finish_kept`).
* **Open-upload recovery**: when S3 cannot complete the upload of a paid file whose metadata is written, the
  upload is left open and a later try completes it, paying nothing (:func:`finish_open_upload`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky._compat import AirflowFailException
from airflow_provider_clearsky.exceptions import RetryableTaskError
from airflow_provider_clearsky.operators import _download_metadata as meta
from airflow_provider_clearsky.operators import _storage as storage
from airflow_provider_clearsky.operators import _storage_leftovers as leftovers
from airflow_provider_clearsky.operators import _storage_sinks as sinks
from airflow_provider_clearsky.operators._download_target import DownloadTarget, geometry_of

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_clearsky.operators._atomic_writer import AtomicWriter
    from airflow_provider_clearsky.operators._download_transfer import Log

#: Without an execution_timeout, a temporary object of a remote destination older than this is a dead
#: writer's leftover (local temporaries are told apart by their lock, whatever their age).
DEFAULT_STALE_AFTER = dt.timedelta(hours=24)


def provider_version() -> str:
    """Return this package's version, which every sidecar records."""
    from airflow_provider_clearsky import __version__

    return __version__


def sidecar(
    target: DownloadTarget,
    *,
    size: int,
    sha256: str,
    order_guid: str | None,
    downloaded_at: dt.datetime,
    duration_seconds: float = 0.0,
    source_filename: str | None = None,
    content_type: str | None = None,
    attribution: Mapping[str, Any] | None = None,
    estimate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the sidecar document of the target's file."""
    assert target.final is not None
    return meta.sidecar_document(
        kind=target.kind,
        uri=target.uri,
        filename=target.final.name,
        size=size,
        sha256=sha256,
        key=target.key,
        settings=target.settings,
        order_guid=order_guid,
        source_filename=source_filename,
        content_type=content_type,
        attribution=attribution or {},
        estimate=estimate,
        downloaded_at=downloaded_at,
        duration_seconds=duration_seconds,
        provider_version=provider_version(),
    )


def already_downloaded(
    target: DownloadTarget,
    *,
    overwrite: bool,
    verify_existing: str,
    order_guid: str | None,
    write_stac: bool,
    log: Log,
) -> bool:
    """Tell whether the final file is a complete download of this very request (nothing is sent then)."""
    assert target.final is not None
    if not storage.exists(target.final):
        return finish_kept(target, order_guid=order_guid, write_stac=write_stac, log=log) or finish_open_upload(
            target, overwrite=overwrite, log=log
        )
    if overwrite:
        if finish_open_upload(target, overwrite=True, log=log):  # the paid bytes of an earlier try of this overwrite
            return True
        log.info("%s exists; overwrite=True, so it will be downloaded again (and paid again)", target.uri)
        return False
    document = storage.read_json(target.sidecar_path)
    if document is None and finish_kept(target, order_guid=order_guid, write_stac=write_stac, log=log):
        return True  # a kept copy of this download finishes it (on S3 a keep copies, then deletes the final key)
    ok, why = meta.sidecar_matches(document, target.key)
    if ok:
        assert document is not None
        size = storage.size_of(target.final)
        if size != document["size"]:
            ok, why = False, f"its size ({size} bytes) differs from the sidecar's ({document['size']} bytes)"
        elif verify_existing == "checksum" and storage.sha256_of(target.final) != document["sha256"]:
            ok, why = False, "its SHA-256 differs from the sidecar's"
    if not ok or document is None:
        raise AirflowFailException(
            f"{target.uri} already exists but {why}, so it is not known to be a complete download of this "
            "request. Nothing was downloaded or paid. Set overwrite=True to replace it (a new download, paid "
            "again), or choose another destination or filename."
        )
    log.info(
        "%s is already downloaded and complete (%d bytes, SHA-256 %s...): skipping the request, no processing "
        "units spent",
        target.uri,
        document["size"],
        document["sha256"][:16],
    )
    target.skipped = True
    target.result = document
    return True


def write_metadata(target: DownloadTarget, document: dict[str, Any], *, write_stac: bool) -> None:
    """Write the sidecar and, with ``write_stac``, the STAC Item beside the final name."""
    assert target.final is not None
    parent, name = target.final.parent, target.final.name
    storage.write_json_atomically(target.sidecar_path, document)
    if write_stac:
        item = meta.stac_item(
            item_id=name.rsplit(".", 1)[0],
            filename=name,
            date=str(target.settings.get("Date")),
            geometry=geometry_of(target),
            sidecar=document,
        )
        storage.write_json_atomically(parent / (name + meta.STAC_SUFFIX), item)


def commit_with_metadata(
    target: DownloadTarget, writer: AtomicWriter, document: dict[str, Any], *, write_stac: bool
) -> None:
    """Write the sidecar and STAC first (a file at the final name always has its sidecar), then the file.

    If the metadata cannot be written, the complete, paid bytes are kept beside the final name and a later
    try writes only the metadata.
    """
    try:
        write_metadata(target, document, write_stac=write_stac)
    except Exception as error:
        storage.remove(target.sidecar_path)
        kept = _keep(target, writer, error)
        raise RetryableTaskError(
            f"{target.uri}: the download is complete ({writer.size} bytes, SHA-256 {writer.sha256[:16]}...) and "
            f"kept as {kept.name}, but its metadata could not be written ({type(error).__name__}: {error}). "
            "The next try (or a re-run) writes only the metadata and moves the file into place; nothing is paid "
            "again."
        ) from None
    try:
        writer.commit()
    except sinks.UploadLeftOpenError as error:
        raise RetryableTaskError(
            f"{target.uri}: the download is complete and paid ({writer.size} bytes, SHA-256 {writer.sha256[:16]}...) "
            f"and its metadata is written, but {error}. The next try (or a re-run) completes that upload (it lists "
            "the key's open uploads: s3:ListBucketMultipartUploads); nothing is paid again."
        ) from None


def _keep(target: DownloadTarget, writer: AtomicWriter, metadata_error: Exception) -> ObjectStoragePath:
    """Keep the paid bytes under their ``.complete`` name, or fail saying exactly where they are."""
    try:
        return writer.keep(target.key)
    except sinks.UploadLeftOpenError as error:
        raise AirflowFailException(
            f"{target.uri}: the download is complete and paid ({writer.size} bytes, SHA-256 {writer.sha256}), but "
            f"neither its metadata ({type(metadata_error).__name__}: {metadata_error}) could be written nor could "
            f"{error}. Without a sidecar a re-run cannot verify those bytes, so it would download and pay again; a "
            "later run of this download also aborts open uploads of its key once they are older than the task's "
            "execution_timeout (24 h without one). To keep the bytes, complete that upload yourself (`aws s3api "
            "list-parts`, then `aws s3api complete-multipart-upload`) and check its size and SHA-256 against the "
            "above."
        ) from None
    except Exception as error:
        raise AirflowFailException(
            f"{target.uri}: the download is complete and paid ({writer.size} bytes, SHA-256 {writer.sha256}), "
            f"but neither its metadata ({type(metadata_error).__name__}: {metadata_error}) nor a kept copy "
            f"({type(error).__name__}: {error}) could be written. The bytes may be at {target.uri} without a "
            "sidecar; a re-run refuses that file without paying. Check it against the size and SHA-256 above "
            "before deciding to replace it with overwrite=True, which downloads and pays again."
        ) from None


def finish_kept(target: DownloadTarget, *, order_guid: str | None, write_stac: bool, log: Log) -> bool:
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
        log.warning("%s does not match the size and checksum in its name; ignoring it", kept.name)
        return False
    document = sidecar(target, size=size, sha256=sha256, order_guid=order_guid, downloaded_at=dt.datetime.now(dt.UTC))
    write_metadata(target, document, write_stac=write_stac)
    storage.move(kept, target.final)
    log.info(
        "%s: an earlier try downloaded and paid it completely but could not write its metadata; wrote the "
        "metadata and moved it into place, no request, nothing paid",
        target.uri,
    )
    target.skipped = True
    target.result = document
    return True


def finish_open_upload(target: DownloadTarget, *, overwrite: bool, log: Log) -> bool:
    """Complete the S3 upload an earlier try left open after writing the metadata (no request: True).

    Its sidecar, written just after the upload started, names this request, the size and the SHA-256: the
    newest open upload of the final key started by then and holding exactly that many bytes is completed,
    then its SHA-256 is checked whatever ``verify_existing`` says. False when there is no such upload (or the
    destination is not on S3). When the uploads cannot be listed, the task fails rather than pay again for
    bytes that may be waiting there, unless ``overwrite`` asks to pay again.
    """
    assert target.final is not None
    if not sinks.is_multipart_store(target.final):
        return False
    try:
        document = storage.read_json_if_present(target.sidecar_path)
        if document is None or not meta.sidecar_matches(document, target.key)[0]:
            return False
        started = dt.datetime.fromisoformat(str(document["downloaded_at"]).replace("Z", "+00:00"))
        upload_id = sinks.complete_open_upload(target.final, document["size"], started)
    except sinks.UploadsNotListableError as error:
        assert document is not None  # the listing comes after the sidecar was read
        return _unlisted_upload(target, document, error, overwrite=overwrite, log=log)
    except sinks.UploadNotCompletableError as error:
        raise AirflowFailException(
            f"{target.uri}: S3 refuses to complete the open upload that holds this download's paid bytes ({error}), "
            "and trying again will not change that. Nothing was requested or paid. Look at it with `aws s3api "
            "list-parts`; to download and pay again instead, abort it (`aws s3api abort-multipart-upload`) and "
            f"delete {target.sidecar_path.name}."
        ) from None
    except Exception as error:
        raise RetryableTaskError(
            f"{target.uri}: an open upload may hold this download's paid bytes, but S3 cannot tell or complete it "
            f"now ({type(error).__name__}: {error}). The next try tries again; nothing was requested or paid."
        ) from None
    if upload_id is None:
        return False
    if storage.sha256_of(target.final) != document["sha256"]:
        storage.remove(target.sidecar_path)  # a file without sidecar: refused by later runs, never paid for
        raise AirflowFailException(
            f"{target.uri}: completed open upload {upload_id}, whose size matches this download's sidecar, but its "
            "SHA-256 differs from the sidecar's, so it is not known to be this download; the sidecar was removed "
            "and the file left as it is. Nothing was requested or paid. Check the file, then delete it or set "
            "overwrite=True (which downloads and pays again)."
        )
    log.info(
        "%s: an earlier try downloaded and paid it completely but S3 could not complete its upload %s; "
        "completed it now, no request, nothing paid",
        target.uri,
        upload_id,
    )
    target.skipped = True
    target.result = document
    return True


def _unlisted_upload(
    target: DownloadTarget, document: dict[str, Any], error: Exception, *, overwrite: bool, log: Log
) -> bool:
    """Decide what to do when the open uploads that may hold this download's paid bytes cannot be listed."""
    if overwrite:
        log.info(
            "%s: cannot list its open multipart uploads (%s), so none an earlier try may have left is completed "
            "(one would stay open until aborted, e.g. by an AbortIncompleteMultipartUpload lifecycle rule); "
            "overwrite=True downloads and pays again",
            target.uri,
            error,
        )
        return False
    raise AirflowFailException(
        f"{target.uri}: its sidecar says this download was completed and paid ({document['size']} bytes, SHA-256 "
        f"{str(document['sha256'])[:16]}...), but there is no object at its key. An earlier try may have left "
        f"those bytes in an open multipart upload, and this connection cannot list the key's uploads ({error}). "
        "Nothing was requested or paid. Grant s3:ListBucketMultipartUploads and s3:ListMultipartUploadParts "
        "and run again to complete that upload without paying; or, if the object was deleted on purpose, delete "
        f"{target.sidecar_path.name} (or set overwrite=True) to download and pay again."
    )


def remove_stale_temporaries(target: DownloadTarget, execution_timeout: dt.timedelta | None, log: Log) -> None:
    """Remove what killed earlier writers of the target left (a courtesy: it never stops a download)."""
    assert target.final is not None
    timeout = execution_timeout or DEFAULT_STALE_AFTER
    try:
        removed = leftovers.remove_stale_temporaries(target.final, timeout.total_seconds())
    except Exception as error:
        log.warning("could not look for stale temporaries of %s: %s", target.uri, error)
        return
    if removed:
        log.info("Removed what killed earlier writers of %s left: %s", target.uri, ", ".join(removed))
