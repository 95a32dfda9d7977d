"""Where downloads land: destinations through Airflow's ``ObjectStoragePath``, written atomically.

The writer is opened **before** the paid request, so a destination that cannot be written fails before
anything is paid (:class:`DestinationError`). On a local disk the bytes stream to a locked temporary file
next to the final name (``.<name>.<random>.part``), renamed into place once every byte has arrived. On S3
they go into a multipart upload of the final key, completed only then (aborted otherwise): the object
appears whole, at once. Other object stores (gcs, azure, ``memory://``) have no atomic rename: fsspec's
``mv`` copies the finished temporary object to the final key and deletes it. Anything that goes wrong
before the commit removes what was written; what killed writers left is removed by a later run of the same
download (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import shutil
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

LOCAL_PROTOCOLS = ("", "file", "local")
READ_BLOCK = 8 * 1024 * 1024
# Bytes hashed per hand-over to the hashing thread, and how many blocks may wait: memory stays under
# HASH_BLOCK * (HASH_DEPTH + 2) whatever the file size.
HASH_BLOCK = 1024 * 1024
HASH_DEPTH = 8


class DestinationError(Exception):
    """The destination cannot be written (read-only, no permission, full): a retry cannot help."""


#: OSError numbers that mean "this destination cannot take the file", not "try again".
UNWRITABLE_ERRNOS = frozenset(
    {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}
)
#: Below this much free space a local destination is refused before paying, whatever the file's size.
MIN_FREE_BYTES = 64 * 1024
#: Object stores whose multipart upload commits a whole object at once (completed only when every byte is in).
MULTIPART_PROTOCOLS = ("s3", "s3a")
#: Part size of a multipart upload (S3: at least 5 MiB except the last part).
PART_SIZE = 8 * 1024 * 1024


def unwritable(error: BaseException) -> bool:
    """Tell errors that say the destination cannot be written (no retry can fix them)."""
    return isinstance(error, PermissionError) or (isinstance(error, OSError) and error.errno in UNWRITABLE_ERRNOS)


def storage_path(location: str) -> ObjectStoragePath:
    """Return an ``ObjectStoragePath`` for a destination; a plain local path is made absolute first.

    ``s3://aws_default@bucket/key`` style URLs carry the Airflow connection id, as everywhere in Airflow.
    """
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = os.path.abspath(os.path.expanduser(location))
    try:
        return ObjectStoragePath(location)
    except TypeError:
        # Airflow 3.0's ObjectStoragePath refuses every URL scheme under universal-pathlib 0.3
        # ("detected protocol ... incompatible"). Plain UPath has the same path API over fsspec; the
        # ``scheme://conn_id@bucket`` connection is kept as a storage option and ``_fs`` attaches the store
        # through Airflow with it, as ObjectStoragePath would.
        from upath import UPath

        parts = urlsplit(location)
        conn_id, _, host = parts.netloc.rpartition("@")
        if not conn_id:
            return cast("ObjectStoragePath", UPath(location))
        plain = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return cast("ObjectStoragePath", UPath(plain, conn_id=conn_id))


def is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in LOCAL_PROTOCOLS


def uri_of(path: ObjectStoragePath) -> str:
    """Return the URI given to XCom: ``file:///abs/path`` for local files, the store's URL otherwise."""
    if is_local(path):
        return f"file://{path.path}"
    return str(path)


def _fs(path: ObjectStoragePath) -> AbstractFileSystem:
    """Return the path's file system: Airflow's (with its connection) when Airflow registers the scheme.

    Else plain fsspec (``memory://`` and stores whose provider is not installed but whose fsspec package is).
    """
    conn_id = (getattr(path, "storage_options", None) or {}).get("conn_id")
    if conn_id and type(path).__name__ != "ObjectStoragePath":
        from airflow.sdk.io.store import attach

        return attach(path.protocol, conn_id).fs
    try:
        return path.fs
    except ValueError:  # "No filesystem registered for scheme ..."
        import fsspec

        return fsspec.filesystem(path.protocol)


def exists(path: ObjectStoragePath) -> bool:
    return bool(_fs(path).exists(path.path))


def size_of(path: ObjectStoragePath) -> int:
    return int(_fs(path).size(path.path))


