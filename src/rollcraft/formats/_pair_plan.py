"""The planned pairs of a DPO run, compact: three numbers a pair in memory, or records on disk
(:class:`rollcraft.formats._spill.FilePairs`) for a run that spilled its candidates.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, overload

from rollcraft.formats._pairing import Candidate, PlannedPair
from rollcraft.formats._spill import FilePairs

if TYPE_CHECKING:
    from rollcraft.formats.dpo import _Candidates


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


def task_keys_of(planned: Sequence[PlannedPair]) -> Sequence[str]:
    """Each planned pair's task key, in order (without making the pairs of a :class:`PairPlan`)."""
    return planned.task_keys if isinstance(planned, PairPlan) else [pair.task_key for pair in planned]
