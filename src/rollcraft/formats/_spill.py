"""DPO candidates and planned pairs on disk, for runs with more of them than memory should hold.

A DPO run must see every rollout of a task before it can pair them, and a task's rollouts are
spread through the input. Up to a budget the candidates stay packed in memory
(``rollcraft.formats.dpo._Candidates``, in :data:`ENTRY` records); past it they are written out
as a **sorted run**: every task of the batch, in key order, with its candidates in the order
they came. Planning then merges the runs (``heapq.merge``, which keeps the runs' order among
equal keys) and sees each task once, with all its candidates in input order, as the in-memory
table would give them; the pairs it plans go to a :class:`FilePairs`, fixed-size records read
back by position. So memory stays bounded at any number of rollouts (a few MB of buffers),
where the table grows by 32 bytes a candidate and about 150 a task.

Files are anonymous temporary files (``tempfile.TemporaryFile``): already unlinked, they vanish
with the process however it ends.

What it buys is memory, for time: 500,000 candidates of 125,000 tasks in a 4 MB budget hold 4
bytes a candidate against 50 in memory, and take 7.2 s to add and plan against 3.6 s (about 7 us
a candidate past the budget; ``python benchmarks/shortcuts.py --only candidates``). Runs under
the budget (48 MB, ``SPILL_BYTES``) never spill. The same pairs and bytes:
``tests/formats/test_formats_dpo.py``, ``tests/pipeline/test_engines.py``
(``test_spilled_dpo_candidates_write_the_same_bytes``).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import IO, NamedTuple

from rollcraft._errors import OutputError

__all__ = ["ENTRY", "Entry", "FilePairs", "merged", "write_run"]

#: A candidate, in memory and in a run: reward, the rollout id's 64 bits (0 for an id kept as
#: it is), its locator's source number and offset.
ENTRY = struct.Struct("<dQIq")
#: A task in a run: its key's byte length, its number of candidates, and how many of them have
#: an id kept as it is. The key follows, then the candidates, then those ids (:data:`_ODD`
#: and the id's bytes each).
_TASK = struct.Struct("<III")
#: An id kept as it is: the candidate's place in its task, and the id's byte length.
_ODD = struct.Struct("<II")
#: Runs are read through buffers of this size (one per run while they are merged).
_RUN_BUFFER = 1 << 16


class Entry(NamedTuple):
    """A candidate read back from a run. ``order`` ranks it among its task's candidates: the
    id's 64 bits, or the id itself in a task where some id is kept as it is (the 64 bits of an
    id of 16 hex digits sort as the id does)."""

    reward: float
    order: int | str
    source: int
    offset: int

    @property
    def rollout_id(self) -> str:
        return self.order if isinstance(self.order, str) else f"{self.order:016x}"


def _encode(text: str) -> bytes:
    # surrogatepass: any str round-trips, and byte order is code point order (as str sorts)
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A full or unwritable temporary folder is a clear error, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise OutputError(
            f"{tempfile.gettempdir()}: cannot write the DPO candidates that did not fit in memory "
            f"({exc.strerror or exc}); set TMPDIR to a folder with room"
        ) from None


def write_run(tasks: Iterable[tuple[str, bytes | memoryview, dict[int, str]]]) -> IO[bytes]:
    """Write ``(task key, its candidates' ENTRY records, ids kept as they are by place)`` in the
    order given (sorted by key, by the caller) to a new temporary file, and return it."""
    with _writing():
        return _write_run(tasks)


def _write_run(tasks: Iterable[tuple[str, bytes | memoryview, dict[int, str]]]) -> IO[bytes]:
    run = tempfile.TemporaryFile(prefix="rollcraft-dpo-run-", buffering=0)  # no buffer kept per run
    with open(os.dup(run.fileno()), "wb", buffering=1 << 20) as out:
        write, task, join = out.write, _TASK.pack, b"".join
        for key, entries, odd in tasks:
            raw = _encode(key)
            write(join((task(len(raw), len(entries) // ENTRY.size, len(odd)), raw, entries)))
            for place, rollout_id in odd.items():
                odd_raw = _encode(rollout_id)
                write(_ODD.pack(place, len(odd_raw)))
                write(odd_raw)
    return run


def _read_run(run: IO[bytes]) -> Iterator[tuple[bytes, list[Entry]]]:
    with open(os.dup(run.fileno()), "rb", buffering=_RUN_BUFFER) as handle:
        handle.seek(0)
        read, unpack_task, entry_size, make = handle.read, _TASK.unpack, ENTRY.size, Entry._make
        iter_unpack = ENTRY.iter_unpack
        while header := read(_TASK.size):
            key_size, count, odd_count = unpack_task(header)
            body = read(key_size + count * entry_size)
            key = body[:key_size]
            entries = list(map(make, iter_unpack(memoryview(body)[key_size:])))
            if odd_count:
                entries = _with_odd_ids(entries, read, odd_count)
            yield key, entries


def _with_odd_ids(entries: list[Entry], read: Callable[[int], bytes], count: int) -> list[Entry]:
    """A task's entries ranked by their ids as strings, with the ids kept as they are."""
    kept = {}
    for _ in range(count):
        place, size = _ODD.unpack(read(_ODD.size))
        kept[place] = _decode(read(size))
    return [entry._replace(order=kept.get(place, entry.rollout_id)) for place, entry in enumerate(entries)]


def merged(runs: list[IO[bytes]]) -> Iterator[tuple[bytes, list[Entry]]]:
    """Every task of ``runs`` once, in key order (the keys' UTF-8 bytes: the order of their
    ``str``), with the candidates of all runs in run order: the order they were added."""
    streams = heapq.merge(*(_read_run(run) for run in runs), key=itemgetter(0))
    for key, parts in groupby(streams, key=itemgetter(0)):
        lists = [part for _, part in parts]
        entries = lists[0] if len(lists) == 1 else [entry for part in lists for entry in part]
        if any(type(entry.order) is str for entry in entries):  # rank the task's ids as strings
            entries = [entry._replace(order=entry.rollout_id) for entry in entries]
        yield key, entries


#: A planned pair: its key's offset and byte length in the strings, then for each side its
#: reward, source number, offset, its id's 64 bits, and the offset and byte length + 1 in the
#: strings of an id kept as it is (0: the id is the 64 bits' 16 hex digits).
_PAIR = struct.Struct("<QI" + "dIqQQI" * 2)
_SIDE = 6  # fields a side takes in a pair's record
#: Bytes of a file read at once: the pairs, and the keys and ids they point to, are mostly read
#: in the order they were written.
_BLOCK = 1 << 16


class _Blocks:
    """Positioned reads of a file through one cached block (from any process that inherits it)."""

    __slots__ = ("_at", "_block", "_file")

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._block = b""
        self._at = -1

    def read(self, offset: int, size: int) -> bytes:
        start = offset - self._at
        if self._at < 0 or start < 0 or start + size > len(self._block):
            self._block = _pread(self._file, max(_BLOCK, size), offset)
            self._at, start = offset, 0
        return self._block[start : start + size]


class FilePairs:
    """Planned pairs in two temporary files: fixed-size records, and the keys and ids they
    point to. :meth:`add` appends; once :meth:`done`, pairs are read back by index."""

    __slots__ = ("_count", "_key", "_read_key", "_records", "_records_in", "_size", "_strings", "_strings_in")

    def __init__(self) -> None:
        with _writing():
            self._records = tempfile.TemporaryFile(prefix="rollcraft-dpo-pairs-", buffering=1 << 20)
            self._strings = tempfile.TemporaryFile(prefix="rollcraft-dpo-keys-", buffering=1 << 20)
        self._records_in = _Blocks(self._records)
        self._strings_in = _Blocks(self._strings)
        self._size = 0  # of the strings
        self._count = 0
        self._key: tuple[bytes, int] | None = None  # the last key written, and where
        self._read_key: tuple[int, str] | None = None  # the last key read, and where it sits

    def _string(self, data: bytes) -> int:
        at = self._size
        self._strings.write(data)
        self._size += len(data)
        return at

    def add(self, key: bytes, chosen: Entry, rejected: Entry) -> None:
        with _writing():
            if self._key is None or self._key[0] != key:  # a task's pairs share its key
                self._key = (key, self._string(key))
            sides: list[float | int] = []
            for side in (chosen, rejected):
                order = side.order
                if type(order) is int:
                    sides += (side.reward, side.source, side.offset, order, 0, 0)
                else:  # an id kept as it is, or a task whose ids rank as strings
                    raw = _encode(side.rollout_id)
                    sides += (side.reward, side.source, side.offset, 0, self._string(raw), len(raw) + 1)
            self._records.write(_PAIR.pack(self._key[1], len(key), *sides))
        self._count += 1

    def done(self) -> FilePairs:
        """Flush what was added (returns itself)."""
        with _writing():
            self._records.flush()
            self._strings.flush()
        return self

    def __len__(self) -> int:
        return self._count

    def _record(self, index: int) -> tuple[int, ...]:
        return _PAIR.unpack(self._records_in.read(index * _PAIR.size, _PAIR.size))

    def key(self, index: int) -> str:
        key_at, key_size = self._record(index)[:2]
        if self._read_key is None or self._read_key[0] != key_at:  # a task's pairs share it
            self._read_key = (key_at, _decode(self._strings_in.read(key_at, key_size)))
        return self._read_key[1]

    def sides(self, index: int) -> tuple[tuple[float, str, int, int], tuple[float, str, int, int]]:
        """``(reward, rollout id, source number, offset)`` of the chosen and the rejected side."""
        record = self._record(index)
        return self._side(record[2 : 2 + _SIDE]), self._side(record[2 + _SIDE :])

    def _side(self, fields: tuple[int, ...]) -> tuple[float, str, int, int]:
        reward, source, offset, bits, id_at, id_size = fields
        if id_size:
            return reward, _decode(self._strings_in.read(id_at, id_size - 1)), source, offset
        return reward, f"{bits:016x}", source, offset

    def sources(self, index: int) -> tuple[int, int]:
        """The source numbers of the chosen and the rejected side."""
        record = self._record(index)
        return record[3], record[3 + _SIDE]


def _pread(file: IO[bytes], size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(file.fileno(), size, offset)
    file.seek(offset)  # pragma: no cover (Windows)
    return file.read(size)  # pragma: no cover
