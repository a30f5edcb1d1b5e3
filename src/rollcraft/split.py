"""Clean train/eval splits by task (``rollcraft split``): no task on both sides.

Two passes of :func:`rollcraft.steps.run_steps` over the inputs: the first (:class:`CollectTasks`)
notes each task's type; :func:`choose_eval_tasks` draws the evaluation tasks, per task type;
the second (:class:`Route`) writes each rollout's original line, byte for byte and in input
order, to the side of its task::

    >>> report = split_paths(["examples/rollouts"], "splits", eval_fraction=0.2)  # doctest: +SKIP
    >>> report.eval.tasks  # doctest: +SKIP
    2

The draw: each task type's tasks, sorted by key, are shuffled by ``random.Random(f"{seed}/{type}")``
and the first :func:`eval_count` of them are evaluation tasks. A split depends on the seed and
on the set of tasks, not on the order of the files or of their lines.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollcraft._errors import OutputError
from rollcraft._io import atomic_writer
from rollcraft.filters import FilterReport, relabel, rereadable
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import ReadOptions, ReadReport, read_rollouts
from rollcraft.steps import Judged, Writer, drain, run_steps

__all__ = [
    "EVAL_FILE",
    "TRAIN_FILE",
    "CollectTasks",
    "Route",
    "Side",
    "SplitReport",
    "choose_eval_tasks",
    "eval_count",
    "split_paths",
]

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"


def eval_count(tasks: int, fraction: float) -> int:
    """How many of a type's ``tasks`` go to evaluation: ``fraction`` of them rounded to the
    nearest whole number (halves up), then at least one and at most all but one when the type
    has two tasks or more. A type with a single task trains.

    >>> [eval_count(n, 0.1) for n in (1, 2, 10, 14, 15, 100)]
    [0, 1, 1, 1, 2, 10]
    """
    if tasks < 2:
        return 0
    return min(max(int(fraction * tasks + 0.5), 1), tasks - 1)


def choose_eval_tasks(task_types: Mapping[str, str], fraction: float, seed: int) -> frozenset[str]:
    """The evaluation tasks of a split: ``task_types`` maps each task key to its type.

    >>> sorted(choose_eval_tasks({"a": "math", "b": "math", "c": "code"}, 0.5, seed=0))
    ['a']
    """
    by_type: dict[str, list[str]] = {}
    for task, kind in task_types.items():
        by_type.setdefault(kind, []).append(task)
    chosen: list[str] = []
    for kind, tasks in by_type.items():
        order = sorted(tasks)
        random.Random(f"{seed}/{kind}").shuffle(order)
        chosen += order[: eval_count(len(order), fraction)]
    return frozenset(chosen)


@dataclass(slots=True)
class CollectTasks:
    """The first pass's stage: each task's type (that of its first rollout), in input order."""

    types: dict[str, str] = field(default_factory=dict)
    name: str = "collect_tasks"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        types = self.types
        for rollout, drop in judged:
            if rollout.task_key not in types:
                types[rollout.task_key] = rollout.task_type
            yield rollout, drop


@dataclass(slots=True)
class Side:
    """What one side of a split holds."""

    rollouts: int = 0
    tasks: int = 0
    by_type: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts, "tasks": self.tasks}


@dataclass(slots=True)
class Route:
    """The second pass's stage: each rollout's original line to the side of its task."""

    eval_tasks: frozenset[str]
    train_sink: Writer
    eval_sink: Writer
    train: Side = field(default_factory=Side)
    eval: Side = field(default_factory=Side)
    name: str = "route"

    def run(self, judged: Iterator[Judged]) -> Iterator[Judged]:
        for rollout, drop in judged:
            if rollout.task_key in self.eval_tasks:
                side, sink = self.eval, self.eval_sink
            else:
                side, sink = self.train, self.train_sink
            sink.write(rollout.raw + b"\n")
            side.rollouts += 1
            side.by_type[rollout.task_type] += 1
            yield rollout, drop


@dataclass(slots=True)
class SplitReport:
    """A finished split: what was read, what each side holds, per task type."""

    eval_fraction: float
    seed: int
    read: ReadReport = field(default_factory=ReadReport)
    train: Side = field(default_factory=Side)
    eval: Side = field(default_factory=Side)
    #: task type -> (tasks, evaluation tasks)
    types: dict[str, tuple[int, int]] = field(default_factory=dict)
    eval_tasks: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Every line is accounted for: ``train + eval + quarantined == lines read``."""
        quarantined = sum(self.read.quarantined.values())
        return self.train.rollouts + self.eval.rollouts + quarantined == self.read.lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_fraction": self.eval_fraction,
            "seed": self.seed,
            "lines": self.read.lines,
            "balanced": self.balanced,
            "quarantined": dict(sorted(self.read.quarantined.items())),
            "quarantine_examples": [
                {"file": q.source, "line": q.line, "reason": q.reason, "detail": q.detail}
                for q in self.read.quarantine_examples
            ],
            "train": self.train.to_dict(),
            "eval": self.eval.to_dict(),
            "task_types": {
                kind: {
                    "tasks": tasks,
                    "eval_tasks": chosen,
                    "train_rollouts": self.train.by_type[kind],
                    "eval_rollouts": self.eval.by_type[kind],
                }
                for kind, (tasks, chosen) in sorted(self.types.items())
            },
            "eval_task_keys": self.eval_tasks,
        }


