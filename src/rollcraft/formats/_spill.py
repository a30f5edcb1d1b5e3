"""DPO candidates and planned pairs on disk, for runs with more of them than memory should hold.

A DPO run must see every rollout of a task before it can pair them, and a task's rollouts are
spread through the input. Up to a budget the candidates stay packed in memory
(``rollcraft.formats.dpo._Candidates``); past it they are written out as a **sorted run**: every
task of the batch, in key order, with its candidates in the order they came. Planning then merges
the runs (``heapq.merge``, which keeps the runs' order among equal keys) and sees each task once,
with all its candidates in input order, as the in-memory table would give them; the pairs it
plans go to a :class:`FilePairs`, fixed-size records read back by position. So memory stays
bounded at any number of rollouts (a few MB of buffers), where the table grows by 32 bytes a
candidate and about 150 a task.

Files are anonymous temporary files (``tempfile.TemporaryFile``): already unlinked, they vanish
with the process however it ends.
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import IO, NamedTuple

__all__ = ["Entry", "FilePairs", "merged", "write_run"]

#: A task in a run: its key's byte length and its number of candidates; the key follows.
_TASK = struct.Struct("<II")
#: A candidate in a run: reward, the id's 64 bits, its locator's source number and offset, and
#: the byte length + 1 of an id kept as it is (0 when the id is the 64 bits' 16 hex digits).
_ENTRY = struct.Struct("<dQIqI")
#: Runs are read through buffers of this size (one per run while they are merged).
_RUN_BUFFER = 1 << 16


class Entry(NamedTuple):
    """A candidate read back from a run (``order`` is its rollout id, as pairs are ranked)."""

    reward: float
    order: str
    source: int
    offset: int


def _encode(text: str) -> bytes:
    # surrogatepass: any str round-trips, and byte order is code point order (as str sorts)
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def write_run(tasks: Iterable[tuple[str, list[tuple[float, int, int, int, str | None]]]]) -> IO[bytes]:
    """Write ``(task key, candidates)`` in the order given (sorted by key, by the caller) to a new
    temporary file, and return it. A candidate is ``(reward, id bits, source, offset, odd id)``."""
    run = tempfile.TemporaryFile(prefix="rollcraft-dpo-run-", buffering=0)  # no buffer kept per run
    with open(os.dup(run.fileno()), "wb", buffering=1 << 20) as out:
        write, task, entry = out.write, _TASK.pack, _ENTRY.pack
        for key, candidates in tasks:
            raw = _encode(key)
            write(task(len(raw), len(candidates)))
            write(raw)
            for reward, bits, source, offset, odd in candidates:
                if odd is None:
                    write(entry(reward, bits, source, offset, 0))
                else:
                    odd_raw = _encode(odd)
                    write(entry(reward, bits, source, offset, len(odd_raw) + 1))
                    write(odd_raw)
    return run


def _read_run(run: IO[bytes]) -> Iterator[tuple[bytes, list[Entry]]]:
    with open(os.dup(run.fileno()), "rb", buffering=_RUN_BUFFER) as handle:
        handle.seek(0)
        read, task_size, entry_size = handle.read, _TASK.size, _ENTRY.size
        unpack_task, unpack_entry = _TASK.unpack, _ENTRY.unpack
        while header := read(task_size):
            key_size, count = unpack_task(header)
            key = read(key_size)
            entries = []
            for _ in range(count):
                reward, bits, source, offset, odd_size = unpack_entry(read(entry_size))
                order = _decode(read(odd_size - 1)) if odd_size else f"{bits:016x}"
                entries.append(Entry(reward, order, source, offset))
            yield key, entries


def merged(runs: list[IO[bytes]]) -> Iterator[tuple[bytes, list[Entry]]]:
    """Every task of ``runs`` once, in key order (the keys' UTF-8 bytes: the order of their
    ``str``), with the candidates of all runs in run order: the order they were added."""
    streams = heapq.merge(*(_read_run(run) for run in runs), key=itemgetter(0))
    for key, parts in groupby(streams, key=itemgetter(0)):
        entries: list[Entry] = []
        for _, part in parts:
            entries.extend(part)
        yield key, entries


#: A planned pair: its key's offset and byte length in the strings, then for each side its
#: reward, source number, offset, and its id's offset and byte length in the strings.
_PAIR = struct.Struct("<QI" + "dIqQI" * 2)
#: Pairs read back at once (one ``pread``), as the pairs are mostly read in order.
_BLOCK_PAIRS = 1024


class FilePairs:
    """Planned pairs in two temporary files: fixed-size records, and the keys and ids they
    point to. :meth:`add` appends; once :meth:`done`, pairs are read back by index (blocks of
    records kept one at a time), from any process that inherits the files."""

    __slots__ = (
        "_block",
        "_block_at",
        "_count",
        "_key",
        "_read_key",
        "_records",
        "_strings",
        "_strings_size",
    )

    def __init__(self) -> None:
        self._records = tempfile.TemporaryFile(prefix="rollcraft-dpo-pairs-", buffering=1 << 20)
        self._strings = tempfile.TemporaryFile(prefix="rollcraft-dpo-keys-", buffering=1 << 20)
        self._strings_size = 0
        self._count = 0
        self._key: tuple[bytes, int] | None = None  # the last key written, and where
        self._block = b""
        self._block_at = -1
        self._read_key: tuple[int, str] | None = None  # the last key read, and where it sits

    def _string(self, data: bytes) -> int:
        at = self._strings_size
        self._strings.write(data)
        self._strings_size += len(data)
        return at

    def add(self, key: bytes, chosen: Entry, rejected: Entry) -> None:
        if self._key is None or self._key[0] != key:  # a task's pairs share its key
            self._key = (key, self._string(key))
        sides: list[float | int] = []
        for side in (chosen, rejected):
            raw = _encode(side.order)
            sides += (side.reward, side.source, side.offset, self._string(raw), len(raw))
        self._records.write(_PAIR.pack(self._key[1], len(key), *sides))
        self._count += 1

    def done(self) -> FilePairs:
        """Flush what was added (returns itself)."""
        self._records.flush()
        self._strings.flush()
        return self

    def __len__(self) -> int:
        return self._count

    def _record(self, index: int) -> tuple[int, ...]:
        block = index // _BLOCK_PAIRS
        if block != self._block_at:
            self._block = _pread(self._records, _BLOCK_PAIRS * _PAIR.size, block * _BLOCK_PAIRS * _PAIR.size)
            self._block_at = block
        return _PAIR.unpack_from(self._block, (index % _BLOCK_PAIRS) * _PAIR.size)

    def key(self, index: int) -> str:
        key_at, key_size = self._record(index)[:2]
        if self._read_key is None or self._read_key[0] != key_at:  # a task's pairs share it
            self._read_key = (key_at, _decode(_pread(self._strings, key_size, key_at)))
        return self._read_key[1]

    def sides(self, index: int) -> tuple[tuple[float, str, int, int], tuple[float, str, int, int]]:
        """``(reward, rollout id, source number, offset)`` of the chosen and the rejected side."""
        record = self._record(index)
        return self._side(record[2:7]), self._side(record[7:12])

    def _side(self, fields: tuple[int, ...]) -> tuple[float, str, int, int]:
        reward, source, offset, id_at, id_size = fields
        return reward, _decode(_pread(self._strings, id_size, id_at)), source, offset

    def sources(self, index: int) -> tuple[int, int]:
        """The source numbers of the chosen and the rejected side."""
        record = self._record(index)
        return record[3], record[8]


def _pread(file: IO[bytes], size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(file.fileno(), size, offset)
    file.seek(offset)  # pragma: no cover (Windows)
    return file.read(size)  # pragma: no cover
