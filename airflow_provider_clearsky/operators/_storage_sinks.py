"""Sinks: where the bytes of one download go until they are committed at the final name, or dropped.

Local disks: a locked temporary file renamed into place (:class:`LocalSink`). S3: a multipart upload of the
final key, completed only when every byte is in (:class:`MultipartSink`). Other stores (gcs, azure,
``memory://``): a temporary object copied to the final key (:class:`MoveSink`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.operators._storage import (
    MULTIPART_PROTOCOLS,
    filesystem,
    is_local,
    move,
    remove,
    temporary_sibling,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Part size of a multipart upload (S3: at least 5 MiB except the last part).
PART_SIZE = 8 * 1024 * 1024
#: Seconds between attempts to complete a multipart upload (one attempt more than pauses).
COMPLETE_PAUSES = (1.0, 4.0)
#: How far S3's clock may run ahead of the worker's when an upload is matched to the sidecar written after it.
UPLOAD_CLOCK_SKEW = dt.timedelta(minutes=5)
#: S3 error codes with which completing an upload fails whatever the number of attempts.
PERMANENT_COMPLETION_ERRORS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class Sink:
    """Where the bytes of one download go until they are committed (or dropped)."""

    def write(self, chunk: bytes | memoryview) -> None:
        """Write the next ``chunk`` of the download; keeps no reference to it (its buffer is reused)."""
        raise NotImplementedError

    def close(self) -> None:
        """Write out the last bytes: every byte is stored, not yet visible at the final name."""

    def commit(self, final: ObjectStoragePath) -> None:
        """Make the closed download appear at ``final``, whole, at once."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop what was written; never raises for what is already gone."""
        raise NotImplementedError


class FileSink(Sink):
    """A sink that writes through one open file handle (``self._handle``), closed once every byte is in."""

    _handle: Any

    def write(self, chunk: bytes | memoryview) -> None:
        """Write ``chunk`` to the open file (a buffered file copies what it does not write at once)."""
        self._handle.write(chunk)

    def close(self) -> None:
        """Close the file (once; later calls do nothing)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class LocalSink(FileSink):
    """Write a plain buffered file next to the final name, then rename it into place (local disks).

    The file is locked while written, so a later run can tell a dead writer's leftover from a live one. The
    fastest path on a local disk.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        import fcntl

        fs = filesystem(final)
        fs.makedirs(final.parent.path, exist_ok=True)
        fresh = temporary_sibling(final, ".new")  # locked before it gets the name cleaners look at
        self._handle: Any = open(fresh.path, "xb")  # noqa: SIM115 - closed in close/abort
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        self.temporary = temporary_sibling(final)
        try:
            os.rename(fresh.path, self.temporary.path)
        except BaseException:
            self._handle.close()
            remove(fresh)
            raise

    def commit(self, final: ObjectStoragePath) -> None:
        """Rename the temporary file to ``final`` (atomic on one file system)."""
        os.replace(self.temporary.path, final.path)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.close()
            self._handle = None
        remove(self.temporary)


