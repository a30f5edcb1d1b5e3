"""DPO preference pairs from the rollouts of one task, wherever they sit in the input files.

Two passes keep memory proportional to the number of rollouts' *facts*, not their bytes:
the first pass keeps (task key, reward, id, where the line is) per rollout; the second reads back
only the lines that make pairs (seeking in plain files; compressed files and stdin are spooled
to a temporary file during the first pass). Past :data:`SPILL_BYTES` of such facts (millions of
short rollouts) they go to disk as sorted runs, merged when the pairs are planned
(:mod:`rollcraft.formats._spill`): memory is then bounded, whatever the number of rollouts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal, NamedTuple, TypeVar, cast, overload

import orjson

from rollcraft._compact import Numbering, id_bits
from rollcraft._fast import tools_from_text
from rollcraft._io import is_plain_file
from rollcraft._read import ReadOptions, conversation_of_line
from rollcraft._records import Conversation, Message, Rollout, Tool
from rollcraft.formats._dialects import (
    ArgumentsMode,
    Dialect,
    canonical_messages,
    encode_messages,
    encode_tools,
    strip_call_ids,
)
from rollcraft.formats._spill import ENTRY, Entry, FilePairs, merged, write_run
from rollcraft.formats.sft import sft_skip_reason

__all__ = [
    "Candidate",
    "CompletionMode",
    "DpoOptions",
    "DpoReport",
    "LineStore",
    "PairCollector",
    "PairPlan",
    "Pairing",
    "PlannedPair",
    "dpo_rows",
    "pair_id",
    "plan_pairs",
]

Pairing = Literal["best-worst", "all", "top-k"]
CompletionMode = Literal["full", "first-divergence"]


@dataclass(frozen=True, slots=True)
class DpoOptions:
    """How pairs are made and written.

    ``completion=None`` picks the dialect's default: ``full`` for trl, ``first-divergence`` for
    openai and nemo-rl (which train one final assistant message).
    """

    dialect: Dialect = "trl"
    pairing: Pairing = "best-worst"
    k: int = 2
    min_margin: float = 0.1
    completion: CompletionMode | None = None
    arguments: ArgumentsMode = "string"

    @property
    def completion_mode(self) -> CompletionMode:
        if self.completion is not None:
            return self.completion
        return "full" if self.dialect == "trl" else "first-divergence"


class Candidate(NamedTuple):
    """What the first pass keeps of a rollout: enough to choose pairs and find the line again.

    A named tuple: one is made per rollout (a frozen dataclass's ``__init__`` costs 3x more).
    """

    reward: float
    rollout_id: str
    locator: tuple[str, int]


@dataclass(frozen=True, slots=True)
class PlannedPair:
    task_key: str
    chosen: Candidate
    rejected: Candidate


@dataclass(slots=True)
class DpoReport:
    """What pairing saw and did; reports add up across workers."""

    rollouts: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    tasks_with_two_or_more: int = 0
    pairs: int = 0
    skipped_tasks: Counter[str] = field(default_factory=Counter)
    skipped_pairs: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollouts": self.rollouts,
            "excluded_rollouts": dict(sorted(self.excluded.items())),
            "tasks": self.tasks,
            "tasks_with_two_or_more": self.tasks_with_two_or_more,
            "pairs": self.pairs,
            "skipped_tasks": dict(sorted(self.skipped_tasks.items())),
            "skipped_pairs": dict(sorted(self.skipped_pairs.items())),
        }


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
        line = _line_at(handle.fileno(), offset)
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


#: The first read of :func:`_line_at`: the median SFT row of the benchmark is 4 KiB, the 90th
#: percentile 20 KiB; a larger read copies more than the line needs, most of the time.
_FIRST_READ = 1 << 14


def _line_at(fd: int, offset: int) -> bytes:
    """The line starting at ``offset``, without its newline: positioned reads of growing size.

    ``seek`` + ``readline`` goes through the 8 KiB buffer and costs more than the line's decode.
    """
    size = _FIRST_READ
    chunk = os.pread(fd, size, offset)
    end = chunk.find(b"\n")
    if end >= 0:
        return chunk[:end]
    parts = [chunk]
    while len(chunk) == size:
        offset += size
        size = min(size * 2, 1 << 24)
        chunk = os.pread(fd, size, offset)
        end = chunk.find(b"\n")
        if end >= 0:
            parts.append(chunk[:end])
            break
        parts.append(chunk)
    return b"".join(parts)


def plan_pairs(
    groups: dict[str, list[Candidate]], options: DpoOptions, report: DpoReport
) -> list[PlannedPair]:
    """Choose pairs per task (tasks in sorted key order; deterministic tie-breaking by rollout id)."""
    planned: list[PlannedPair] = []
    for task_key in sorted(groups):
        _plan_task(task_key, groups[task_key], options, report, planned)
    return planned


def _plan_task(
    task_key: str,
    candidates: list[Candidate],
    options: DpoOptions,
    report: DpoReport,
    planned: list[PlannedPair],
) -> None:
    ranked = sorted(candidates, key=lambda c: (-c.reward, c.rollout_id))
    planned.extend(PlannedPair(task_key, c, r) for c, r in _task_pairs(ranked, options, report))


_C = TypeVar("_C", Candidate, "_Ranked", Entry)


def _task_pairs(ranked: list[_C], options: DpoOptions, report: DpoReport) -> list[tuple[_C, _C]]:
    """The pairs of one task's ranked candidates (the task counted in ``report``)."""
    if not _plannable(ranked, report):
        return []
    pairs = _choose(ranked, options)
    if not pairs:
        report.skipped_tasks["under_margin"] += 1
    return pairs


def _choose(ranked: list[_C], options: DpoOptions) -> list[tuple[_C, _C]]:
    def ok(chosen: _C, rejected: _C) -> bool:
        margin = chosen.reward - rejected.reward
        return margin > 0 and margin >= options.min_margin

    if options.pairing == "best-worst":
        candidates = [(ranked[0], ranked[-1])]
    elif options.pairing == "all":
        candidates = [(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]]
    else:
        k = max(1, options.k)
        best, worst = ranked[:k], ranked[::-1][:k]
        candidates = [(a, b) for a in best for b in worst if a is not b]
    return [(a, b) for a, b in candidates if ok(a, b)]


#: A packed candidate: reward, the rollout id's 64 bits, its locator's source (a number) and
#: offset (a sorted run on disk holds the same records).
_PACKED = ENTRY

#: How many bytes of candidates (and of their tasks' entries) a DPO run keeps in memory before it
#: writes them out as a sorted run (:mod:`rollcraft.formats._spill`): 48 MB is about 700,000
#: candidates of 4 rollouts a task, 18 GB of the benchmark's 26 KB rollouts or 1.5 GB of 2 KB
#: ones; runs below it never touch the disk.
SPILL_BYTES = 48 * 2**20
#: What a task's entry in the table costs besides its key's characters (the key's str header,
#: the dict's slot and the int: 49 + 70 measured), and what a candidate costs (its record and
#: the link to the one before).
_TASK_BYTES, _CANDIDATE_BYTES = 120, 32


class _Candidates:
    """Every task's candidates, packed: 32 bytes each (a 28-byte record, a 4-byte link), where a
    :class:`Candidate` with its float, id string and locator tuple takes about 250 as Python
    objects (at 1 KB per rollout, 250 MB per GB of input). A task keeps only the number of its
    last candidate, each candidate that of the one before (most tasks of short rollouts have one
    or two: an array each cost 100 bytes);
    candidates are made again, the same, one task at a time when pairs are planned.

    Past ``budget`` bytes the table goes to disk as a sorted run and starts again empty; a plan
    of spilled candidates merges the runs (:mod:`rollcraft.formats._spill`), so memory stays
    bounded at any number of rollouts.
    """

    __slots__ = (
        "_before",
        "_budget",
        "_ids",
        "_packed",
        "_runs",
        "_sources",
        "_task_bytes",
        "_tasks",
        "count",
    )

    def __init__(self, budget: int | None = None) -> None:
        self._packed = bytearray()
        self._before = array("I")  # the number + 1 of the task's candidate before (0: its first)
        self._tasks: dict[str, int] = {}  # the number of each task's last candidate
        self._sources = Numbering()  # the locators' sources
        self._ids: dict[int, str] = {}  # ids that are not 16 lowercase hex digits, by number
        self.count = 0  # candidates in memory
        self._budget = SPILL_BYTES if budget is None else budget
        self._task_bytes = 0  # what the tasks' entries take
        self._runs: list[IO[bytes]] = []

    def add(self, task_key: str, reward: float, rollout_id: str, locator: tuple[str, int]) -> None:
        number = self.count
        source, offset = locator
        source_number = self._sources.number(source)
        bits = id_bits(rollout_id)
        if bits is None:
            self._ids[number] = rollout_id
            bits = 0
        self._packed += _PACKED.pack(reward, bits, source_number, offset)
        before = self._tasks.get(task_key)
        if before is None:
            before = -1
            self._task_bytes += _TASK_BYTES + len(task_key)
        self._before.append(before + 1)
        self._tasks[task_key] = number
        self.count = number + 1
        if number * _CANDIDATE_BYTES + self._task_bytes > self._budget:
            self._spill()

    def _spill(self) -> None:
        """Write the candidates in memory out as a sorted run, and start again empty."""
        if not self._tasks:
            return
        ids, size, tasks, before = self._ids, _PACKED.size, self._tasks, self._before
        none: dict[int, str] = {}
        with memoryview(self._packed) as packed:

            def task(task_key: str) -> tuple[str, bytes | memoryview, dict[int, str]]:
                last = tasks[task_key]
                if not before[last] and not ids:  # the task's one candidate (the common case)
                    return task_key, packed[last * size : (last + 1) * size], none
                numbers = self._numbers(task_key)
                entries = b"".join([packed[n * size : (n + 1) * size] for n in numbers])
                odd = {place: ids[n] for place, n in enumerate(numbers) if n in ids} if ids else none
                return task_key, entries, odd

            self._runs.append(write_run(map(task, sorted(self._tasks))))
        self._packed, self._before, self._tasks, self._ids = bytearray(), array("I"), {}, {}
        self.count = self._task_bytes = 0

    @property
    def spilled(self) -> bool:
        """Whether some candidates went to disk."""
        return bool(self._runs)

    def task_keys(self) -> list[str]:
        return sorted(self._tasks)

    def of(self, task_key: str) -> list[Candidate]:
        """The candidates of one task, in the order they were added."""
        return [self.candidate(number) for number in self._numbers(task_key)]

    def groups(self) -> dict[str, list[Candidate]]:
        """Every task's candidates, in the order they were added (tasks in key order)."""
        if not self._runs:
            return {key: self.of(key) for key in self.task_keys()}
        self._spill()
        values = self._sources.values
        return {
            key.decode("utf-8", "surrogatepass"): [
                Candidate(e.reward, e.rollout_id, (values[e.source], e.offset)) for e in entries
            ]
            for key, entries in merged(self._runs)
        }

    def _numbers(self, task_key: str) -> list[int]:
        """The numbers of a task's candidates, in the order they were added."""
        numbers, before = [], self._before
        number = self._tasks[task_key]
        while number >= 0:
            numbers.append(number)
            number = before[number] - 1
        numbers.reverse()
        return numbers

    def candidate(self, number: int) -> Candidate:
        reward, bits, source, offset = _PACKED.unpack_from(self._packed, number * _PACKED.size)
        rollout_id = self._ids.get(number) if self._ids else None
        if rollout_id is None:
            rollout_id = f"{bits:016x}"
        return Candidate(reward, rollout_id, (self._sources.values[source], offset))

    def source(self, number: int) -> str:
        """The source of a candidate's locator."""
        source: int = _SOURCE.unpack_from(self._packed, number * _PACKED.size + _SOURCE_AT)[0]
        return self._sources.values[source]

    def ranked(self, task_key: str) -> list[_Ranked]:
        """A task's candidates as :func:`plan_pairs` ranks them: by reward, high first, then by
        rollout id (the 64 bits of an id of 16 hex digits sort as the id does)."""
        unpack, packed, ids, size = _PACKED.unpack_from, self._packed, self._ids, _PACKED.size
        items = []
        for number in self._numbers(task_key):
            reward, bits, _, _ = unpack(packed, number * size)
            if ids:  # some id is kept as it is: compare them all as strings
                kept = ids.get(number)
                items.append(_Ranked(reward, f"{bits:016x}" if kept is None else kept, number))
            else:
                items.append(_Ranked(reward, bits, number))
        items.sort(key=_rank)
        return items

    def plan(self, options: DpoOptions, report: DpoReport) -> PairPlan:
        """The pairs of every task (tasks in sorted key order, as :func:`plan_pairs` chooses)."""
        if self._runs:
            return self._plan_runs(options, report)
        pairs = _MemoryPairs(self)
        for task_key in self.task_keys():
            for chosen, rejected in _task_pairs(self.ranked(task_key), options, report):
                pairs.add(task_key, chosen.number, rejected.number)
            del self._tasks[task_key]
        return PairPlan(pairs)

    def _plan_runs(self, options: DpoOptions, report: DpoReport) -> PairPlan:
        """:meth:`plan` for spilled candidates: the runs merged, the pairs written to disk."""
        self._spill()
        pairs = FilePairs()
        for key, entries in merged(self._runs):
            entries.sort(key=_rank)
            for chosen, rejected in _task_pairs(entries, options, report):
                pairs.add(key, chosen, rejected)
        for run in self._runs:
            run.close()
        self._runs = []
        return PairPlan(_FileStore(pairs.done(), self._sources.values))


class _Ranked(NamedTuple):
    reward: float
    order: int | str  # the rollout id's 64 bits, or the id itself
    number: int


def _rank(item: _Ranked | Entry) -> tuple[float, int | str]:
    """How a task's candidates are ranked: by reward, high first, then by rollout id."""
    return -item.reward, item.order


_SOURCE = struct.Struct("<I")
_SOURCE_AT = 16  # where the source's number sits in a candidate


class _MemoryPairs:
    """Planned pairs as the numbers of their candidates in the table, with their task keys."""

    __slots__ = ("_keys", "_numbers", "_table")

    def __init__(self, table: _Candidates) -> None:
        self._table = table
        self._keys: list[str] = []
        self._numbers: array[int] = array("I")

    def add(self, task_key: str, chosen: int, rejected: int) -> None:
        self._keys.append(task_key)
        self._numbers.append(chosen)
        self._numbers.append(rejected)

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, index: int) -> str:
        return self._keys[index]

    def keys(self, start: int, stop: int) -> Sequence[str]:
        return self._keys if start == 0 and stop == len(self._keys) else self._keys[start:stop]

    def pair(self, index: int) -> tuple[Candidate, Candidate]:
        candidate, numbers = self._table.candidate, self._numbers
        return candidate(numbers[2 * index]), candidate(numbers[2 * index + 1])

    def sources(self, index: int) -> tuple[str, str]:
        source, numbers = self._table.source, self._numbers
        return source(numbers[2 * index]), source(numbers[2 * index + 1])


