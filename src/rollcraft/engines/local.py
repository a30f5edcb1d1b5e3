"""The local engine: one streaming process, or ``workers`` processes over byte ranges of the inputs.

Plain files are split at line boundaries into shards; each worker runs the same :class:`Pass`
over its shards and writes their output to part files in the output folder, which the parent
copies into the outputs in input order, so the output bytes are the same for any number of
workers. Compressed files, stdin, and runs with ``dedupe`` (whose "first seen" spans the whole
input) stream in one process.

This module keeps :func:`execute` and its passes (the first pass for dedupe and balance, task
stats, balance's draw, the DPO pairs' writing) and :func:`split_shards`; the other roles are
modules beside it, and every name they hold that this module held imports from here too:
``_shards`` (a shard's byte range and its lines), ``_workers`` (the forked pool, one shard's
passes, the main pass over shards, :func:`merge_results`), ``_pairs`` (DPO pairs encoded by
forked workers), ``_writing`` (the sinks and the DPO scratch files). Tests set ``_MIN_SHARD``,
``_sides`` and ``_parallel_pairs`` here: the functions that use them read them from this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rollcraft._compact import CategoryLog, IdSet, LocatorSet
from rollcraft._digest import DigestWriter
from rollcraft._io import expand_inputs
from rollcraft._pipeline_config import LoadedConfig
from rollcraft._records import Quarantined, Rollout
from rollcraft.engines._base import Digests, Outcome
from rollcraft.engines._dedupe import Decider, Decisions
from rollcraft.engines._pairs import _CHUNK_PAIRS as _CHUNK_PAIRS
from rollcraft.engines._pairs import _encode_chunk as _encode_chunk
from rollcraft.engines._pairs import _parallel_pairs
from rollcraft.engines._pairs import _task_chunks as _task_chunks
from rollcraft.engines._plan import Pass, PassResult, Plan, Sinks, few_collections
from rollcraft.engines._shards import Shard, one_process_reason
from rollcraft.engines._shards import _ranges as _ranges
from rollcraft.engines._shards import _shard_raw_lines as _shard_raw_lines
from rollcraft.engines._shards import shard_lines as shard_lines
from rollcraft.engines._workers import _PART_BUFFER as _PART_BUFFER
from rollcraft.engines._workers import (
    Categories,
    ShardLog,
    _feed,
    _forked_pool,
    _log_of_shard,
    _sharded,
    shard_log,
)
from rollcraft.engines._workers import _append_parts as _append_parts
from rollcraft.engines._workers import _copy_part as _copy_part
from rollcraft.engines._workers import _init_worker as _init_worker
from rollcraft.engines._workers import _part as _part
from rollcraft.engines._workers import _renumber as _renumber
from rollcraft.engines._workers import _run_shard as _run_shard
from rollcraft.engines._workers import merge_results as merge_results
from rollcraft.engines._writing import _SIDES, LINES_SCRATCH, _remember, _same_trl, _sides, _sinks
from rollcraft.engines._writing import rewrites_for_dpo as rewrites_for_dpo
from rollcraft.filters import TaskStats, relabel, rereadable
from rollcraft.formats import DpoReport
from rollcraft.formats.dpo import PairCollector
from rollcraft.read._reader import read_rollouts
from rollcraft.review.decisions import Decision, read_decisions
from rollcraft.steps import choose

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
        judged: PassResult | None = None
        if shardable and (use > 1 or runner is not None) and (loaded.filters.dedupe or balances):
            # Dedupe's decisions and balance's categories need the whole input: one pass in shards.
            _restart(progress, _first_pass_name(loaded))
            first = _first_pass(plan, sources, use, log_runner=log_runner, progress=progress)
            plan, categories, judged = first
            passes += 1
        if balances:
            if categories is None:
                _restart(progress, "first pass (balance)")
                passes += 1
            plan, balance_info = _balanced(plan, sources, inputs, categories, judged, progress=progress)
        chosen = _chosen_only(plan, inputs)
        if not chosen:
            plan = dataclasses.replace(plan, judged=None)
        if passes > 1 + (plan.task_stats is not None):
            _restart(progress, "main pass")
        collector = _collector(loaded)
        digests: Digests = {}
        local = runner is None or not shardable or chosen  # chosen: a few hundred lines, read here
        if collector is not None and config.sft is not None and _same_trl(loaded):
            collector.read_sft_rows(folder / config.sft.file)  # both engines record SFT row offsets
        sharded = not local or (use > 1 and not chosen)
        background = (use == 1 and runner is None) or chosen
        with _sinks(loaded, folder, digests, background=background, sharded=sharded) as sinks:
            if not local:
                assert runner is not None
                result = runner(plan, sources, folder, sinks, workers, progress)
                if collector is not None:
                    _feed(collector, result)
            elif sharded:
                result = _sharded(plan, split_shards(sources, use), folder, sinks, use, progress, collector)
            else:
                only = plan.selected if plan.judged is not None else None
                items = relabel(_read(plan, sources, progress, only=only), sources, inputs)
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
    name = engine if runner is not None and shardable else "local"
    asked = workers > 1 or runner is not None
    return Outcome(result, dpo_report, use, passes, balance_info, name, digests, why_one if asked else None)


def _needs_prepass(loaded: LoadedConfig) -> bool:
    return loaded.filters.min_success_rate is not None or loaded.config.balance is not None


def _plan(loaded: LoadedConfig, sources: list[str], inputs: list[str]) -> Plan:
    options = loaded.config.read.options()
    stats = None
    if loaded.filters.min_success_rate is not None:
        stats = TaskStats.collect(read_rollouts(sources, options=options))
    return Plan(loaded, options, stats, _decisions(loaded))


def _decisions(loaded: LoadedConfig) -> dict[str, Decision] | None:
    section = loaded.config.review
    if section is None:
        return None
    return read_decisions(loaded.resolve(section.decisions))  # the one reader (a skip is no decision)


def _balanced(
    plan: Plan,
    sources: list[str],
    inputs: list[str],
    categories: Categories | None,
    judged: PassResult | None = None,
    *,
    progress: Any = None,
) -> tuple[Plan, dict[str, Any]]:
    """``plan`` with balance's choice; ``categories``: found by a first pass over shards, with
    what it counted in ``judged`` where that is known (else a pass here, in this process)."""
    section = plan.loaded.config.balance
    assert section is not None
    clean: IdSet | None = None
    if categories is None:
        items = relabel(_read(plan, sources, progress), sources, inputs)
        first = Pass(plan, Sinks(), collect_categories=True)
        judged = first.run(items)
        categories, clean = judged.categories, first.clean_lines
    choice = choose(categories, section.max_per_category, section.seed)
    info = {
        "by": section.by,
        "max_per_category": section.max_per_category,
        "before": choice.before,
        "after": choice.after,
    }
    if judged is not None:  # what the main pass counts when given only the chosen rollouts
        judged.categories = CategoryLog()
        judged.balance_dropped = sum(choice.before.values()) - sum(choice.after.values())
    if clean is not None and plan.clean_lines is not None:
        clean = clean | plan.clean_lines  # the lines this pass skipped, found clean by an earlier one
    found = clean.settled() if clean is not None else plan.clean_lines
    return dataclasses.replace(plan, selected=choice.selected, clean_lines=found, judged=judged), info


def _chosen_only(plan: Plan, inputs: list[str]) -> bool:
    """Whether the main pass (one process) can read only the lines balance chose: a first pass
    judged every line (:attr:`Plan.judged`: here, or over shards where its counts are known),
    and nothing dropped is written (no rejects).

    What it buys: with balance keeping 15 of each task type, the main pass at 1 GB reads and
    normalizes about 600 of 38,000 rollouts instead of all of them: redaction, balance, SFT and
    DPO take 3.3 s against 5.9 s reading every line again (``python benchmarks/shortcuts.py
    --only chosen``). The same bytes and counts either way (``tests/perf/test_shortcuts.py``).
    """
    judged = plan.judged is not None and plan.selected is not None
    return judged and not plan.loaded.config.write_rejects and "-" not in inputs


def _first_pass_name(loaded: LoadedConfig) -> str:
    names = [n for n, on in (("dedupe", loaded.filters.dedupe), ("balance", loaded.config.balance)) if on]
    return f"first pass ({', '.join(names)})"


def _first_pass(
    plan: Plan, sources: list[str], workers: int, *, log_runner: LogRunner | None = None, progress: Any = None
) -> tuple[Plan, Categories | None, PassResult | None]:
    """The first pass over shards, for ``filters.dedupe`` and balance: ``plan`` with dedupe
    decided ahead (the shards' logs fed to a :class:`Decider` in input order) and the ids of
    the lines redaction found clean; balance's categories (None without balance); and what a
    first pass in one process would have counted (:func:`_counted`).

    The categories are those of the rollouts every step but dedupe keeps, less the ones dedupe
    drops (known once their shard's log is fed: a rollout's decision depends only on the
    rollouts before it)."""
    categories = plan.loaded.config.balance is not None
    decider = Decider()
    clean: IdSet | None = None
    found = CategoryLog()
    shards: list[Shard] = []
    results: dict[int, PassResult] = {}
    with contextlib.ExitStack() as stack:
        if log_runner is not None:
            logs: Iterator[ShardLog] = log_runner(plan, sources, workers, categories)
        elif workers > 1:
            pool = stack.enter_context(_forked_pool(workers, plan))
            jobs = [(shard, categories) for shard in split_shards(sources, workers)]
            logs = pool.imap(_log_of_shard, jobs)
        else:
            logs = (shard_log(plan, shard, categories) for shard in split_shards(sources, workers))
        for entries, shard_clean, result, shard in logs:
            decider.feed(entries)
            clean = _union(clean, shard_clean)
            found.extend(result.categories, keep=_undropped(decider.decisions))
            result.categories = CategoryLog()
            shards.append(shard)
            results[shard.index] = result
            if progress is not None:
                progress(shard.end - shard.start)
    dedupe = decider.decisions if plan.loaded.filters.dedupe else None
    clean_lines = clean.settled() if clean is not None else None
    plan = dataclasses.replace(plan, dedupe=dedupe, clean_lines=clean_lines)
    return plan, found if categories else None, _counted(plan, merge_results(shards, results), decider)


def _counted(plan: Plan, merged: PassResult, decider: Decider) -> PassResult | None:
    """What a first pass in one process would have counted, from the shards' counts (which take
    dedupe as dropping nothing) and dedupe's decisions; None with a review step, which counted
    the rollouts dedupe drops as it saw them."""
    if not plan.loaded.filters.dedupe:
        return merged
    if plan.decisions is not None:
        return None
    report = merged.filter
    taken_back = decider.taken_back  # dropped first by a later filter in the shards' counts
    report.kept -= decider.dropped - sum(taken_back.values())
    for name, count in taken_back.items():
        report.dropped[name] -= count
        if report.dropped[name] <= 0:
            del report.dropped[name]
            report.examples.pop(name, None)
        else:
            report.examples[name] = decider.later_examples[name]
    if decider.dropped:
        report.dropped["dedupe"] += decider.dropped
        report.examples.setdefault("dedupe", decider.example or "")
    if decider.twins:
        report.alone["dedupe"] += decider.twins
    return merged


_KEPT: tuple[str | None, bool] = (None, False)


def _undropped(decisions: Decisions) -> Callable[[tuple[str, int]], bool]:
    """Whether dedupe's decisions keep the rollout at a locator."""
    return lambda locator: decisions.get(locator, _KEPT)[0] is None


