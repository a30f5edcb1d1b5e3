"""The Ray engine: the local engine's passes, with the main pass over shards on a Ray Data cluster.

The inputs are cut exactly as the local engine cuts them (:func:`rollcraft.engines.local.split_shards`),
one Ray Data row per shard. Each Ray worker runs the same :class:`~rollcraft.engines._plan.Pass`
over its byte range and returns the shard's output bytes and counts; the driver appends them in
shard order, so the files are byte-identical to the local engine's. DPO pairs are made on the
driver (candidates carry the file and offset of their line; only pair lines are read back).

Workers read the input files by path: on a multi-node cluster the inputs must sit at the same
path on every node (a shared file system). ``ray`` is imported lazily; without it a
:class:`~rollcraft.DependencyError` names ``rollcraft[ray]``.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rollcraft._errors import DependencyError
from rollcraft._pipeline_config import LoadedConfig
from rollcraft.engines._base import Outcome
from rollcraft.engines._plan import Pass, PassResult, Plan, Sinks, few_collections, moved_to
from rollcraft.engines._workers import shift_to_sft_file
from rollcraft.engines._writing import _same_trl, output_parts, parts_of, sinks_of
from rollcraft.engines.local import (
    LINES_SCRATCH,
    Shard,
    ShardLog,
    execute,
    merge_results,
    shard_lines,
    shard_log,
    split_shards,
)

__all__ = ["MAX_SHARD", "connect", "execute_ray"]

#: The largest shard a Ray worker is given (its outputs are held in memory until returned).
MAX_SHARD = 256 << 20


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise DependencyError("engine: ray needs Ray Data: pip install 'rollcraft[ray]'") from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at ``address``; else a running local head (``auto``); else start one here."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **options)
        return ray
    try:
        ray.init(address="auto", **options)
    except ConnectionError:
        ray.init(include_dashboard=False, **options)
    return ray


def execute_ray(
    loaded: LoadedConfig, inputs: list[str], folder: Path, *, workers: int = 1, progress: Any = None
) -> Outcome:
    """Run the pipeline with its main pass on Ray (inputs that cannot be sharded stream locally)."""
    ray = connect(loaded.config.ray_address)

    def shards(sources: list[str], wanted: int) -> list[Shard]:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        total = sum(os.path.getsize(s) for s in sources)
        return split_shards(sources, max(wanted, cpus, -(-total // (4 * MAX_SHARD))), max_size=MAX_SHARD)

    def runner(plan: Plan, sources: list[str], out: Path, sinks: Sinks, wanted: int, prog: Any) -> PassResult:
        return _run_on_ray(plan, shards(sources, wanted), sinks, prog, str(out / LINES_SCRATCH))

    def log_runner(plan: Plan, sources: list[str], wanted: int, categories: bool) -> Iterator[ShardLog]:
        return _logs_on_ray(plan, shards(sources, wanted), categories)

    return execute(
        loaded,
        inputs,
        folder,
        workers=workers,
        progress=progress,
        engine="ray",
        runner=runner,
        log_runner=log_runner,
    )


def _logs_on_ray(plan: Plan, shards: list[Shard], categories: bool) -> Iterator[ShardLog]:
    """The first pass (dedupe, balance) on the cluster: each shard's log, in shard order."""
    rows = [{"shard": pickle.dumps(shard)} for shard in shards]
    dataset = _ordered(rows).map(_LogTask(plan, categories))
    for row in dataset.iter_rows():
        log: ShardLog = pickle.loads(row["log"])
        yield log


def _ordered(rows: list[dict[str, Any]]) -> Any:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    return ray.data.from_items(rows, override_num_blocks=len(rows))


class _LogTask:
    """What a Ray worker runs for one shard in the first pass (dedupe, balance)."""

    def __init__(self, plan: Plan, categories: bool) -> None:
        self.plan = plan
        self.categories = categories

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        shard: Shard = pickle.loads(row["shard"])
        with few_collections(own_process=True):  # a Ray worker, not the caller
            log = shard_log(self.plan, shard, self.categories)
        return {"log": pickle.dumps(log)}


def _run_on_ray(plan: Plan, shards: list[Shard], sinks: Sinks, progress: Any, lines_path: str) -> PassResult:
    rows = [{"shard": pickle.dumps(shard)} for shard in shards]
    dataset = _ordered(rows).map(_ShardTask(plan))
    results: dict[int, PassResult] = {}
    for row in dataset.iter_rows():
        index = int(row["index"])
        result: PassResult = pickle.loads(row["result"])
        if sinks.lines is not None:  # the shard's redacted lines of DPO candidates
            base = sinks.lines.tell()
            sinks.lines.write(row["lines"])
            result.candidates = moved_to(result.candidates, lines_path, base)
        results[index] = result
        shift_to_sft_file(result, sinks)
        _append(row, sinks)
        if progress is not None:
            progress(shards[index].end - shards[index].start)
    return merge_results(shards, results)


def _append(row: dict[str, Any], sinks: Sinks) -> None:
    for kind, sink in parts_of(sinks).items():
        sink.write(row[kind])


class _ShardTask:
    """What a Ray worker runs for one shard: the pass, into memory; the bytes and counts come back."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        shard: Shard = pickle.loads(row["shard"])
        buffers = {kind: io.BytesIO() for kind in output_parts(self.plan.loaded)}
        lines = io.BytesIO()  # the redacted lines of DPO candidates, when redaction rewrites any
        sinks = sinks_of(dict(buffers), lines)
        with few_collections(own_process=True):  # a Ray worker, not the caller
            result = Pass(self.plan, sinks, sft_locators=_same_trl(self.plan.loaded)).run(
                shard_lines(shard, self.plan.read_options)
            )
        out: dict[str, Any] = {kind: buffer.getvalue() for kind, buffer in buffers.items()}
        out["lines"] = lines.getvalue()
        return out | {"index": shard.index, "result": pickle.dumps(result)}