class _FileStore:
    """Planned pairs on disk (:class:`rollcraft.formats._spill.FilePairs`), made candidates again."""

    __slots__ = ("_pairs", "_sources")

    def __init__(self, pairs: FilePairs, sources: list[str]) -> None:
        self._pairs = pairs
        self._sources = sources

    def __len__(self) -> int:
        return len(self._pairs)

    def key(self, index: int) -> str:
        return self._pairs.key(index)

    def keys(self, start: int, stop: int) -> Sequence[str]:
        return _Keys(self, start, stop)

    def pair(self, index: int) -> tuple[Candidate, Candidate]:
        sources = self._sources
        chosen, rejected = self._pairs.sides(index)
        return (
            Candidate(chosen[0], chosen[1], (sources[chosen[2]], chosen[3])),
            Candidate(rejected[0], rejected[1], (sources[rejected[2]], rejected[3])),
        )

    def sources(self, index: int) -> tuple[str, str]:
        chosen, rejected = self._pairs.sources(index)
        return self._sources[chosen], self._sources[rejected]


class _Keys(Sequence[str]):
    """The task keys of a slice of pairs on disk, read as they are asked for."""

    __slots__ = ("_start", "_stop", "_store")

    def __init__(self, store: _FileStore, start: int, stop: int) -> None:
        self._store, self._start, self._stop = store, start, stop

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            start, stop = _span(index, len(self))
            return _Keys(self._store, self._start + start, self._start + stop)
        return self._store.key(self._start + _position(index, len(self)))