def sha256_of(path: ObjectStoragePath) -> str:
    """Return the SHA-256 of a stored file, read back in blocks (flat memory)."""
    digest = hashlib.sha256()
    with _fs(path).open(path.path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: ObjectStoragePath) -> dict[str, Any] | None:
    """Return a small JSON document, or None if it is missing or unreadable."""
    try:
        with _fs(path).open(path.path, "rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (FileNotFoundError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def remove(path: ObjectStoragePath) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        _fs(path).rm(path.path)


TEMPORARY_SUFFIX = ".part"
KEPT_SUFFIX = ".complete"


def _temporary_sibling(final: ObjectStoragePath, suffix: str = TEMPORARY_SUFFIX) -> ObjectStoragePath:
    return final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}{suffix}"


def _commit(temporary: ObjectStoragePath, final: ObjectStoragePath) -> None:
    fs = _fs(final)
    if is_local(final):
        os.replace(temporary.path, final.path)  # atomic on one file system, replaces an old file
    else:
        fs.mv(temporary.path, final.path)  # stores without multipart: copy, then delete the temporary object


def move(source: ObjectStoragePath, final: ObjectStoragePath) -> None:
    """Move a complete file to its final name (local: an atomic rename)."""
    _commit(source, final)


def write_json_atomically(final: ObjectStoragePath, document: dict[str, Any]) -> None:
    """Write a small JSON document under a temporary name and move it into place."""
    data = (json.dumps(document, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")
    temporary = _temporary_sibling(final)
    try:
        with _fs(temporary).open(temporary.path, "wb") as handle:
            handle.write(data)
        _commit(temporary, final)
    except BaseException:
        remove(temporary)
        raise


def check_free_space(folder: ObjectStoragePath, needed: int | None) -> None:
    """Refuse a local destination without room for ``needed`` bytes (at least ``MIN_FREE_BYTES``)."""
    if not is_local(folder):
        return
    try:
        free = shutil.disk_usage(folder.path).free
    except OSError:
        return  # the folder's own errors surface when the temporary file is created
    wanted = max(needed or 0, MIN_FREE_BYTES)
    if free < wanted:
        raise DestinationError(
            f"only {free} bytes free in {folder.path}, the file needs about {wanted}; free some space or choose "
            "another destination"
        )


# ----------------------------------------------------------------------------- paid bytes kept (D1)


def kept_name(final: ObjectStoragePath, key: str, size: int, sha256: str) -> ObjectStoragePath:
    """Where complete, paid bytes wait when their metadata could not be written (a later run finishes them)."""
    return final.parent / f".{final.name}.{key[:16]}.{size}.{sha256}{KEPT_SUFFIX}"


def find_kept(final: ObjectStoragePath, key: str) -> tuple[ObjectStoragePath, int, str] | None:
    """Return a complete download of ``key`` kept by an earlier try (path, size, SHA-256 from its name), if any."""
    prefix = f".{final.name}.{key[:16]}."
    for name in _sibling_names(final):
        if name.startswith(prefix) and name.endswith(KEPT_SUFFIX):
            size, _, sha256 = name[len(prefix) : -len(KEPT_SUFFIX)].partition(".")
            if size.isdigit() and len(sha256) == 64:
                return final.parent / name, int(size), sha256
    return None


def _sibling_names(final: ObjectStoragePath) -> list[str]:
    fs = _fs(final)
    try:
        entries = fs.ls(final.parent.path, detail=False)
    except (FileNotFoundError, OSError):
        return []
    return [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]


# ----------------------------------------------------------------------------- stale temporaries (D9)


def remove_stale_temporaries(final: ObjectStoragePath, stale_after: float) -> list[str]:
    """Remove what killed writers of ``final`` left behind; returns what was removed.

    Local: a ``.<name>.<id>.part`` file no process holds the lock of (a live writer always does), or older
    than ``stale_after`` seconds. Object stores: temporary objects and open multipart uploads of ``final``
    older than ``stale_after`` seconds.
    """
    removed: list[str] = []
    prefix = f".{final.name}."
    fs = _fs(final)
    now = time.time()
    for name in _sibling_names(final):
        if not (name.startswith(prefix) and name.endswith((TEMPORARY_SUFFIX, ".new"))):
            continue
        path = final.parent / name
        if _stale(fs, path, now, stale_after):
            remove(path)
            removed.append(name)
    if final.protocol in MULTIPART_PROTOCOLS:
        removed += _abort_stale_uploads(fs, final, now, stale_after)
    return removed


def _stale(fs: AbstractFileSystem, path: ObjectStoragePath, now: float, stale_after: float) -> bool:
    if is_local(path):
        return _unlocked(path.path) or now - _mtime(path.path) > stale_after
    try:
        modified = fs.modified(path.path)
    except (FileNotFoundError, OSError, NotImplementedError, ValueError):
        return False
    return bool(now - modified.timestamp() > stale_after)


def _mtime(local: str) -> float:
    try:
        return os.stat(local).st_mtime
    except OSError:
        return time.time()


def _unlocked(local: str) -> bool:
    """Tell whether no process holds the writer's lock on a local temporary file (its writer is gone)."""
    import fcntl

    try:
        fd = os.open(local, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken


def _abort_stale_uploads(fs: Any, final: ObjectStoragePath, now: float, stale_after: float) -> list[str]:
    bucket, key, _ = fs.split_path(final.path)
    try:
        answer = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
    except Exception:  # listing is best effort: no permission to list must not stop a download
        return []
    aborted = []
    for upload in answer.get("Uploads", []):
        started = upload.get("Initiated")
        if upload.get("Key") != key or started is None or now - started.timestamp() <= stale_after:
            continue
        with contextlib.suppress(Exception):
            fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"])
            aborted.append(f"multipart upload {upload['UploadId']}")
    return aborted


class BackgroundSha256:
    """SHA-256 computed in a helper thread, in blocks of ``HASH_BLOCK`` bytes.

    ``hashlib`` releases the GIL while it hashes a block, so hashing overlaps with reading the network and
    writing the file when a core is free (on the 2-vCPU benchmark machine the median gain was small and
    noisy; see docs/operators-download.md). Small inputs never start the thread. The queue is bounded, so
    memory stays flat.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._queue: queue.Queue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        self._hexdigest: str | None = None

    def update(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= HASH_BLOCK:
            self._hand_over()

    def _hand_over(self) -> None:
        # The chunks themselves, not their join: joining would copy every byte once more.
        block, self._pending, self._pending_size = self._pending, [], 0
        if self._queue is None:
            self._queue = queue.Queue(HASH_DEPTH)
            self._thread = threading.Thread(target=self._run, name="clearsky-sha256", daemon=True)
            self._thread.start()
        self._queue.put(block)

    def _run(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            for chunk in block:
                self._digest.update(chunk)

    def _stop(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None

    def hexdigest(self) -> str:
        if self._hexdigest is None:
            self._stop()  # everything handed over is hashed, in order
            for chunk in self._pending:
                self._digest.update(chunk)
            self._pending = []
            self._hexdigest = self._digest.hexdigest()
        return self._hexdigest

    def close(self) -> None:
        """Stop the helper thread without computing the digest (the download failed).

        A no-op once the digest is known.
        """
        if self._hexdigest is None:
            self._pending = []
            self._stop()


class IncompleteDownloadError(Exception):
    """The body ended before ``Content-Length`` bytes arrived (or ran past it)."""


class _Sink:
    """Where the bytes of one download go until they are committed (or dropped)."""

    def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Every byte is written (not yet visible at the final name)."""

    def commit(self, final: ObjectStoragePath) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _FileSink(_Sink):
    """A sink that writes through one open file handle (``self._handle``), closed once every byte is in."""

    _handle: Any

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class _LocalSink(_FileSink):
    """Write a plain buffered file next to the final name, then rename it into place (local disks).

    The file is locked while written, so a later run can tell a dead writer's leftover from a live one. The
    fastest path on a local disk.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        import fcntl

        fs = _fs(final)
        fs.makedirs(final.parent.path, exist_ok=True)
        fresh = _temporary_sibling(final, ".new")  # locked before it gets the name cleaners look at
        self._handle: Any = open(fresh.path, "xb")  # noqa: SIM115 - closed in close/abort
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        self.temporary = _temporary_sibling(final)
        try:
            os.rename(fresh.path, self.temporary.path)
        except BaseException:
            self._handle.close()
            remove(fresh)
            raise

    def commit(self, final: ObjectStoragePath) -> None:
        os.replace(self.temporary.path, final.path)

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.close()
            self._handle = None
        remove(self.temporary)


class _MoveSink(_FileSink):
    """Write a temporary object, copied to the final key once complete and then deleted.

    For object stores without multipart commit (gcs, azure, ``memory://``).
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        fs = _fs(final)
        fs.makedirs(final.parent.path, exist_ok=True)
        self.temporary = _temporary_sibling(final)
        self._handle: Any = fs.open(self.temporary.path, "wb")

    def commit(self, final: ObjectStoragePath) -> None:
        _commit(self.temporary, final)

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                discard = getattr(self._handle, "discard", None)  # drop a half-done upload
                if callable(discard):
                    discard()
                self._handle.close()
            self._handle = None
        remove(self.temporary)


class _MultipartSink(_Sink):
    """Write to S3 through a multipart upload to the final key itself.

    Started before anything is paid, completed only when every byte is in (the object then appears whole,
    at once), aborted otherwise. No temporary object, no copy.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self._fs: Any = _fs(final)
        self._bucket, self._key, _ = self._fs.split_path(final.path)
        answer = self._fs.call_s3("create_multipart_upload", Bucket=self._bucket, Key=self._key)
        self.upload_id: str = answer["UploadId"]
        self._parts: list[dict[str, Any]] = []
        self._buffer = bytearray()

    def write(self, chunk: bytes) -> None:
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

    def close(self) -> None:
        if self._buffer or not self._parts:
            self._upload_part()  # the last part may be small; an empty file is one empty part

    def commit(self, final: ObjectStoragePath) -> None:
        self._fs.call_s3(
            "complete_multipart_upload",
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._fs.invalidate_cache(final.path)

    def abort(self) -> None:
        self._buffer = bytearray()
        with contextlib.suppress(Exception):
            self._fs.call_s3("abort_multipart_upload", Bucket=self._bucket, Key=self._key, UploadId=self.upload_id)


def _open_sink(final: ObjectStoragePath) -> _Sink:
    if is_local(final):
        return _LocalSink(final)
    if final.protocol in MULTIPART_PROTOCOLS and hasattr(_fs(final), "call_s3"):
        return _MultipartSink(final)
    return _MoveSink(final)


class AtomicWriter:
    """Streams bytes towards ``final``, hashing them; ``commit`` makes them appear there, whole, at once.

    Use as a context manager, entered **before** the paid request (so a destination that cannot be written
    fails before anything is paid): ``write`` every chunk, ``finish`` (size check), then ``commit`` (or
    ``keep`` when the metadata could not be written). Leaving the block otherwise (an exception, a cut-short
    body) drops what was written, so nothing ever appears at the final name unless it is complete. Errors that
    say the destination cannot be written raise :class:`DestinationError`.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self.final = final
        self.size = 0
        self._digest = BackgroundSha256()
        self._sink: _Sink | None = None
        self._finished = False
        self._committed = False

    def __enter__(self) -> AtomicWriter:
        try:
            self._sink = _open_sink(self.final)
        except FileNotFoundError as error:  # no such bucket, or a folder that cannot be created
            raise DestinationError(f"{type(error).__name__}: {error}") from error
        except OSError as error:
            if unwritable(error):
                raise DestinationError(f"{type(error).__name__}: {error}") from error
            raise
        return self

    @property
    def temporary(self) -> ObjectStoragePath | None:
        return getattr(self._sink, "temporary", None)

    def write(self, chunk: bytes) -> None:
        assert self._sink is not None
        with _unwritable_as_destination_error():
            self._sink.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def finish(self, expected_size: int | None) -> None:
        """Write out the last bytes and check the size against ``Content-Length`` (when known)."""
        if expected_size is not None and self.size != expected_size:
            raise IncompleteDownloadError(
                f"received {self.size} bytes but Content-Length announced {expected_size}; not committed"
            )
        assert self._sink is not None
        with _unwritable_as_destination_error():
            self._sink.close()
        self._digest.hexdigest()  # waits for the hashing thread: the checksum is final from here on
        self._finished = True

    def commit(self, target: ObjectStoragePath | None = None) -> None:
        """Make the finished file appear at its final name (or at ``target``)."""
        if not self._finished or self._sink is None:
            raise RuntimeError("finish() the download before committing it")
        self._sink.commit(target if target is not None else self.final)
        self._committed = True

    def keep(self, key: str) -> ObjectStoragePath:
        """Commit the complete, paid bytes under :func:`kept_name` (its metadata could not be written)."""
        kept = kept_name(self.final, key, self.size, self.sha256)
        self.commit(kept)
        return kept

    def abort(self) -> None:
        self._digest.close()
        if self._sink is not None and not self._committed:
            self._sink.abort()

    def __exit__(self, *exc: object) -> None:
        self.abort()


@contextlib.contextmanager
def _unwritable_as_destination_error() -> Any:
    try:
        yield
    except OSError as error:
        if unwritable(error):
            raise DestinationError(f"{type(error).__name__}: {error}") from error
        raise
