"""What interrupted downloads leave beside a final name, and how a later run finds or removes it.

* **Kept files** (``.<name>.<key>.<size>.<sha256>.complete``): complete, paid bytes whose metadata could not
  be written; a later try verifies them, writes the metadata and moves them into place, paying nothing.
* **Stale temporaries**: what killed writers left (local ``.part`` files no process holds the lock of, old
  temporary objects, open S3 multipart uploads); removed by a later run of the same download.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_clearsky.operators._storage import (
    MULTIPART_PROTOCOLS,
    TEMPORARY_SUFFIX,
    filesystem,
    is_local,
    remove,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

KEPT_SUFFIX = ".complete"

# ----------------------------------------------------------------------------- paid bytes kept (D1)


def kept_name(final: ObjectStoragePath, key: str, size: int, sha256: str) -> ObjectStoragePath:
    """Return where complete, paid bytes wait when their metadata could not be written (a later run finishes them)."""
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
    fs = filesystem(final)
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
    fs = filesystem(final)
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
