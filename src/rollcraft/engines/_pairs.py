"""DPO pairs encoded in parallel: the pair plan cut at task boundaries into chunks, each chunk's
rows encoded by a forked worker, the rows handed back to the parent in plan order.

A shortcut for speed: the local engine uses it with ``--workers N`` when the pairs must be read
back from input lines (DPO without SFT rows to splice from); the plain path encodes them in the
parent. It buys wall time only where a CPU is free. On a 2-vCPU machine busy with other work,
300 MB of the benchmark's input, DPO only, ``--workers 2``, three runs: 4.04, 4.26 and 2.50 s
with the pool against 3.86, 4.07 and 2.42 s in the parent, and 8-10% more CPU time (``python
benchmarks/shortcuts.py --size 300MB --only pairs``). The same bytes: ``tests/perf/test_shortcuts.py``.
"""

from __future__ import annotations

import collections
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence

from rollcraft.engines._workers import _forked_pool
from rollcraft.formats import DpoReport
from rollcraft.formats.dpo import PairCollector, PlannedPair, task_keys_of

_DPO_JOB: tuple[PairCollector, Sequence[PlannedPair]] | None = None


def _parallel_pairs(
    collector: PairCollector, planned: Sequence[PlannedPair], workers: int
) -> Iterator[tuple[bytes, bytes]]:
    """The pairs' rows and ids, read back and encoded by ``workers`` processes, in plan order.

    The plan is cut at task boundaries into chunks of at most :data:`_CHUNK_PAIRS` pairs;
    forked workers inherit the plan and the line store, and return each chunk's encoded rows;
    the parent writes them in order. At most ``2 * workers`` chunks are out at once, so the
    rows waiting for the parent stay a few MB whatever the input's size (``Pool.imap`` queues
    every chunk at once and keeps the results the parent has not taken yet).
    """
    global _DPO_JOB
    _DPO_JOB = (collector, planned)
    try:
        with _forked_pool(workers, None) as pool:
            chunks = iter(_task_chunks(planned, workers))
            out = collections.deque(
                pool.apply_async(_encode_chunk, (bounds,)) for bounds in itertools.islice(chunks, 2 * workers)
            )
            while out:
                rows, ids, pairs, skipped = out.popleft().get()
                following = next(chunks, None)
                if following is not None:
                    out.append(pool.apply_async(_encode_chunk, (following,)))
                collector.report.pairs += pairs
                collector.report.skipped_pairs.update(skipped)
                yield rows, ids
    finally:
        _DPO_JOB = None


#: The most pairs a worker encodes in one chunk (trl pairs of full trajectories average 15 KB).
_CHUNK_PAIRS = 256


def _task_chunks(planned: Sequence[PlannedPair], workers: int) -> list[tuple[int, int]]:
    """``(start, end)`` slices of the plan, at least ``16 * workers`` of them (unless a slice
    would hold fewer than 8 pairs) and of at most :data:`_CHUNK_PAIRS` pairs, never splitting a
    task (a task's pairs may take a chunk past that)."""
    size = max(8, min(_CHUNK_PAIRS, len(planned) // (16 * workers)))
    keys = task_keys_of(planned)
    chunks: list[tuple[int, int]] = []
    start = 0
    while start < len(keys):
        end = min(start + size, len(keys))
        while end < len(keys) and keys[end] == keys[end - 1]:
            end += 1
        chunks.append((start, end))
        start = end
    return chunks


def _encode_chunk(bounds: tuple[int, int]) -> tuple[bytes, bytes, int, Counter[str]]:
    assert _DPO_JOB is not None
    collector, planned = _DPO_JOB
    report = DpoReport()
    rows: list[bytes] = []
    ids: list[bytes] = []
    for pair, line in collector.encode(planned[bounds[0] : bounds[1]], report):
        rows.append(line)
        ids.append(pair.encode() + b"\n")
    return b"".join(rows), b"".join(ids), report.pairs, report.skipped_pairs
