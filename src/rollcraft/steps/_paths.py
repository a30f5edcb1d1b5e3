"""Steps over files: read them (a first pass too, when a step needs the tasks' success rates),
run the steps, and name a spooled stdin ``<stdin>`` again (:func:`run_paths`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from rollcraft.filters import FilterConfig, FilterReport, TaskStats, build_steps, relabel, rereadable
from rollcraft.read._reader import ReadOptions, read_rollouts
from rollcraft.steps._base import Judged, Step, run_steps

__all__ = ["filter_paths", "run_paths"]

#: Builds a run's steps, given the task stats of a first pass (None when none was asked for).
StepsOf = Callable[[TaskStats | None], Sequence[Step]]


def run_paths(
    paths: Sequence[str],
    steps: StepsOf,
    *,
    options: ReadOptions | None = None,
    report: FilterReport,
    task_stats: bool = False,
) -> Iterator[Judged]:
    """Read ``paths`` (``-`` is stdin) and run ``steps(stats)`` over them; with ``task_stats``, a
    first pass collects :class:`~rollcraft.filters.TaskStats` (stdin is spooled to be read twice)."""
    with rereadable(paths, needed=task_stats) as sources:
        stats = TaskStats.collect(read_rollouts(sources, options=options)) if task_stats else None
        items = relabel(read_rollouts(sources, options=options), sources, paths)
        yield from run_steps(items, steps(stats), report)


def filter_paths(
    paths: Sequence[str],
    config: FilterConfig,
    *,
    options: ReadOptions | None = None,
    report: FilterReport | None = None,
) -> Iterator[Judged]:
    """Read ``paths`` and judge every rollout by ``config``'s filters (two passes when a
    task-level filter is on).

    >>> report = FilterReport()
    >>> judged = filter_paths(["examples/rollouts"], FilterConfig(), report=report)
    >>> kept = [rollout for rollout, drop in judged if drop is None]
    """
    return run_paths(
        paths,
        lambda stats: build_steps(config, task_stats=stats),
        options=options,
        report=report if report is not None else FilterReport(),
        task_stats=config.min_success_rate is not None,
    )
