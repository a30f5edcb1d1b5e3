"""The local engine: one streaming process, or ``workers`` processes over byte ranges of the inputs.

Plain files are split at line boundaries into shards; each worker runs the same :class:`Pass`
over its shards and writes their output to part files in the output folder, which the parent
copies into the outputs in input order, so the output bytes are the same for any number of
workers. Compressed files, stdin, and runs with ``dedupe`` (whose "first seen" spans the whole
input) stream in one process.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import multiprocessing
import multiprocessing.pool
import os
import random
import shutil
import signal
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollcraft._compact import CategoryLog, IdSet, LocatorSet
from rollcraft._digest import DigestWriter
from rollcraft._io import NO_ROOM, RawLine, is_plain_file, skip_bom, write_failed
from rollcraft._pipeline_config import LoadedConfig
from rollcraft._read import ReadOptions, parse_lines, read_rollouts
from rollcraft._records import Quarantined, Rollout
from rollcraft.engines._base import Digests, Outcome
from rollcraft.engines._dedupe import Decider, Decisions, DedupeLog, Entry
from rollcraft.engines._plan import Pass, PassResult, Plan, Sinks, Writer, few_collections, moved_to
from rollcraft.filters import TaskStats, relabel, rereadable
from rollcraft.formats import DpoReport
from rollcraft.formats.dpo import PairCollector, PlannedPair, shift_sft_locator, task_keys_of

#: The Ray engine (:mod:`rollcraft.engines.ray`) runs these passes too: it uses the public names.
__all__ = [
    "LINES_SCRATCH",
    "Outcome",
    "Shard",
    "ShardLog",
    "execute",
    "merge_results",
    "shard_lines",
    "shard_log",
    "split_shards",
]


_MIN_SHARD = 8 << 20
_MAX_SHARD = 16 << 20


#: Runs the main pass over shards: (plan, sources, folder, sinks, workers, progress) -> result.
ShardRunner = Callable[[Plan, list[str], Path, Sinks, int, Any], PassResult]
#: Runs the first pass over shards: (plan, sources, workers, categories) -> the shards' logs in
#: input order (see :func:`shard_log`).
LogRunner = Callable[[Plan, list[str], int, bool], Iterator["ShardLog"]]


def execute(
    loaded: LoadedConfig,
    inputs: list[str],
    folder: Path,
    *,
    workers: int = 1,
    progress: Any = None,
    runner: ShardRunner | None = None,
    log_runner: LogRunner | None = None,
    engine: str = "local",
) -> Outcome:
    """Run the pipeline's passes over ``inputs``, writing the data files into ``folder``.

    ``runner`` runs the main pass over shards when the inputs can be sharded (default: this
    engine's process pool, used when ``workers > 1``); the Ray engine passes its own, and a
    ``log_runner`` for dedupe's first pass.
    """
    config = loaded.config
    with few_collections(), rereadable(inputs, needed=_needs_prepass(loaded)) as sources:
        plan = _plan(loaded, sources, inputs)
        why_one = one_process_reason(loaded, sources)
        shardable = why_one is None
        use = workers if shardable else 1
        balance_info: dict[str, Any] = {}
        passes = 1 + (plan.task_stats is not None)
        categories = None
        balances = config.balance is not None
        if shardable and (use > 1 or runner is not None) and (loaded.filters.dedupe or balances):
            # Dedupe's decisions and balance's categories need the whole input: one pass in shards.
            _restart(progress, _first_pass_name(loaded))
            plan, categories = _first_pass(plan, sources, use, log_runner=log_runner, progress=progress)
            passes += 1
        if balances:
            if categories is None:
                _restart(progress, "first pass (balance)")
                passes += 1
            plan, balance_info = _balanced(plan, sources, inputs, categories, progress=progress)
        if passes > 1 + (plan.task_stats is not None):
            _restart(progress, "main pass")
        collector = _collector(loaded)
        digests: Digests = {}
        local = runner is None or not shardable
        if local and collector is not None and config.sft is not None and _same_trl(loaded):
            collector.read_sft_rows(folder / config.sft.file)  # this engine records SFT row offsets
        sharded = not local or use > 1
        with _sinks(
            loaded, folder, digests, background=use == 1 and runner is None, sharded=sharded
        ) as sinks:
            if not local:
                assert runner is not None
                result = runner(plan, sources, folder, sinks, workers, progress)
                if collector is not None:
                    _feed(collector, result)
            elif use > 1:
                result = _sharded(plan, sources, folder, sinks, use, progress, collector)
            else:
                items = relabel(_read(plan, sources, progress), sources, inputs)
                with _sides(loaded, folder, collector) as sides:
                    result = Pass(plan, dataclasses.replace(sinks, sides=sides), collector=collector).run(
                        items
                    )
        try:
            dpo_report = _write_dpo(loaded, folder, collector, digests, use)
        finally:
            for scratch in (_SIDES, LINES_SCRATCH):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / scratch)
    name = "local" if local else engine
    asked = workers > 1 or runner is not None
    return Outcome(result, dpo_report, use, passes, balance_info, name, digests, why_one if asked else None)


#: Scratch file in the output folder: the trl rows of the DPO candidates that get no SFT row.
_SIDES = ".dpo-sides.jsonl"
#: Scratch file in the output folder: the shards' redacted lines of the DPO candidates that get
#: no SFT row (``Sinks.lines``), where the pairs are read back from.
LINES_SCRATCH = ".dpo-lines.jsonl"


@contextlib.contextmanager
def _sides(
    loaded: LoadedConfig, folder: Path, collector: PairCollector | None
) -> Iterator[DigestWriter | None]:
    """Where a single-process run writing trl pairs (string arguments) keeps the trl rows of the
    candidates that get no SFT row (all of them when it writes no SFT rows): the pairs are then
    spliced from rows instead of re-reading and re-normalizing input lines
    (:meth:`PairCollector.keep_sides`). On disk in the output folder until the pairs are
    written: at most about a third of the input's size. None for other runs."""
    if collector is None or not collector.reads_rows:
        yield None
        return
    with DigestWriter(folder / _SIDES, background=True, digest=False) as writer:
        collector.keep_sides(writer.path)
        yield writer


def _same_trl(loaded: LoadedConfig) -> bool:
    """Whether SFT rows and DPO pairs are both trl with string arguments (pairs may reuse rows)."""
    sft, dpo = loaded.config.sft, loaded.config.dpo
    if sft is None or dpo is None:
        return False
    trl = sft.format == dpo.format == "trl"
    return trl and sft.arguments == "string" and dpo.options().arguments == "string"


def _needs_prepass(loaded: LoadedConfig) -> bool:
    return loaded.filters.min_success_rate is not None or loaded.config.balance is not None


def _plan(loaded: LoadedConfig, sources: list[str], inputs: list[str]) -> Plan:
    options = loaded.config.read.options()
    stats = None
    if loaded.filters.min_success_rate is not None:
        stats = TaskStats.collect(read_rollouts(sources, options=options))
    rejected, reviewed = _review(loaded)
    return Plan(loaded, options, stats, rejected, reviewed)


def _review(loaded: LoadedConfig) -> tuple[frozenset[str], frozenset[str]]:
    section = loaded.config.review
    if section is None:
        return frozenset(), frozenset()
    from rollcraft.review.decisions import read_decisions  # the one reader (a skip is no decision)

    decisions = read_decisions(loaded.resolve(section.decisions))
    rejected = frozenset(i for i, d in decisions.items() if d.decision == "reject")
    return rejected, frozenset(i for i, d in decisions.items() if d.decided)


def _balanced(
    plan: Plan, sources: list[str], inputs: list[str], categories: Categories | None, *, progress: Any = None
) -> tuple[Plan, dict[str, Any]]:
    """``plan`` with balance's choice; ``categories``: found by a first pass over shards (else a
    pass here, in this process)."""
    section = plan.loaded.config.balance
    assert section is not None
    clean: IdSet | None = None
    if categories is None:
        items = relabel(_read(plan, sources, progress), sources, inputs)
        first = Pass(plan, Sinks(), collect_categories=True)
        categories, clean = first.run(items).categories, first.clean_lines
    groups = categories.groups()
    selected = array("I")  # the chosen entries' numbers
    before, after = {}, {}
    for category in sorted(groups):
        members = groups[category]
        chosen = _draw(members, section.max_per_category, f"{section.seed}/{category}")
        selected.extend(chosen)
        before[category], after[category] = len(members), len(chosen)
    del groups
    info = {"by": section.by, "max_per_category": section.max_per_category, "before": before, "after": after}
    if clean is not None and plan.clean_lines is not None:
        clean = clean | plan.clean_lines  # the lines this pass skipped, found clean by an earlier one
    found = clean.settled() if clean is not None else plan.clean_lines
    chosen_locators = LocatorSet(categories.locator(index) for index in selected)
    return dataclasses.replace(plan, selected=chosen_locators, clean_lines=found), info


#: Each kept rollout's balance category and locator, in input order.
Categories = CategoryLog
#: One shard's part of the first pass: its dedupe log, clean line ids, categories and size.
ShardLog = tuple[list[Entry], IdSet | None, Categories, int]


def _first_pass_name(loaded: LoadedConfig) -> str:
    names = [n for n, on in (("dedupe", loaded.filters.dedupe), ("balance", loaded.config.balance)) if on]
    return f"first pass ({', '.join(names)})"


def _first_pass(
    plan: Plan, sources: list[str], workers: int, *, log_runner: LogRunner | None = None, progress: Any = None
) -> tuple[Plan, Categories | None]:
    """The first pass over shards, for ``filters.dedupe`` and balance: ``plan`` with dedupe
    decided ahead (the shards' logs fed to a :class:`Decider` in input order) and the ids of
    the lines redaction found clean; and balance's categories (None without balance).

    The categories are those of the rollouts every step but dedupe keeps, less the ones dedupe
    drops (known once their shard's log is fed: a rollout's decision depends only on the
    rollouts before it)."""
    categories = plan.loaded.config.balance is not None
    decider = Decider()
    clean: IdSet | None = None
    found = CategoryLog()
    shards = split_shards(sources, workers)
    with contextlib.ExitStack() as stack:
        if log_runner is not None:
            logs: Iterator[ShardLog] = log_runner(plan, sources, workers, categories)
        elif workers > 1:
            pool = stack.enter_context(_forked_pool(workers, plan))
            logs = pool.imap(_log_of_shard, [(shard, categories) for shard in shards])
        else:
            logs = (shard_log(plan, shard, categories) for shard in shards)
        for entries, shard_clean, shard_categories, size in logs:
            decider.feed(entries)
            clean = _union(clean, shard_clean)
            found.extend(shard_categories, keep=_undropped(decider.decisions))
            if progress is not None:
                progress(size)
    dedupe = decider.decisions if plan.loaded.filters.dedupe else None
    clean_lines = clean.settled() if clean is not None else None
    return dataclasses.replace(plan, dedupe=dedupe, clean_lines=clean_lines), found if categories else None


_KEPT: tuple[str | None, bool] = (None, False)


def _undropped(decisions: Decisions) -> Callable[[tuple[str, int]], bool]:
    """Whether dedupe's decisions keep the rollout at a locator."""
    return lambda locator: decisions.get(locator, _KEPT)[0] is None


def _log_of_shard(job: tuple[Shard, bool]) -> ShardLog:
    plan = _WORKER_PLAN
    assert plan is not None
    return shard_log(plan, *job)


def shard_log(plan: Plan, shard: Shard, categories: bool) -> ShardLog:
    """The first pass over one shard (with balance's categories when ``categories``); without
    ``filters.dedupe`` its log stays empty."""
    first = Pass(plan, Sinks(), dedupe_log=DedupeLog(), collect_categories=categories)
    result = first.run(shard_lines(shard, plan.read_options))
    assert first.dedupe_log is not None
    return first.dedupe_log.entries, first.clean_lines, result.categories, shard.end - shard.start


def _union(a: IdSet | None, b: IdSet | None) -> IdSet | None:
    return b if a is None else a if b is None else a | b


def _restart(progress: Any, description: str) -> None:
    """Start ``progress`` (a progress bar, when it can) again from zero for another pass."""
    restart = getattr(progress, "restart", None)
    if restart is not None:
        restart(description)


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


def _draw(members: Sequence[int], k: int, seed: str) -> Sequence[int]:
    """``k`` of ``members`` (all when there are no more), a seeded choice, in their order."""
    if len(members) <= k:
        return members
    return [members[i] for i in sorted(random.Random(seed).sample(range(len(members)), k))]


def _read(plan: Plan, sources: list[str], progress: Any) -> Iterator[Rollout | Quarantined]:
    """The items of ``sources``, telling ``progress`` the bytes read every 4 MiB or so (a progress
    bar's update costs more than a short line's reading)."""
    pending = 0
    for item in read_rollouts(sources, options=plan.read_options):
        if progress is not None:
            pending += len(item.raw) + 1
            if pending >= _PROGRESS_STEP:
                progress(pending)
                pending = 0
        yield item
    if pending:
        progress(pending)


_PROGRESS_STEP = 4 << 20


def _collector(loaded: LoadedConfig) -> PairCollector | None:
    dpo = loaded.config.dpo
    if dpo is None:
        return None
    return PairCollector(dpo.options(), read_options=loaded.config.read.options())


def _feed(collector: PairCollector, result: PassResult) -> None:
    collector.report.rollouts += result.dpo_rollouts
    collector.report.excluded.update(result.dpo_excluded)
    for task_key, candidate in result.candidates:
        collector.add_candidate(task_key, candidate)
    result.candidates.clear()


def _remember(digests: Digests, name: str, writer: DigestWriter) -> None:
    digests[name] = (writer.size, writer.sha256)


def _write_dpo(
    loaded: LoadedConfig, folder: Path, collector: PairCollector | None, digests: Digests, workers: int = 1
) -> DpoReport | None:
    dpo = loaded.config.dpo
    if dpo is None or collector is None:
        return None
    planned = collector.plan()
    # A pool pays off when pairs are decoded and normalized again; splicing rows is cheaper than
    # forking (0.46-0.58 s in the parent against 0.69-0.73 s with 2 workers at 1 GB).
    parallel = workers > 1 and not collector.store.spooled and not collector.splices_most(planned)
    try:
        with (
            DigestWriter(folder / dpo.file, background=not parallel) as rows,
            DigestWriter(folder / "dpo_ids.txt", background=not parallel) as ids,
        ):
            if parallel:
                for chunk_rows, chunk_ids in _parallel_pairs(collector, planned, workers):
                    rows.write(chunk_rows)
                    ids.write(chunk_ids)
            else:
                for pair, line in collector.encode(planned, collector.report):
                    rows.write(line)
                    ids.write(pair.encode() + b"\n")
    finally:
        collector.store.close()
    _remember(digests, dpo.file, rows)
    _remember(digests, "dpo_ids.txt", ids)
    return collector.report


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


@contextlib.contextmanager
def _sinks(
    loaded: LoadedConfig, folder: Path, digests: Digests, *, background: bool, sharded: bool
) -> Iterator[Sinks]:
    config = loaded.config
    with contextlib.ExitStack() as stack:

        def sink(name: str | None) -> DigestWriter | None:
            if not name:
                return None
            writer = DigestWriter(folder / name, background=background)
            stack.callback(_remember, digests, name, writer)  # runs after the writer is closed
            return stack.enter_context(writer)

        lines = None
        if sharded and rewrites_for_dpo(loaded):
            lines = stack.enter_context(
                DigestWriter(folder / LINES_SCRATCH, background=background, digest=False)
            )
        yield Sinks(
            sft=sink(config.sft.file if config.sft else None),
            sft_ids=sink("sft_ids.txt" if config.sft else None),
            kept=sink("filtered.jsonl" if config.write_filtered else None),
            rejects=sink("rejects.jsonl" if config.write_rejects else None),
            lines=lines,
        )


def rewrites_for_dpo(loaded: LoadedConfig) -> bool:
    """Whether redaction rewrites lines that DPO pairs must hold (replace mode with DPO)."""
    config = loaded.config
    return config.dpo is not None and config.redact is not None and config.redact.on_secret == "replace"


# ------------------------------------------------------------------------------------------------
# Sharding


def one_process_reason(loaded: LoadedConfig, sources: list[str]) -> str | None:
    """Why the main pass must stream in one process, or None when it may run over shards.

    Not for compressed files or stdin (no byte ranges). (``dedupe``, whose "first seen" spans
    the whole input, is decided by a first pass then: see :func:`_first_pass`.)
    """
    if not all(is_plain_file(s) for s in sources):
        return "compressed input or stdin cannot be cut into byte ranges"
    return None


@dataclass(frozen=True, slots=True)
class Shard:
    """A byte range of one file, starting and ending at line boundaries."""

    index: int
    source: str
    start: int
    end: int


def split_shards(sources: list[str], workers: int, *, max_size: int = _MAX_SHARD) -> list[Shard]:
    """Cut files at line boundaries into about ``4 * workers`` shards of 8 MiB to ``max_size``."""
    total = sum(os.path.getsize(s) for s in sources)
    size = min(max_size, max(_MIN_SHARD, total // max(1, 4 * workers)))
    shards: list[Shard] = []
    for source in sources:
        for start, end in _ranges(source, size):
            shards.append(Shard(len(shards), source, start, end))
    return shards


def _ranges(source: str, size: int) -> list[tuple[int, int]]:
    length = os.path.getsize(source)
    cuts = [0]
    with open(source, "rb") as handle:
        while cuts[-1] + size < length:
            handle.seek(cuts[-1] + size)
            handle.readline()
            position = handle.tell()
            if position >= length:
                break
            cuts.append(position)
    cuts.append(length)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a] or [(0, 0)]


def shard_lines(shard: Shard, options: ReadOptions) -> Iterator[Rollout | Quarantined]:
    """The rollouts and quarantined lines of one shard, read as :func:`rollcraft.read_rollouts` reads."""
    return parse_lines(_shard_raw_lines(shard), options)


def _shard_raw_lines(shard: Shard) -> Iterator[RawLine]:
    with open(shard.source, "rb", buffering=1 << 20) as handle:
        handle.seek(shard.start)
        position, number = shard.start or skip_bom(handle, shard.source), 0
        while position < shard.end:
            line = handle.readline()
            if not line:
                break
            number += 1
            yield RawLine(shard.source, number, position, line.rstrip(b"\r\n"))
            position += len(line)


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


#: The part files of one shard's output, per sink (their suffixes, in the order of :class:`Sinks`).
_PARTS = ("sft", "ids", "kept", "rejects", "lines")
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
    config = plan.loaded.config
    wanted = (
        config.sft is not None,
        config.sft is not None,
        config.write_filtered,
        config.write_rejects,
        rewrites_for_dpo(plan.loaded),
    )
    try:
        with contextlib.ExitStack() as stack:
            sft, ids, kept, rejects, lines = (
                stack.enter_context(open(_part(parts, shard.index, kind), "wb", buffering=_PART_BUFFER))
                if want
                else None
                for kind, want in zip(_PARTS, wanted, strict=True)
            )
            sinks = Sinks(sft, ids, kept, rejects, lines=lines)
            result = Pass(plan, sinks, sft_locators=_same_trl(plan.loaded)).run(
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
    sources: list[str],
    folder: Path,
    sinks: Sinks,
    workers: int,
    progress: Any,
    collector: PairCollector | None = None,
) -> PassResult:
    """The main pass over shards of ``sources`` in a pool of ``workers`` processes.

    Each shard's result goes to ``collector`` as it arrives (in input order), not after the
    last: a candidate's task key and pair would otherwise be held once per rollout until the
    end (33 MB more at 5 GB of input).
    """
    shards = split_shards(sources, workers)
    parts = folder / ".parts"
    parts.mkdir()
    results: dict[int, PassResult] = {}
    try:
        with _forked_pool(workers, plan) as pool:
            for index, result in pool.imap(_run_shard, [(shard, str(parts)) for shard in shards]):
                results[index] = result
                tell = getattr(sinks.sft, "tell", None)
                if tell is not None and result.candidates:
                    base = tell()  # this shard's SFT rows start here in the joined file
                    result.candidates = [(key, shift_sft_locator(c, base)) for key, c in result.candidates]
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


def _append_parts(parts: str, index: int, sinks: Sinks) -> None:
    """Copy one shard's part files into the sinks (in input order), and remove them."""
    for kind, sink in zip(_PARTS, (sinks.sft, sinks.sft_ids, sinks.kept, sinks.rejects), strict=False):
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
