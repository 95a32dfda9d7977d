"""Writing paid bytes atomically: :class:`AtomicWriter` streams them towards the final name, hashing them.

The writer is opened **before** the paid request, so a destination that cannot be written fails before
anything is paid (:class:`DestinationError`). On a local disk the bytes stream to a locked temporary file
next to the final name (``.<name>.<random>.part``), renamed into place once every byte has arrived. On S3
they go into a multipart upload of the final key, completed only then (aborted otherwise): the object
appears whole, at once. Other object stores (gcs, azure, ``memory://``) have no atomic rename: fsspec's
``mv`` copies the finished temporary object to the final key and deletes it. Anything that goes wrong
before the commit removes what was written; what killed writers left is removed by a later run of the same
download (:func:`._storage_leftovers.remove_stale_temporaries`).
"""

from __future__ import annotations

import functools
import hashlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_provider_clearsky.operators._storage import (
    DestinationError,
    unwritable,
    unwritable_as_destination_error,
)
from airflow_provider_clearsky.operators._storage_leftovers import kept_name
from airflow_provider_clearsky.operators._storage_sinks import Sink, open_sink

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

# Bytes hashed per hand-over to the hashing thread, and how many blocks may wait: memory stays under
# HASH_BLOCK * (HASH_DEPTH + 2) whatever the file size.
HASH_BLOCK = 1024 * 1024
HASH_DEPTH = 8

#: A block for the hashing thread: pieces hashed in order, then ``release`` called (their buffer is free).
_Block = tuple[list[bytes | memoryview], Callable[[], None] | None]


class BackgroundSha256:
    """SHA-256 computed in a helper thread, in blocks of ``HASH_BLOCK`` bytes.

    ``hashlib`` releases the GIL while it hashes a block, so hashing overlaps with reading the network and
    writing the file when a core is free. Small inputs given with :meth:`update` never start the thread. The
    queue is bounded, so memory stays flat.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        self._queue: queue.Queue[_Block | None] | None = None
        self._thread: threading.Thread | None = None
        self._hexdigest: str | None = None
        self._error: BaseException | None = None  # the helper thread's, raised by hexdigest

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` to the hash (handed to the helper thread once a block is full)."""
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= HASH_BLOCK:
            self._hand_over(None)

    def update_then_release(self, view: memoryview, release: Callable[[], None]) -> None:
        """Add ``view`` to the hash in the helper thread, then call ``release``: its buffer may be reused then.

        The view is handed over at once, so at most ``HASH_DEPTH + 1`` views are held at any time.
        """
        self._pending.append(view)
        self._hand_over(release)

    def _hand_over(self, release: Callable[[], None] | None) -> None:
        # The chunks themselves, not their join: joining would copy every byte once more.
        block, self._pending, self._pending_size = self._pending, [], 0
        if self._queue is None:
            self._queue = queue.Queue(HASH_DEPTH)
            self._thread = threading.Thread(target=self._run, name="clearsky-sha256", daemon=True)
            self._thread.start()
        self._queue.put((block, release))

    def _run(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            pieces, release = item
            try:
                if self._error is None:
                    for piece in pieces:
                        self._digest.update(piece)
            except BaseException as error:  # reported by hexdigest; the buffers keep coming back
                self._error = error
            finally:
                if release is not None:
                    release()

    def _stop(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None

    def hexdigest(self) -> str:
        """Return the SHA-256 of every byte added, as hex; waits for the helper thread and ends it."""
        if self._hexdigest is None:
            self._stop()  # everything handed over is hashed, in order
            if self._error is not None:
                raise RuntimeError(f"SHA-256 of the download failed: {self._error!r}") from self._error
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


class BufferRing:
    """Up to ``count`` reusable buffers of ``size`` bytes, made when first needed.

    :meth:`take` waits until a buffer is given back once all are out. Reading into a few reused buffers
    instead of a fresh object per read saves the page faults of new memory (on virtual machines whose free
    pages go back to the host, a fresh page can cost more than copying it).
    """

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self._count = count
        self._made = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def take(self) -> bytearray:
        """Return a free buffer, making one while fewer than ``count`` exist, else waiting for one."""
        if self._free.empty() and self._made < self._count:
            self._made += 1
            return bytearray(self.size)
        return self._free.get()

    def give_back(self, buffer: bytearray) -> None:
        """Make ``buffer`` free again (from any thread)."""
        self._free.put(buffer)


class IncompleteDownloadError(Exception):
    """The body ended before ``Content-Length`` bytes arrived (or ran past it)."""


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
        self._sink: Sink | None = None
        self._finished = False
        self._committed = False

    def __enter__(self) -> AtomicWriter:
        try:
            self._sink = open_sink(self.final)
        except FileNotFoundError as error:  # no such bucket, or a folder that cannot be created
            raise DestinationError(f"{type(error).__name__}: {error}") from error
        except OSError as error:
            if unwritable(error):
                raise DestinationError(f"{type(error).__name__}: {error}") from error
            raise
        return self

    @property
    def temporary(self) -> ObjectStoragePath | None:
        """The temporary file or object the bytes go to, or None (an S3 multipart upload writes the final key)."""
        return getattr(self._sink, "temporary", None)

    def write(self, chunk: bytes) -> None:
        """Write ``chunk`` and add it to the hash and the size."""
        self._store(chunk)
        self._digest.update(chunk)

    def write_from(self, readinto: Callable[[memoryview], int], progress: Callable[[int], None]) -> None:
        """Write everything ``readinto`` reads (until it returns 0), reporting the running size to ``progress``.

        Each read goes into a buffer of a ring of ``HASH_DEPTH + 2`` reused buffers of ``HASH_BLOCK`` bytes;
        the bytes are written, then hashed in the helper thread, and the buffer is given back. No memory is
        allocated per read, and the ring holds at most ~10 MiB whatever the file size (an S3 sink buffers one
        8 MiB part besides). Reads are not combined here: filling each buffer before writing it was slower
        (see benchmarks/README.md); over TLS the reader itself joins the records that have arrived.
        """
        ring = BufferRing(HASH_BLOCK, HASH_DEPTH + 2)
        while True:
            buffer = ring.take()
            size = readinto(memoryview(buffer))
            if not size:
                ring.give_back(buffer)
                return
            view = memoryview(buffer)[:size]
            self._store(view)
            self._digest.update_then_release(view, functools.partial(ring.give_back, buffer))
            progress(self.size)

    def _store(self, chunk: bytes | memoryview) -> None:
        assert self._sink is not None
        with unwritable_as_destination_error():
            self._sink.write(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        """The SHA-256 of the bytes written, as hex (final once :meth:`finish` has run)."""
        return self._digest.hexdigest()

    def finish(self, expected_size: int | None) -> None:
        """Write out the last bytes and check the size against ``Content-Length`` (when known)."""
        if expected_size is not None and self.size != expected_size:
            raise IncompleteDownloadError(
                f"received {self.size} bytes but Content-Length announced {expected_size}; not committed"
            )
        assert self._sink is not None
        with unwritable_as_destination_error():
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
        """Drop what was written, unless it is committed; safe to call more than once."""
        self._digest.close()
        if self._sink is not None and not self._committed:
            self._sink.abort()

    def __exit__(self, *exc: object) -> None:
        self.abort()