def _union(a: IdSet | None, b: IdSet | None) -> IdSet | None:
    return b if a is None else a if b is None else a | b


def _restart(progress: Any, description: str) -> None:
    """Start ``progress`` (a progress bar, when it can) again from zero for another pass."""
    restart = getattr(progress, "restart", None)
    if restart is not None:
        restart(description)


def _read(
    plan: Plan, sources: list[str], progress: Any, *, only: LocatorSet | None = None
) -> Iterator[Rollout | Quarantined]:
    """The items of ``sources``, telling ``progress`` the bytes read every 4 MiB or so (a progress
    bar's update costs more than a short line's reading); ``only``: the items of the lines at
    these locators (read by offset: usually a few hundred), the bar filled at the end."""
    if only is not None:
        yield from read_rollouts(sources, options=plan.read_options, only=only)
        if progress is not None:
            progress(sum(os.path.getsize(s) for s in expand_inputs(sources)))
        return
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
    return PairCollector(dpo.options(loaded.shape), read_options=loaded.config.read.options())


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


def split_shards(sources: list[str], workers: int, *, max_size: int = _MAX_SHARD) -> list[Shard]:
    """Cut files at line boundaries into about ``4 * workers`` shards of 8 MiB to ``max_size``."""
    total = sum(os.path.getsize(s) for s in sources)
    size = min(max_size, max(_MIN_SHARD, total // max(1, 4 * workers)))
    shards: list[Shard] = []
    for source in sources:
        for start, end in _ranges(source, size):
            shards.append(Shard(len(shards), source, start, end))
    return shards