class MoveSink(FileSink):
    """Write a temporary object, copied to the final key once complete and then deleted.

    For object stores without multipart commit (gcs, azure, ``memory://``).
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        fs = filesystem(final)
        fs.makedirs(final.parent.path, exist_ok=True)
        self.temporary = temporary_sibling(final)
        self._handle: Any = fs.open(self.temporary.path, "wb")

    def commit(self, final: ObjectStoragePath) -> None:
        """Copy the temporary object to ``final`` and delete it."""
        move(self.temporary, final)

    def abort(self) -> None:
        """Discard a half-done upload of the temporary object, then delete it."""
        if self._handle is not None:
            with contextlib.suppress(Exception):
                discard = getattr(self._handle, "discard", None)  # drop a half-done upload
                if callable(discard):
                    discard()
                self._handle.close()
            self._handle = None
        remove(self.temporary)


class UploadLeftOpenError(Exception):
    """Every byte is in S3, but the multipart upload could not be completed: it is left open, not aborted."""


class UploadsNotListableError(Exception):
    """The open multipart uploads of a key cannot be listed (no ``s3:ListBucketMultipartUploads``)."""


class UploadNotCompletableError(Exception):
    """S3 refuses to complete an open multipart upload for good (:data:`PERMANENT_COMPLETION_ERRORS`)."""


class MultipartSink(Sink):
    """Write to S3 through a multipart upload to the final key itself.

    Started before anything is paid, completed only when every byte is in (the object then appears whole,
    at once), aborted otherwise. No temporary object, no copy. A completion that keeps failing leaves the
    upload open (:class:`UploadLeftOpenError`): its parts are the paid bytes, which a later run completes
    (:func:`complete_open_upload`) instead of paying again.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self._fs: Any = filesystem(final)
        self._bucket, self._key, _ = self._fs.split_path(final.path)
        answer = self._fs.call_s3("create_multipart_upload", Bucket=self._bucket, Key=self._key)
        self.upload_id: str = answer["UploadId"]
        self._parts: list[dict[str, Any]] = []
        self._buffer = bytearray()
        self._size = 0
        self._left_open = False

    def write(self, chunk: bytes | memoryview) -> None:
        """Buffer a copy of ``chunk``, uploading a part whenever ``PART_SIZE`` bytes are buffered."""
        self._buffer += chunk
        if len(self._buffer) >= PART_SIZE:
            self._upload_part()

    def _upload_part(self) -> None:
        body, self._buffer = bytes(self._buffer), bytearray()
        number = len(self._parts) + 1
        answer = self._fs.call_s3(
            "upload_part", Bucket=self._bucket, Key=self._key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._size += len(body)

    def close(self) -> None:
        """Upload the buffered rest as the last part."""
        if self._buffer or not self._parts:
            self._upload_part()  # the last part may be small; an empty file is one empty part

    def commit(self, final: ObjectStoragePath) -> None:
        """Complete the multipart upload: the object appears at its key, whole.

        An upload's key is fixed when it starts, so committing under another name (a paid file kept because
        its metadata could not be written) completes it at its own key, copies it within S3 and deletes the
        original: a crash in between leaves a file without sidecar at the final key, which a later run refuses
        (never pays for) until someone looks.
        """
        try:
            complete_upload(self._fs, self._bucket, self._key, self.upload_id, self._parts)
        except BaseException as error:  # a task timeout too: the parts are the paid bytes, never aborted now
            self._left_open = True
            if not isinstance(error, Exception):
                raise
            raise UploadLeftOpenError(
                f"multipart upload {self.upload_id} of s3://{self._bucket}/{self._key} holds every byte "
                f"({self._size}) but could not be completed ({type(error).__name__}: {error}); it is left open"
            ) from error
        _, key, _ = self._fs.split_path(final.path)
        if key != self._key:
            self._fs.copy(f"{self._bucket}/{self._key}", final.path)
            self._fs.rm(f"{self._bucket}/{self._key}")
            self._fs.invalidate_cache(final.path)

    def abort(self) -> None:
        """Abort the multipart upload, so S3 keeps (and bills) none of its parts; not one left open on purpose."""
        self._buffer = bytearray()
        if self._left_open:
            return
        with contextlib.suppress(Exception):
            self._fs.call_s3("abort_multipart_upload", Bucket=self._bucket, Key=self._key, UploadId=self.upload_id)


def complete_upload(fs: Any, bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
    """Complete a multipart upload, retrying a failed call (``COMPLETE_PAUSES``).

    A failed call whose object is nevertheless at its key counts as done: S3 may complete an upload and lose
    the answer, and completing it again then fails (``NoSuchUpload``). The object is recognised by its ETag,
    which S3 derives from the parts' ETags.
    """
    expected = multipart_etag(parts)
    for pause in (*COMPLETE_PAUSES, None):
        try:
            fs.call_s3(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            break
        except Exception as error:
            if expected is not None and _etag(fs, bucket, key) == expected:
                # These very bytes are at the key: the answer was lost after success, or an earlier object was
                # identical. Either way the upload's parts are no longer needed.
                with contextlib.suppress(Exception):
                    fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
                break
            if pause is None or s3_error_code(error) in PERMANENT_COMPLETION_ERRORS:
                raise
            time.sleep(pause)
    fs.invalidate_cache(f"{bucket}/{key}")


def s3_error_code(error: BaseException) -> str | None:
    """Return the S3 error code behind an s3fs error (its cause is botocore's ``ClientError``), or None."""
    for candidate in (error, error.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            code = response["Error"].get("Code")
            return None if code is None else str(code)
    return None


def multipart_etag(parts: list[dict[str, Any]]) -> str | None:
    """Return the ETag S3 gives the object these parts complete into, or None if the parts' ETags are not MD5s."""
    try:
        digests = b"".join(bytes.fromhex(str(part["ETag"]).strip('"')) for part in parts)
    except ValueError:
        return None
    return f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'


def _etag(fs: Any, bucket: str, key: str) -> str | None:
    try:
        return str(fs.call_s3("head_object", Bucket=bucket, Key=key)["ETag"])
    except Exception:  # not there (404), or S3 cannot say now
        return None


def is_multipart_store(final: ObjectStoragePath) -> bool:
    """Tell whether ``final`` is written through a multipart upload (S3)."""
    return final.protocol in MULTIPART_PROTOCOLS and hasattr(filesystem(final), "call_s3")


def complete_open_upload(final: ObjectStoragePath, size: int, initiated_by: dt.datetime) -> str | None:
    """Complete the newest open multipart upload of ``final`` started by ``initiated_by`` and holding ``size`` bytes.

    Return its upload id, or None when there is none. Raise :class:`UploadsNotListableError` when S3 denies
    listing the uploads (the caller cannot tell then whether paid bytes wait in one), and
    :class:`UploadNotCompletableError` when S3 refuses to complete the upload for good. The upload a failed
    completion left open (:class:`UploadLeftOpenError`) is found this way by a later run; uploads started
    later (``UPLOAD_CLOCK_SKEW`` allowed for S3's clock) belong to other writers.
    """
    fs: Any = filesystem(final)
    bucket, key, _ = fs.split_path(final.path)
    try:
        uploads = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key).get("Uploads", [])
    except PermissionError as error:
        if s3_error_code(error) == "AccessDenied":  # not an expired token or a skewed clock: those pass
            raise UploadsNotListableError(f"AccessDenied: {error}") from error
        raise
    latest = initiated_by + UPLOAD_CLOCK_SKEW
    candidates = [upload for upload in uploads if upload["Key"] == key and upload["Initiated"] <= latest]
    for upload in sorted(candidates, key=lambda upload: upload["Initiated"], reverse=True):
        parts = _parts_of(fs, bucket, key, upload["UploadId"])
        if sum(part["Size"] for part in parts) == size:
            numbered = [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in parts]
            try:
                complete_upload(fs, bucket, key, upload["UploadId"], numbered)
            except Exception as error:
                code = s3_error_code(error)
                if code in PERMANENT_COMPLETION_ERRORS:
                    raise UploadNotCompletableError(
                        f"multipart upload {upload['UploadId']} of s3://{bucket}/{key}: {code}: {error}"
                    ) from error
                raise
            return str(upload["UploadId"])
    return None


def _parts_of(fs: Any, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        answer = fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)
        parts += answer.get("Parts", [])
        if not answer.get("IsTruncated"):
            return parts
        marker = answer["NextPartNumberMarker"]


def open_sink(final: ObjectStoragePath) -> Sink:
    """Return the sink for ``final``'s store: local file, S3 multipart upload, or temporary object."""
    if is_local(final):
        return LocalSink(final)
    if final.protocol in MULTIPART_PROTOCOLS and hasattr(filesystem(final), "call_s3"):
        return MultipartSink(final)
    return MoveSink(final)