def _span(index: slice, length: int) -> tuple[int, int]:
    """Where a slice of a plan (or of its keys) starts and stops; only step 1 is allowed."""
    start, stop, step = index.indices(length)
    if step != 1:
        raise ValueError("a plan slices with step 1 only")
    return start, stop


def _position(index: int, length: int) -> int:
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError("pair index out of range")
    return index


class PairPlan(Sequence[PlannedPair]):
    """The planned pairs, three numbers each (or records on disk for a run that spilled its
    candidates); a :class:`PlannedPair` is made when one is read.

    A list of planned pairs (each with its two :class:`Candidate` objects) took about 540 bytes
    a pair, as much as all the candidates of a run of 1 KB rollouts put together.
    """

    __slots__ = ("_start", "_stop", "_store")

    def __init__(self, store: _MemoryPairs | _FileStore, start: int = 0, stop: int | None = None) -> None:
        self._store = store
        self._start = start
        self._stop = len(store) if stop is None else stop

    @property
    def task_keys(self) -> Sequence[str]:
        """Each pair's task key (in plan order)."""
        return self._store.keys(self._start, self._stop)

    def sources(self) -> Iterator[tuple[str, str]]:
        """Each pair's locator sources, chosen and rejected (without making the pairs)."""
        return map(self._store.sources, range(self._start, self._stop))

    def __len__(self) -> int:
        return self._stop - self._start

    @overload
    def __getitem__(self, index: int) -> PlannedPair: ...
    @overload
    def __getitem__(self, index: slice) -> PairPlan: ...
    def __getitem__(self, index: int | slice) -> PlannedPair | PairPlan:
        if isinstance(index, slice):
            start, stop = _span(index, len(self))
            return PairPlan(self._store, self._start + start, self._start + stop)
        return self._pair(self._start + _position(index, len(self)))

    def __iter__(self) -> Iterator[PlannedPair]:
        return map(self._pair, range(self._start, self._stop))

    def _pair(self, index: int) -> PlannedPair:
        chosen, rejected = self._store.pair(index)
        return PlannedPair(self._store.key(index), chosen, rejected)


