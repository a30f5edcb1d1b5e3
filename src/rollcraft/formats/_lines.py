"""Reading a DPO candidate's input line back: by offset in plain files, or from a spool of the
lines of compressed files and stdin written during the first pass.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO

from rollcraft._io import is_plain_file, line_at
from rollcraft._records import Rollout


class LineStore:
    """Finds original lines again: by offset in plain files, or in a spool of the others."""

    def __init__(self) -> None:
        self._seekable: dict[str, bool] = {}
        self._spool: IO[bytes] | None = None
        self._spool_path: str | None = None
        self._handles: dict[str, IO[bytes]] = {}

    def remember(self, rollout: Rollout) -> tuple[str, int]:
        if not rollout.rewritten and self._is_seekable(rollout.source):
            return (rollout.source, rollout.offset)
        spool = self._open_spool()
        position = spool.tell()
        spool.write(rollout.raw + b"\n")
        return ("", position)

    @property
    def spooled(self) -> bool:
        """Whether some lines sit in the spool (which only this process may read)."""
        return self._spool is not None

    def fetch(self, locator: tuple[str, int]) -> bytes:
        source, offset = locator
        if source == "":
            assert self._spool is not None
            self._spool.flush()
            handle = self._handle(self._spool_path or "")
        else:
            handle = self._handle(source)
        if not hasattr(os, "pread"):  # pragma: no cover (Windows)
            handle.seek(offset)
            return handle.readline().rstrip(b"\r\n")
        line = line_at(handle.fileno(), offset)
        return line.rstrip(b"\r") if line.endswith(b"\r") else line  # as the reader cuts CRLF

    def _is_seekable(self, source: str) -> bool:
        known = self._seekable.get(source)
        if known is None:
            known = self._seekable[source] = is_plain_file(source)
        return known

    def _open_spool(self) -> IO[bytes]:
        if self._spool is None:
            fd, self._spool_path = tempfile.mkstemp(prefix="rollcraft-dpo-", suffix=".jsonl")
            self._spool = os.fdopen(fd, "w+b")
        return self._spool

    def _handle(self, path: str) -> IO[bytes]:
        if path not in self._handles:
            self._handles[path] = open(path, "rb")
        return self._handles[path]

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        if self._spool is not None:
            self._spool.close()
        if self._spool_path:
            with contextlib.suppress(OSError):
                os.unlink(self._spool_path)
