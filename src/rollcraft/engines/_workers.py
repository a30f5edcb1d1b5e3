"""The local engine's forked workers: the pool, one shard's first pass (:func:`shard_log`) and
main pass (its output in part files), the main pass over shards with the parts copied into the
outputs in input order, and the shards' results merged (:func:`merge_results`).

A worker gets the run's :class:`Plan` through fork (``_WORKER_PLAN``, set by the pool's
initializer), so the functions that read it live here with it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import shutil
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rollcraft._compact import CategoryLog, IdSet
from rollcraft._io import NO_ROOM, write_failed
from rollcraft._records import Quarantined
from rollcraft.engines._dedupe import DedupeLog, Entry
from rollcraft.engines._plan import Pass, PassResult, Plan, Sinks, moved_to
from rollcraft.engines._shards import Shard, shard_lines
from rollcraft.engines._writing import (
    LINES_SCRATCH,
    _same_trl,
    output_parts,
    parts_of,
    rewrites_for_dpo,
    sinks_of,
)
from rollcraft.formats.dpo import PairCollector, shift_sft_locator
from rollcraft.steps import Writer

#: Each kept rollout's balance category and locator, in input order.
Categories = CategoryLog
#: One shard's part of the first pass: its dedupe log, the ids of the lines found clean, what it
#: counted (with balance's categories in ``categories``), and the shard.
ShardLog = tuple[list[Entry], IdSet | None, PassResult, Shard]


@contextlib.contextmanager
def _forked_pool(workers: int, plan: Plan | None) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``workers`` forked processes (each with ``plan``): closed once the block is done
    (the workers take their end-of-work sentinel and exit on their own), terminated at once
    when it fails or is interrupted; joined either way."""
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(plan,))
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _log_of_shard(job: tuple[Shard, bool]) -> ShardLog:
    plan = _WORKER_PLAN
    assert plan is not None
    return shard_log(plan, *job)


def shard_log(plan: Plan, shard: Shard, categories: bool) -> ShardLog:
    """The first pass over one shard (with balance's categories when ``categories``); without
    ``filters.dedupe`` its log stays empty. Its counts take dedupe as dropping nothing (the
    parent decides dedupe, :class:`~rollcraft.engines._dedupe.Decider`)."""
    first = Pass(plan, Sinks(), dedupe_log=DedupeLog(), collect_categories=categories)
    result = first.run(shard_lines(shard, plan.read_options))
    assert first.dedupe_log is not None
    return first.dedupe_log.entries, first.clean_lines, result, shard


def _feed(collector: PairCollector, result: PassResult) -> None:
    collector.report.rollouts += result.dpo_rollouts
    collector.report.excluded.update(result.dpo_excluded)
    for task_key, candidate in result.candidates:
        collector.add_candidate(task_key, candidate)
    result.candidates.clear()


_WORKER_PLAN: Plan | None = None


def _init_worker(plan: Plan | None) -> None:
    global _WORKER_PLAN
    _WORKER_PLAN = plan
    # The parent's cleanup handlers (rollcraft._signals) are inherited through fork: a worker
    # must not delete the parent's temporaries, and Pool.terminate's SIGTERM must end it at once
    # (a Python-level handler could leave it waiting on the task queue's lock). The parent
    # handles Ctrl-C and terminates the pool.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_PART_BUFFER = 1 << 20


def _run_shard(job: tuple[Shard, str]) -> tuple[int, PassResult]:
    """One shard's pass, its output written to part files ``<parts>/<index>.<kind>``.

    Part files cost less than the pool's pipe: the pipe moved the output in 64 KiB steps,
    pickled and copied three times on the way, where a part file is written once (in 1 MiB
    pieces) and copied into the output by the parent.
    """
    shard, parts = job
    plan = _WORKER_PLAN
    assert plan is not None
    try:
        with contextlib.ExitStack() as stack:

            def part(kind: str) -> BinaryIO:
                path = _part(parts, shard.index, kind)
                return stack.enter_context(open(path, "wb", buffering=_PART_BUFFER))

            files: dict[str, Writer] = {kind: part(kind) for kind in output_parts(plan.loaded)}
            lines = part("lines") if rewrites_for_dpo(plan.loaded) else None
            result = Pass(plan, sinks_of(files, lines), sft_locators=_same_trl(plan.loaded)).run(
                shard_lines(shard, plan.read_options)
            )
    except OSError as exc:
        if exc.errno in NO_ROOM:  # the output folder's disk is full, or read-only
            raise write_failed(os.path.dirname(parts), exc) from None
        raise
    return shard.index, result


def _part(parts: str, index: int, kind: str) -> str:
    return os.path.join(parts, f"{index:06d}.{kind}")


def _sharded(
    plan: Plan,
    shards: list[Shard],
    folder: Path,
    sinks: Sinks,
    workers: int,
    progress: Any,
    collector: PairCollector | None = None,
) -> PassResult:
    """The main pass over ``shards`` (:func:`rollcraft.engines.local.split_shards`) in a pool of
    ``workers`` processes.

    Each shard's result goes to ``collector`` as it arrives (in input order), not after the
    last: a candidate's task key and pair would otherwise be held once per rollout until the
    end (33 MB more at 5 GB of input).
    """
    parts = folder / ".parts"
    parts.mkdir()
    results: dict[int, PassResult] = {}
    try:
        with _forked_pool(workers, plan) as pool:
            for index, result in pool.imap(_run_shard, [(shard, str(parts)) for shard in shards]):
                results[index] = result
                shift_to_sft_file(result, sinks)
                if sinks.lines is not None:
                    base = sinks.lines.tell()
                    _copy_part(_part(str(parts), index, "lines"), sinks.lines)
                    result.candidates = moved_to(result.candidates, str(folder / LINES_SCRATCH), base)
                if collector is not None:
                    _feed(collector, result)
                _append_parts(str(parts), index, sinks)
                if progress is not None:
                    progress(shards[index].end - shards[index].start)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return merge_results(shards, results)


def shift_to_sft_file(result: PassResult, sinks: Sinks) -> None:
    """Point a shard's DPO candidates that got an SFT row at that row in the joined SFT file,
    before the shard's rows are appended to it (the shard's rows start where the file ends)."""
    tell = getattr(sinks.rows.get("sft"), "tell", None)
    if tell is not None and result.candidates:
        base = tell()
        result.candidates = [(key, shift_sft_locator(c, base)) for key, c in result.candidates]


def _append_parts(parts: str, index: int, sinks: Sinks) -> None:
    """Copy one shard's part files into the sinks (in input order), and remove them."""
    for kind, sink in parts_of(sinks).items():
        path = _part(parts, index, kind)
        if sink is not None and os.path.exists(path):
            _copy_part(path, sink)


def _copy_part(path: str, sink: Writer) -> None:
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(_PART_BUFFER):
            sink.write(chunk)
    os.unlink(path)


def merge_results(shards: list[Shard], results: dict[int, PassResult]) -> PassResult:
    """The shards' results (by shard index) added up in shard order, quarantined line numbers
    counted from the start of each file."""
    total = PassResult()
    lines_before: dict[str, int] = defaultdict(int)
    for shard in shards:
        result = results[shard.index]
        base = lines_before[shard.source]
        examples = result.filter.read.quarantine_examples
        result.filter.read.quarantine_examples = [_renumber(q, base) for q in examples]
        lines_before[shard.source] += result.filter.read.lines
        total = total + result
    return total


def _renumber(item: Quarantined, base: int) -> Quarantined:
    import dataclasses

    return dataclasses.replace(item, line=item.line + base)