def _plannable(ranked: Sequence[_Ranked] | Sequence[Candidate] | Sequence[Entry], report: DpoReport) -> bool:
    """Counts the task; whether it has two or more rollouts that are not all tied."""
    report.tasks += 1
    if len(ranked) < 2:
        report.skipped_tasks["single_rollout"] += 1
        return False
    report.tasks_with_two_or_more += 1
    if ranked[0].reward == ranked[-1].reward:
        report.skipped_tasks["all_tied"] += 1
        return False
    return True


def task_keys_of(planned: Sequence[PlannedPair]) -> Sequence[str]:
    """Each planned pair's task key, in order (without making the pairs of a :class:`PairPlan`)."""
    return planned.task_keys if isinstance(planned, PairPlan) else [pair.task_key for pair in planned]


class PairCollector:
    """Collects candidates rollout by rollout, then makes and encodes the pairs.

    >>> collector = PairCollector(DpoOptions())                     # doctest: +SKIP
    >>> for rollout in rollouts: collector.add(rollout)             # doctest: +SKIP
    >>> lines = list(collector.rows())                              # doctest: +SKIP
    """

    def __init__(
        self, options: DpoOptions, *, read_options: ReadOptions | None = None, report: DpoReport | None = None
    ) -> None:
        self.options = options
        self.read_options = read_options or ReadOptions()
        self.report = report if report is not None else DpoReport()
        self.store = LineStore()
        self._candidates = _Candidates()
        self._sft_file: str | None = None
        self._sides_file: str | None = None

    def add(self, rollout: Rollout, *, sft_offset: int | None = None, side_offset: int | None = None) -> None:
        """Consider one rollout (only facts and where its line is are kept).

        ``sft_offset``: where the rollout's row starts in the SFT file given to
        :meth:`read_sft_rows`; ``side_offset``: where its trl row starts in the file given to
        :meth:`keep_sides` (its conversation is read back from there).
        """
        self.add_checked(rollout, sft_skip_reason(rollout), sft_offset=sft_offset, side_offset=side_offset)

    def add_checked(
        self,
        rollout: Rollout,
        reason: str | None,
        *,
        sft_offset: int | None = None,
        side_offset: int | None = None,
    ) -> None:
        """:meth:`add`, for a caller that has ``reason = sft_skip_reason(rollout)`` already."""
        self.report.rollouts += 1
        if reason is not None:
            self.report.excluded[reason] += 1
            return
        if sft_offset is not None and self._sft_file is not None:
            locator = sft_locator(len(rollout.conversation.prompt), sft_offset)
        elif side_offset is not None and self._sides_file is not None:
            locator = _locator(_SIDE_MARK, len(rollout.conversation.prompt), side_offset)
        else:
            locator = self.store.remember(rollout)
        self._candidates.add(rollout.task_key, rollout.reward, rollout.rollout_id, locator)

    def read_sft_rows(self, path: str | os.PathLike[str]) -> bool:
        """Read pair conversations back from the trl SFT rows in ``path`` where there are some.

        Only when both sides are trl with string arguments, whose SFT ``messages`` are exactly
        the encoded messages of a pair's sides: an SFT row (about a third of the raw line) is
        decoded instead of the raw line decoded and normalized again. Every side is then compared
        and encoded in that uniform trl form (the same bytes: the mapping is one to one).
        Returns whether it applies.
        """
        if not self.reads_rows:
            return False
        self._sft_file = os.fspath(path)
        return True

    def keep_sides(self, path: str | os.PathLike[str]) -> bool:
        """Read pair conversations back from ``path``, where the pass writes the trl rows
        (``sft_row(rollout, "trl")``) of the candidates that get no SFT row: like
        :meth:`read_sft_rows`, for the other candidates. Returns whether it applies."""
        if not self.reads_rows:
            return False
        self._sides_file = os.fspath(path)
        return True

    @property
    def reads_sft_rows(self) -> bool:
        """Whether :meth:`read_sft_rows` applied."""
        return self._sft_file is not None

    @property
    def reads_rows(self) -> bool:
        """Whether pairs may be read back from trl rows (trl pairs with string arguments)."""
        return self.options.dialect == "trl" and self.options.arguments == "string"

    def splices_most(self, planned: Sequence[PlannedPair]) -> bool:
        """Whether at least 90% of ``planned`` have both sides in trl rows and can be spliced
        (trl pairs of full completions), with no decode or normalization."""
        if self._sft_file is None and self._sides_file is None:
            return False
        if self.options.dialect != "trl" or self.options.completion_mode != "full":
            return False
        rows = _Rows(self._sft_file, self._sides_file)
        if isinstance(planned, PairPlan):
            sources = planned.sources()
        else:
            sources = ((p.chosen.locator[0], p.rejected.locator[0]) for p in planned)
        spliceable = sum(rows.holds(chosen) and rows.holds(rejected) for chosen, rejected in sources)
        return spliceable >= 0.9 * len(planned)

    def add_candidate(self, task_key: str, candidate: Candidate) -> None:
        """Take a candidate another process collected (its locator must point into a plain file)."""
        self._candidates.add(task_key, candidate.reward, candidate.rollout_id, candidate.locator)

    @property
    def groups(self) -> dict[str, list[Candidate]]:
        """The candidates by task key (made anew on each access; for inspection and tests)."""
        return self._candidates.groups()

    def rows(self) -> Iterator[bytes]:
        """Plan the pairs, read their lines back and yield the encoded rows (then clean up)."""
        for _, line in self.pairs():
            yield line

    def pairs(self) -> Iterator[tuple[str, bytes]]:
        """Like :meth:`rows`, each encoded row with its pair id (:func:`pair_id`)."""
        try:
            yield from self.encode(self.plan(), self.report)
        finally:
            self.store.close()

    def plan(self) -> PairPlan:
        """Choose the pairs (and count the tasks in :attr:`report`); nothing is read back yet.

        Once: the candidates are handed over to the plan.
        """
        table, self._candidates = self._candidates, _Candidates()
        return table.plan(self.options, self.report)

    def encode(self, planned: Sequence[PlannedPair], report: DpoReport) -> Iterator[tuple[str, bytes]]:
        """Read back the lines of ``planned`` and encode their rows (pairs counted in ``report``).

        Any slice of the plan that starts and ends at task boundaries may be encoded on its own
        (in another process, too): the rows are the same as those of the whole plan.
        """
        rows = None
        if self._sft_file is not None or self._sides_file is not None:
            rows = _Rows(self._sft_file, self._sides_file)
        return _second_pass(planned, self.store, self.options, self.read_options, report, rows=rows)