def split_paths(
    paths: Sequence[str],
    output_dir: str | os.PathLike[str],
    *,
    eval_fraction: float,
    seed: int = 0,
    options: ReadOptions | None = None,
    force: bool = False,
) -> SplitReport:
    """Split the rollouts of ``paths`` by task into ``output_dir``/train.jsonl and eval.jsonl.

    ``eval_fraction`` is in (0, 1). Existing output files are an :class:`OutputError` unless
    ``force``; both files are written atomically, and neither when no rollout was read.
    """
    if not 0 < eval_fraction < 1:
        raise ValueError("eval_fraction must be between 0 and 1 (exclusive)")
    train_path, eval_path = output_files(output_dir, force=force)
    report = SplitReport(eval_fraction=eval_fraction, seed=seed)
    with rereadable(paths) as sources:

        def run(stage: CollectTasks | Route, counts: FilterReport) -> None:
            items = relabel(read_rollouts(sources, options=options), sources, paths)
            drain(run_steps(items, [stage], counts))

        collect = CollectTasks()
        run(collect, FilterReport())
        chosen = choose_eval_tasks(collect.types, eval_fraction, seed)
        _count_types(report, collect.types, chosen)
        with contextlib.ExitStack() as stack:
            route = Route(
                chosen,
                stack.enter_context(atomic_writer(train_path)),
                stack.enter_context(atomic_writer(eval_path)),
            )
            run(route, FilterReport(read=report.read))
            require_rollouts(report.read)  # before the files are kept: no rollout, no files
    report.train, report.eval = route.train, route.eval
    report.train.tasks = len(collect.types) - len(chosen)
    report.eval.tasks = len(chosen)
    return report


def output_files(output_dir: str | os.PathLike[str], *, force: bool) -> tuple[Path, Path]:
    """``output_dir``'s train and eval files; an existing one is an :class:`OutputError` unless
    ``force`` (other files in the folder are left alone)."""
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is not a folder; -o names the folder of {TRAIN_FILE} and {EVAL_FILE}")
    files = folder / TRAIN_FILE, folder / EVAL_FILE
    existing = [str(f) for f in files if f.exists()]
    if existing and not force:
        raise OutputError(f"{', '.join(existing)}: exists; refusing to overwrite it (--force replaces)")
    return files


def _count_types(report: SplitReport, types: Mapping[str, str], chosen: frozenset[str]) -> None:
    tasks = Counter(types.values())
    evals = Counter(types[task] for task in chosen)
    report.types = {kind: (tasks[kind], evals[kind]) for kind in tasks}
    report.eval_tasks = sorted(chosen)
