"""Where downloads land: destinations through Airflow's ``ObjectStoragePath``, written atomically.

A file is streamed to a temporary name next to its final name (``.<name>.<random>.part``) and moved to the
final name only once every byte has arrived. On a local disk the move is an atomic ``rename``. Object
stores (s3, gcs, azure, ``memory://``) have no atomic rename: fsspec's ``mv`` copies the finished object
to the final key and deletes the temporary one, so a reader never sees a partial object at the final key
(it may, for a moment, see both). Anything that goes wrong before the move removes the temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

LOCAL_PROTOCOLS = ("", "file", "local")
READ_BLOCK = 8 * 1024 * 1024


def storage_path(location: str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for a destination; a plain local path is made absolute first.

    ``s3://aws_default@bucket/key`` style URLs carry the Airflow connection id, as everywhere in Airflow.
    """
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = os.path.abspath(os.path.expanduser(location))
    return ObjectStoragePath(location)


def is_local(path: ObjectStoragePath) -> bool:
    return (path.protocol or "") in LOCAL_PROTOCOLS


def uri_of(path: ObjectStoragePath) -> str:
    """The URI returned to XCom: ``file:///abs/path`` for local files, the store's URL otherwise."""
    if is_local(path):
        return f"file://{path.path}"
    return str(path)


def _fs(path: ObjectStoragePath) -> AbstractFileSystem:
    """The path's file system: Airflow's (with its connection) when Airflow registers the scheme, else
    plain fsspec (``memory://`` and stores whose provider is not installed but whose fsspec package is)."""
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
    """The SHA-256 of a stored file, read back in blocks (flat memory)."""
    digest = hashlib.sha256()
    with _fs(path).open(path.path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: ObjectStoragePath) -> dict[str, Any] | None:
    """A small JSON document, or None if it is missing or unreadable."""
    try:
        with _fs(path).open(path.path, "rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except (FileNotFoundError, OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def remove(path: ObjectStoragePath) -> None:
    with contextlib.suppress(FileNotFoundError, OSError):
        _fs(path).rm(path.path)


def _temporary_sibling(final: ObjectStoragePath) -> ObjectStoragePath:
    return final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.part"


def _commit(temporary: ObjectStoragePath, final: ObjectStoragePath) -> None:
    fs = _fs(final)
    if is_local(final):
        os.replace(temporary.path, final.path)  # atomic on one file system, replaces an old file
    else:
        fs.mv(temporary.path, final.path)  # object stores: copy, then delete the temporary object


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


class IncompleteDownloadError(Exception):
    """The body ended before ``Content-Length`` bytes arrived (or ran past it)."""


class AtomicWriter:
    """Streams bytes to a temporary sibling of ``final``, hashing them; ``commit`` moves it into place.

    Use as a context manager: ``write`` every chunk, ``finish`` (size check), then ``commit``. Leaving the
    block without ``commit`` (an exception, a cut-short body) removes the temporary file, so nothing ever
    appears at the final name unless it is complete.
    """

    def __init__(self, final: ObjectStoragePath) -> None:
        self.final = final
        self.temporary = _temporary_sibling(final)
        self.size = 0
        self._digest = hashlib.sha256()
        self._handle: Any = None
        self._finished = False
        self._committed = False

    def __enter__(self) -> AtomicWriter:
        fs = _fs(self.final)
        fs.makedirs(self.final.parent.path, exist_ok=True)
        if is_local(self.final):
            # Plain buffered file: the fastest path on a local disk.
            self._handle = open(self.temporary.path, "wb")  # closed in finish/abort
        else:
            self._handle = fs.open(self.temporary.path, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def finish(self, expected_size: int | None) -> None:
        """Close the temporary file and check its size against ``Content-Length`` (when known)."""
        handle, self._handle = self._handle, None
        handle.close()
        if expected_size is not None and self.size != expected_size:
            raise IncompleteDownloadError(
                f"received {self.size} bytes but Content-Length announced {expected_size}; not committed"
            )
        self._finished = True

    def commit(self) -> None:
        """Move the finished file to its final name."""
        if not self._finished:
            raise RuntimeError("finish() the download before committing it")
        _commit(self.temporary, self.final)
        self._committed = True

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(Exception):
                # fsspec buffered files (s3, gcs, ...) can drop a half-done upload instead of finishing it.
                discard = getattr(self._handle, "discard", None)
                if callable(discard):
                    discard()
                self._handle.close()
            self._handle = None
        if not self._committed:
            remove(self.temporary)

    def __exit__(self, *exc: object) -> None:
        self.abort()
