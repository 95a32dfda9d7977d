"""Where downloads land: destinations through Airflow's ``ObjectStoragePath``, and their files.

Paths, the store behind them, small reads and writes (sidecars), free space, and the errors that say a
destination cannot be written. How the paid bytes themselves are written is in :mod:`._atomic_writer` (over
the sinks of :mod:`._storage_sinks`); what interrupted downloads leave behind is in :mod:`._storage_leftovers`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

LOCAL_PROTOCOLS = ("", "file", "local")
READ_BLOCK = 8 * 1024 * 1024


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
        # ``scheme://conn_id@bucket`` connection is kept as a storage option and ``filesystem`` attaches the store
        # through Airflow with it, as ObjectStoragePath would.
        from upath import UPath

        parts = urlsplit(location)
        conn_id, _, host = parts.netloc.rpartition("@")
        if not conn_id:
            return cast("ObjectStoragePath", UPath(location))
        plain = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return cast("ObjectStoragePath", UPath(plain, conn_id=conn_id))


def is_local(path: ObjectStoragePath) -> bool:
    """Tell whether ``path`` is on a local disk (``file://`` or no scheme)."""
    return (path.protocol or "") in LOCAL_PROTOCOLS


def uri_of(path: ObjectStoragePath) -> str:
    """Return the URI given to XCom: ``file:///abs/path`` for local files, the store's URL otherwise."""
    if is_local(path):
        return f"file://{path.path}"
    return str(path)


def filesystem(path: ObjectStoragePath) -> AbstractFileSystem:
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
    """Tell whether a file or object is stored at ``path``."""
    return bool(filesystem(path).exists(path.path))


def size_of(path: ObjectStoragePath) -> int:
    """Return the size in bytes of the file stored at ``path``."""
    return int(filesystem(path).size(path.path))


def sha256_of(path: ObjectStoragePath) -> str:
    """Return the SHA-256 of a stored file, read back in blocks (flat memory)."""
    digest = hashlib.sha256()
    with filesystem(path).open(path.path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: ObjectStoragePath) -> dict[str, Any] | None:
    """Return a small JSON document, or None if it is missing or unreadable."""
    try:
        return read_json_if_present(path)
    except OSError:
        return None


def read_json_if_present(path: ObjectStoragePath) -> dict[str, Any] | None:
    """Return a small JSON document, or None if it is missing or not a JSON object; other read errors raise."""
    try:
        with filesystem(path).open(path.path, "rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def remove(path: ObjectStoragePath) -> None:
    """Delete ``path`` if it is there; cleanup never fails the task."""
    with contextlib.suppress(FileNotFoundError, OSError):
        filesystem(path).rm(path.path)


TEMPORARY_SUFFIX = ".part"


def temporary_sibling(final: ObjectStoragePath, suffix: str = TEMPORARY_SUFFIX) -> ObjectStoragePath:
    """Return a fresh hidden name next to ``final`` (``.<name>.<random><suffix>``), the shape cleaners look for."""
    return final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}{suffix}"


def move(source: ObjectStoragePath, final: ObjectStoragePath) -> None:
    """Move a complete file to its final name (local: an atomic rename, replacing an old file)."""
    if is_local(final):
        os.replace(source.path, final.path)  # atomic on one file system
    else:
        filesystem(final).mv(source.path, final.path)  # stores without multipart: copy, then delete the source


def write_json_atomically(final: ObjectStoragePath, document: dict[str, Any]) -> None:
    """Write a small JSON document under a temporary name and move it into place."""
    data = (json.dumps(document, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")
    temporary = temporary_sibling(final)
    try:
        with filesystem(temporary).open(temporary.path, "wb") as handle:
            handle.write(data)
        move(temporary, final)
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


@contextlib.contextmanager
def unwritable_as_destination_error() -> Iterator[None]:
    """Turn an OSError that says the destination cannot be written into :class:`DestinationError`."""
    try:
        yield
    except OSError as error:
        if unwritable(error):
            raise DestinationError(f"{type(error).__name__}: {error}") from error
        raise