def dpo_rows(
    rollouts: Iterable[Rollout],
    options: DpoOptions,
    *,
    read_options: ReadOptions | None = None,
    report: DpoReport | None = None,
) -> Iterator[bytes]:
    """Encoded DPO lines (with their newline): group by task, pair, read back, write.

    >>> from rollcraft import read_rollouts, Rollout
    >>> rows = list(dpo_rows((r for r in read_rollouts(["examples/rollouts"]) if isinstance(r, Rollout)),
    ...                      DpoOptions()))
    """
    collector = PairCollector(options, read_options=read_options, report=report)
    for rollout in rollouts:
        collector.add(rollout)
    yield from collector.rows()


def _second_pass(
    planned: Sequence[PlannedPair],
    store: LineStore,
    options: DpoOptions,
    read_options: ReadOptions,
    report: DpoReport,
    *,
    rows: _Rows | None = None,
) -> Iterator[tuple[str, bytes]]:
    cache: dict[tuple[str, int], Conversation] = {}
    lines: dict[tuple[str, int], bytes] = {}
    splice = rows is not None and options.dialect == "trl" and options.completion_mode == "full"
    keys = task_keys_of(planned)
    for index, pair in enumerate(planned):
        spliced = _spliced(pair, store, rows, lines) if splice and rows is not None else None
        if spliced is None:
            chosen = _load(pair.chosen, store, read_options, cache, rows, lines)
            rejected = _load(pair.rejected, store, read_options, cache, rows, lines)
        if index + 1 == len(keys) or keys[index + 1] != pair.task_key:
            cache.clear()
            lines.clear()
        if spliced is not None:
            report.pairs += 1
            yield f"{pair.chosen.rollout_id}:{pair.rejected.rollout_id}", spliced
            continue
        row, reason = _pair_row(pair.task_key, chosen, rejected, pair.chosen, pair.rejected, options)
        if row is None:
            report.skipped_pairs[reason] += 1
            continue
        report.pairs += 1
        yield pair_id(row, options.dialect), orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)


