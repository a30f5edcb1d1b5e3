"""sha256 of a file on disk, and a write-only output file that computes its sha256 while it is written.

The writer's thread (``background=True``, a single-process run's outputs) is a shortcut for
speed: it moves writing and hashing off the main thread, which pays only where a CPU is free. On a
2-vCPU machine busy with other work, ``rollcraft run`` (filter + SFT + DPO) over 300 MB of the
benchmark's input took 3.59, 4.95 and 3.86 s with it against 3.48, 4.85 and 3.40 s writing
inline, and peaked at 60 MB against 53 (three runs of ``python benchmarks/shortcuts.py --size
300MB --only writer``): nothing gained there. The same bytes and sha256 either way:
``tests/test_digest.py``, ``tests/perf/test_shortcuts.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from types import TracebackType

from rollcraft._io import write_failed

__all__ = ["DigestWriter", "sha256_file"]

# Large chunks: the thread needs the GIL only between chunks, and each hand-off can wait a whole
# switch interval (5 ms) while the main thread decodes; 1 MiB chunks made that a convoy.
_CHUNK = 4 << 20
# ... but each is written in pieces of at most 1 MiB: on the Firecracker VMs these benchmarks ran
# on (Linux 6.18, ext4), a write(2) of 2-4 MiB into a new file cost the kernel 3 ms per MB, and
# one of 1 MiB or less 0.3 ms (300 MB: 0.9-1.2 s of system time against 0.1 s).
_WRITE = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, in hex.

    Read in 4 MiB pieces: in a background thread each piece needs the GIL once, and 256 KiB
    pieces (``hashlib.file_digest``) waited for it so often that hashing 1 GB outlasted the run.
    """
    digest = hashlib.sha256()
    buffer = bytearray(4 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


class DigestWriter:
    """Writes ``path`` and hashes its bytes on the way (no second read for the manifest).

    Writes are gathered into 4 MiB chunks. With ``background=True`` a thread writes and hashes the
    chunks (both release the GIL), so a single-process run spends neither on its main thread; at
    most one chunk waits in the queue. Use ``background=False`` in a process that will fork.
    An error in the thread (a full disk) is raised by the next ``write`` or by ``close``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, background: bool = False, digest: bool = True
    ) -> None:
        """``digest=False``: a scratch file nobody needs the sha256 of (no hashing)."""
        self.path = os.fspath(path)
        self.size = 0  # bytes written to the file (by the thread, when there is one)
        self._position = 0  # bytes handed to write()
        try:
            self._file = open(self.path, "wb")
        except OSError as exc:
            raise write_failed(self.path, exc) from None
        self._hash = hashlib.sha256()
        self._digest = digest
        self._buffer = bytearray()
        self._error: BaseException | None = None
        self._queue: queue.Queue[bytearray | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._drain, name="rollcraft-writer", daemon=True)
            self._thread.start()

    def write(self, data: bytes) -> int:
        """Append ``data``; returns its length."""
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= _CHUNK:
            self._hand_off()
        return len(data)

    def _hand_off(self) -> None:
        if self._error is not None:
            raise self._error
        chunk, self._buffer = self._buffer, bytearray()
        if self._queue is None:
            self._consume(chunk)
        else:
            self._queue.put(chunk)

    def _consume(self, chunk: bytearray) -> None:
        try:
            with memoryview(chunk) as view:
                for start in range(0, len(view), _WRITE):
                    self._file.write(view[start : start + _WRITE])
        except OSError as exc:  # a full disk: one line naming the file, not a traceback
            raise write_failed(self.path, exc) from None
        if self._digest:
            self._hash.update(chunk)
        self.size += len(chunk)

    def _drain(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(chunk)
                except BaseException as exc:  # raised in the writing thread by write() / close()
                    self._error = exc

    def close(self) -> None:
        """Write what is left, wait for the thread, close the file; raises a write error once."""
        if self._file.closed:
            return
        try:
            if self._buffer and self._error is None:
                self._hand_off()
        finally:
            if self._queue is not None and self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join()
            try:
                self._file.close()
            except OSError as exc:
                raise write_failed(self.path, exc) from None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def tell(self) -> int:
        """Bytes handed to :meth:`write` so far (where the next write starts in the file)."""
        return self._position

    @property
    def sha256(self) -> str:
        """The hex sha256 of everything written (call after :meth:`close`)."""
        return self._hash.hexdigest()

    def __enter__(self) -> DigestWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
            return
        self._buffer = bytearray()  # failing anyway: the first error is the one that counts
        with contextlib.suppress(Exception):
            self.close()
