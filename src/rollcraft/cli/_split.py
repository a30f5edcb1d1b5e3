"""``rollcraft split``: train/eval files split by task (:mod:`rollcraft.split`)."""

from __future__ import annotations

from typing import Annotated

import typer

from rollcraft._console import out
from rollcraft._io import refuse_overwriting_inputs
from rollcraft.cli._common import PathsArg, ShapeOpt, TaskKeyOpt, print_read, read_options, table, write_json
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD
from rollcraft.split import EVAL_FILE, TRAIN_FILE, SplitReport, split_paths

__all__ = ["register"]


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise typer.BadParameter("must be between 0 and 1 (exclusive), e.g. 0.1")
    return value


def split_command(
    paths: PathsArg,
    eval_fraction: Annotated[
        float,
        typer.Option(
            "--eval-fraction", help="Share of each task type's tasks that go to eval.", callback=_fraction
        ),
    ],
    output: Annotated[
        str, typer.Option("-o", "--output", help=f"Folder to write {TRAIN_FILE} and {EVAL_FILE} into.")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same split).")] = 0,
    report_path: Annotated[
        str | None, typer.Option("--report", help="Write the report as JSON here.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing train/eval files.")] = False,
    shape: ShapeOpt = "auto",
    task_key: TaskKeyOpt = None,
) -> None:
    """Split rollouts by task into OUT/train.jsonl and OUT/eval.jsonl (original lines; no task on
    both sides; stratified by task type)."""
    options = read_options(shape, "separate", DEFAULT_SUCCESS_THRESHOLD, task_key)
    refuse_overwriting_inputs(paths, [f"{output}/{TRAIN_FILE}", f"{output}/{EVAL_FILE}", report_path])
    report = split_paths(paths, output, eval_fraction=eval_fraction, seed=seed, options=options, force=force)
    _print(report, output)
    if report_path:
        write_json(report_path, report.to_dict())


def _print(report: SplitReport, output: str) -> None:
    print_read(report.read)
    result = table(
        f"Split by task (seed {report.seed}, eval fraction {report.eval_fraction})",
        ["task type", "tasks", "eval tasks", "train rollouts", "eval rollouts"],
    )
    for kind, (tasks, chosen) in sorted(report.types.items()):
        row = [kind, str(tasks), str(chosen), str(report.train.by_type[kind]), str(report.eval.by_type[kind])]
        result.add_row(*row)
    out.print(result)
    quarantined = sum(report.read.quarantined.values())
    out.print(
        f"train: {report.train.tasks} tasks, {report.train.rollouts} rollouts -> {output}/{TRAIN_FILE}\n"
        f"eval: {report.eval.tasks} tasks, {report.eval.rollouts} rollouts -> {output}/{EVAL_FILE}\n"
        f"quarantined: {quarantined} lines (in neither file)",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``split`` to ``app``."""
    app.command("split")(split_command)
