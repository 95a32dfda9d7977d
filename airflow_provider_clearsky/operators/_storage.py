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
import queue
import threading
import uuid
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

LOCAL_PROTOCOLS = ("", "file", "local")
READ_BLOCK = 8 * 1024 * 1024
# Bytes hashed per hand-over to the hashing thread, and how many blocks may wait: memory stays under
# HASH_BLOCK * (HASH_DEPTH + 2) whatever the file size.
HASH_BLOCK = 1024 * 1024
HASH_DEPTH = 8


def storage_path(location: str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for a destination; a plain local path is made absolute first.

    ``s3://aws_default@bucket/key`` style URLs carry the Airflow connection id, as everywhere in Airflow.
    """
    from airflow.sdk import ObjectStoragePath

    if "://" not in location:
        location = os.path.abspath(os.path.expanduser(location))
    try:
        return ObjectStoragePath(location)
    except TypeError:
        # Airflow 3.0's ObjectStoragePath refuses every URL scheme under universal-pathlib 0.3
        # ("detected protocol ... incompatible"). Plain UPath has the same path API over fsspec; only the
        # ``scheme://conn_id@bucket`` connection lookup is lost (the store's default credentials apply).
        from upath import UPath

        return cast("ObjectStoragePath", UPath(location))


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
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._hexdigest: str | None = None

    def update(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= HASH_BLOCK:
            self._hand_over()

    def _hand_over(self) -> None:
        block = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_size = [], 0
        if self._queue is None:
            self._queue = queue.Queue(HASH_DEPTH)
            self._thread = threading.Thread(target=self._run, name="clearsky-sha256", daemon=True)
            self._thread.start()
        self._queue.put(block)

    def _run(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            self._digest.update(block)

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
        """Stop the helper thread without computing the digest (the download failed); no-op once the
        digest is known."""
        if self._hexdigest is None:
            self._pending = []
            self._stop()


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
        self._digest = BackgroundSha256()
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
        self._digest.hexdigest()  # waits for the hashing thread: the checksum is final from here on
        self._finished = True

    def commit(self) -> None:
        """Move the finished file to its final name."""
        if not self._finished:
            raise RuntimeError("finish() the download before committing it")
        _commit(self.temporary, self.final)
        self._committed = True

    def abort(self) -> None:
        self._digest.close()
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
