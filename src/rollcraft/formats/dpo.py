"""DPO preference pairs from the rollouts of one task, wherever they sit in the input files.

Two passes keep memory proportional to the number of rollouts' *facts*, not their bytes:
the first pass keeps (task key, reward, id, where the line is) per rollout; the second reads back
only the lines that make pairs (seeking in plain files; compressed files and stdin are spooled
to a temporary file during the first pass). Past :data:`SPILL_BYTES` of such facts (millions of
short rollouts) they go to disk as sorted runs, merged when the pairs are planned
(:mod:`rollcraft.formats._spill`): memory is then bounded, whatever the number of rollouts.

Modules: :mod:`._pairing` (candidates ranked and paired per task), :mod:`._pair_plan` (the
planned pairs, compact), :mod:`._lines` (input lines read back), :mod:`._sides` (sides read back
from SFT or side rows, or spliced), :mod:`._pair_rows` (a pair's row per dialect); here the
options, the report, the packed candidate table, the collector and the second pass.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import orjson

from rollcraft._compact import Numbering, id_bits
from rollcraft._records import Conversation, Rollout
from rollcraft.formats._dialects import ArgumentsMode, Dialect
from rollcraft.formats._lines import LineStore
from rollcraft.formats._pair_plan import PairPlan, _FileStore, _MemoryPairs
from rollcraft.formats._pair_plan import task_keys_of as task_keys_of
from rollcraft.formats._pair_rows import _pair_row, pair_id
from rollcraft.formats._pairing import Candidate, PlannedPair, _rank, _Ranked, _task_pairs, plan_pairs
from rollcraft.formats._sides import _SIDE_MARK, _load, _locator, _Rows, _spliced
from rollcraft.formats._sides import sft_locator as sft_locator
from rollcraft.formats._sides import shift_sft_locator as shift_sft_locator
from rollcraft.formats._spill import ENTRY, FilePairs, merged, write_run
from rollcraft.formats._templates import DEFAULT_SHAPE, RowShape
from rollcraft.formats.sft import sft_skip_reason
from rollcraft.read._reader import ReadOptions

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
    shape: RowShape | None = None  # a chat template's row shape (see rollcraft.formats.probe_template)

    @property
    def completion_mode(self) -> CompletionMode:
        if self.completion is not None:
            return self.completion
        return "full" if self.dialect == "trl" else "first-divergence"


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

    What the packing buys (``python benchmarks/shortcuts.py --only candidates``: 500,000
    candidates of 125,000 tasks added and planned): 50 bytes a candidate held, its task's entry
    included, against 278 for ``Candidate`` lists planned by :func:`plan_pairs`, in no more time
    (3.6 s against 4.7 s there). The same pairs: ``tests/formats/test_formats_dpo.py``
    (``test_packed_candidates_plan_the_pairs_of_candidate_lists``).
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


_SOURCE = struct.Struct("<I")
_SOURCE_AT = 16  # where the source's number sits in a candidate


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
        """Whether pairs may be read back from trl rows (trl pairs with string arguments, in the
        default row shape: a template's shape is applied when the pair is encoded)."""
        plain = self.options.shape is None or self.options.shape == DEFAULT_SHAPE
        return self.options.dialect == "trl" and self.options.arguments == "string" and plain

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