def pair_id(row: dict[str, Any], dialect: Dialect) -> str:
    """A pair's id in ``dpo_ids.txt``: ``chosen_id:rejected_id`` for trl, else 16 hex digits of the
    sha256 of the row's sorted-keys JSON (the other dialects' rows carry no ids)."""
    if dialect == "trl":
        return f"{row['chosen_id']}:{row['rejected_id']}"
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _spliced(
    pair: PlannedPair, store: LineStore, rows: _Rows, lines: dict[tuple[str, int], bytes]
) -> bytes | None:
    """The trl row of a pair whose sides both have trl rows (SFT or side rows), spliced from
    the rows' bytes.

    The same bytes as decoding both rows and encoding the pair: the rows' message lists are the
    trl encoding of the sides (the mapping is one to one) and orjson writes no whitespace. None
    (the general path decides) when a side has no SFT row, or when the sides end with the same
    message: they might be identical but for their call ids, which needs the decoded messages.
    (The last message is a final answer: no tool calls, so no call ids, in its bytes.)
    """
    chosen, rejected = pair.chosen, pair.rejected
    good_at, bad_at = rows.find(chosen.locator), rows.find(rejected.locator)
    if good_at is None or bad_at is None:
        return None
    good = _row_parts(_row(chosen, good_at, store, lines), good_at[2])
    bad = _row_parts(_row(rejected, bad_at, store, lines), bad_at[2])
    if good is None or bad is None or good[3] == bad[3]:
        return None
    tail = orjson.dumps(
        {
            "quality_difference": round(chosen.reward - rejected.reward, 12),
            "task_key": pair.task_key,
            "chosen_reward": chosen.reward,
            "rejected_reward": rejected.reward,
            "chosen_id": chosen.rollout_id,
            "rejected_id": rejected.rollout_id,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )
    prompt, win, tools = good[0], good[1], good[2]
    parts = (b'{"prompt":[', prompt, b'],"chosen":[', win, b'],"rejected":[', bad[1], b'],"tools":', tools)
    return b"".join((*parts, b",", memoryview(tail)[1:]))


_MESSAGES_HEAD = b'{"messages":['
_MESSAGE_START = b',{"role":'
_TOOLS_KEY = b'],"tools":'
_REWARD_KEY = b',"reward":'

_Parts = tuple[memoryview, memoryview, memoryview, memoryview]


def _row(
    candidate: Candidate, at: tuple[str, int, int], store: LineStore, lines: dict[tuple[str, int], bytes]
) -> bytes:
    """A candidate's trl row (``at`` from :meth:`_Rows.find`), read once per task."""
    row = lines.get(candidate.locator)
    if row is None:
        row = lines[candidate.locator] = store.fetch(at[:2])
    return row


def _row_parts(row: bytes, prompt_messages: int) -> _Parts | None:
    """A trl SFT row cut into its prompt messages, completion messages, tools JSON and last
    message, or None (not laid out as expected).

    The row is orjson's JSON: no whitespace outside strings, and every quote inside a string is
    escaped. So ``,{"role":`` starts a message (tool calls have no role), the last
    ``],"tools":`` ends the messages and the last ``,"reward":`` ends the tools' string.
    """
    if not row.startswith(_MESSAGES_HEAD):
        return None
    head = start = len(_MESSAGES_HEAD)
    try:
        for _ in range(prompt_messages):
            start = row.index(_MESSAGE_START, start) + 1
        end = row.rindex(_TOOLS_KEY, start)
        tools = end + len(_TOOLS_KEY)
        tools_end = row.rindex(_REWARD_KEY, tools)
    except ValueError:
        return None
    if start == end:  # no completion messages
        return None
    last = row.rfind(_MESSAGE_START, start, end) + 1 or start
    view = memoryview(row)
    return view[head : max(head, start - 1)], view[start:end], view[tools:tools_end], view[last:end]


def _load(
    candidate: Candidate,
    store: LineStore,
    read_options: ReadOptions,
    cache: dict[tuple[str, int], Conversation],
    rows: _Rows | None = None,
    lines: dict[tuple[str, int], bytes] | None = None,
) -> Conversation:
    """The conversation of a candidate's line (read back; the first pass has every other fact).

    With ``rows`` (see :meth:`PairCollector.read_sft_rows`) every conversation comes back with
    trl-encoded messages: from its trl row where it has one (``lines``: the rows this task has
    read already), else encoded here.
    """
    found = cache.get(candidate.locator)
    if found is None:
        where = rows.find(candidate.locator) if rows is not None else None
        try:
            if where is not None:
                row = _row(candidate, where, store, lines if lines is not None else {})
                found = _from_sft_row(row, where[2])
            else:
                found = conversation_of_line(store.fetch(candidate.locator), read_options)
                if rows is not None:
                    prompt, completion = found.prompt, found.completion
                    found = Conversation(
                        encode_messages(prompt, "trl"), encode_messages(completion, "trl"), found.tools
                    )
        except ValueError:  # the same bytes parsed once already
            raise RuntimeError(f"line of rollout {candidate.rollout_id} could not be read back") from None
        cache[candidate.locator] = found
    return found


#: Locators into the SFT file (or into the side rows) carry this prefix and the number of prompt
#: messages.
_SFT_MARK = "\0sft:"
_SIDE_MARK = "\0side:"
_MARKS: dict[tuple[str, int], str] = {}


def sft_locator(prompt_messages: int, offset: int) -> tuple[str, int]:
    """A candidate's locator pointing at its row in the SFT file (see :meth:`PairCollector.read_sft_rows`)."""
    return _locator(_SFT_MARK, prompt_messages, offset)


def _locator(kind: str, prompt_messages: int, offset: int) -> tuple[str, int]:
    mark = _MARKS.get((kind, prompt_messages))
    if mark is None:
        mark = _MARKS[kind, prompt_messages] = f"{kind}{prompt_messages}"
    return mark, offset


@dataclass(frozen=True, slots=True)
class _Rows:
    """Where trl rows of candidates are: the SFT file and the side rows (either may be None)."""

    sft: str | None
    sides: str | None

    def holds(self, source: str) -> bool:
        """Whether a locator with this source points into one of the files."""
        return (source.startswith(_SFT_MARK) and self.sft is not None) or (
            source.startswith(_SIDE_MARK) and self.sides is not None
        )

    def find(self, locator: tuple[str, int]) -> tuple[str, int, int] | None:
        """``(path, offset, prompt messages)`` of a locator into one of the files, else None."""
        source, offset = locator
        if source.startswith(_SFT_MARK) and self.sft is not None:
            return self.sft, offset, int(source[len(_SFT_MARK) :])
        if source.startswith(_SIDE_MARK) and self.sides is not None:
            return self.sides, offset, int(source[len(_SIDE_MARK) :])
        return None


def shift_sft_locator(candidate: Candidate, base: int) -> Candidate:
    """``candidate`` with an SFT-row locator moved by ``base`` bytes (others unchanged)."""
    source, offset = candidate.locator
    if not source.startswith(_SFT_MARK):
        return candidate
    return Candidate(candidate.reward, candidate.rollout_id, (source, base + offset))


def _from_sft_row(line: bytes, prompt_messages: int) -> Conversation:
    row = orjson.loads(line)
    messages = row["messages"]
    return Conversation(messages[:prompt_messages], messages[prompt_messages:], tools_from_text(row["tools"]))


def build_pair(
    task_key: str, chosen: Rollout, rejected: Rollout, options: DpoOptions
) -> tuple[dict[str, Any] | None, str]:
    """One pair's row in the dialect, or ``(None, reason)`` when it carries no preference."""
    return _pair_row(
        task_key,
        chosen.conversation,
        rejected.conversation,
        Candidate(chosen.reward, chosen.rollout_id, (chosen.source, chosen.offset)),
        Candidate(rejected.reward, rejected.rollout_id, (rejected.source, rejected.offset)),
        options,
    )


def _pair_row(
    task_key: str,
    chosen: Conversation,
    rejected: Conversation,
    chosen_facts: Candidate,
    rejected_facts: Candidate,
    options: DpoOptions,
) -> tuple[dict[str, Any] | None, str]:
    prompt = chosen.prompt
    good, bad = chosen.completion, rejected.completion
    if options.dialect == "openai":  # no field for reasoning: sides differing only there are one side
        prompt, good, bad = _unreasoned(prompt), _unreasoned(good), _unreasoned(bad)
    if _same_messages(good, bad):
        return None, "identical_sides"
    if options.completion_mode == "first-divergence":
        split = _divergence(good, bad)
        if split is None:
            return None, "no_assistant_divergence"
        prompt = [*prompt, *good[:split]]
        good, bad = good[split : split + 1], bad[split : split + 1]
    return _encode_pair(task_key, prompt, good, bad, chosen.tools, chosen_facts, rejected_facts, options), ""


def _unreasoned(messages: list[Message]) -> list[Message]:
    """``messages`` as a dialect without reasoning writes them (``reasoning_content`` left out)."""
    if not any(m.get("reasoning_content") for m in messages):
        return messages
    return [cast(Message, {k: v for k, v in m.items() if k != "reasoning_content"}) for m in messages]


def _same_messages(good: list[Message], bad: list[Message]) -> bool:
    """``strip_call_ids(good) == strip_call_ids(bad)``, answered cheaply when the texts differ.

    Canonical bytes keep every key but the call ids, so a different length, role or text content
    already makes them differ.
    """
    if len(good) != len(bad):
        return False
    for a, b in zip(good, bad, strict=True):
        text_a, text_b = a["content"], b["content"]
        if type(text_a) is str and type(text_b) is str and (text_a != text_b or a["role"] != b["role"]):
            return False
    return strip_call_ids(good) == strip_call_ids(bad)


def _divergence(good: list[Message], bad: list[Message]) -> int | None:
    for index, (a, b) in enumerate(zip(canonical_messages(good), canonical_messages(bad), strict=False)):
        if a != b:
            both_assistant = good[index]["role"] == "assistant" and bad[index]["role"] == "assistant"
            return index if both_assistant else None
    return None


def _encode_pair(
    task_key: str,
    prompt: list[Message],
    good: list[Message],
    bad: list[Message],
    tools: list[Tool],
    chosen: Candidate,
    rejected: Candidate,
    options: DpoOptions,
) -> dict[str, Any]:
    dialect, arguments = options.dialect, options.arguments
    context = encode_messages(prompt, dialect, arguments=arguments)
    win = encode_messages(good, dialect, arguments=arguments)
    lose = encode_messages(bad, dialect, arguments=arguments)
    encoded_tools = encode_tools(tools, dialect)
    if dialect == "openai":
        return {
            "input": {"messages": context, "tools": encoded_tools},
            "preferred_output": win,
            "non_preferred_output": lose,
        }
    if dialect == "nemo-rl":
        return {
            "context": context,
            "completions": [{"rank": 0, "completion": win}, {"rank": 1, "completion": lose}],
        }
    return {
        "prompt": context,
        "chosen": win,
        "rejected": lose,
        "tools": encoded_tools,
        "quality_difference": round(chosen.reward - rejected.reward, 12),
        "task_key": task_key,
        "chosen_reward": chosen.reward,
        "rejected_reward": rejected.reward,
        "chosen_id": chosen.rollout_id,
        "rejected_id": rejected.rollout_id,
    }
