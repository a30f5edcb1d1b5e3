"""``rollcraft curriculum``: the next collection round's tasks, as NeMo Gym input rows."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rollcraft._console import out
from rollcraft._errors import ConfigError
from rollcraft._io import refuse_overwriting_inputs
from rollcraft.cli._common import (
    PathsArg,
    ShapeOpt,
    SuccessOpt,
    TaskKeyOpt,
    print_read,
    read_options,
    table,
    write_json,
)
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD

__all__ = ["register"]


def curriculum_command(
    paths: PathsArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="The next round's input rows (JSONL; - for stdout).")
    ],
    pass_rate: Annotated[
        str,
        typer.Option("--pass-rate", help="Keep tasks whose pass rate is in LOW:HIGH (both included)."),
    ] = "0.1:0.9",
    max_per_type: Annotated[
        int | None,
        typer.Option("--max-per-type", help="At most N tasks of each task type (a seeded choice)."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the per-type choice (same seed, same tasks).")
    ] = 0,
    repeats: Annotated[int, typer.Option("--repeats", help="Write each kept task's row N times.")] = 1,
    report_path: Annotated[
        str | None, typer.Option("--report", help="Write the report as JSON here.")
    ] = None,
    shape: ShapeOpt = "auto",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
) -> None:
    """Choose the next round's tasks: those the model sometimes solves.

    Reads rollouts (with the failed attempts in X_failures.jsonl beside them) or reward-profiling
    files (X_reward_profiling.jsonl), computes each task's pass rate, keeps the tasks in the band
    (at most --max-per-type of a type) and writes their NeMo Gym input rows (from
    X_materialized_inputs.jsonl when it is there) for `gym eval run --input`.
    """
    from rollcraft.curriculum import CurriculumConfig, build_curriculum, parse_band

    options = read_options(shape, "separate", success_threshold, task_key)
    try:
        low, high = parse_band(pass_rate)
        config = CurriculumConfig(low, high, max_per_type, seed, repeats)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{(exc.key or '').replace('_', '-')}") from None
    refuse_overwriting_inputs(paths, [output, report_path])
    curriculum = build_curriculum(paths, config, options=options)
    written = curriculum.write(output)
    report = curriculum.report()
    if report_path is not None:
        write_json(report_path, report)
    _print(report, written, output)
    if curriculum.read.lines:
        print_read(curriculum.read)


def _print(report: dict[str, Any], written: int, output: str) -> None:
    bins = table("Pass rate (tasks per decile)", list(report["histogram"]))
    bins.add_row(*(str(n) for n in report["histogram"].values()))
    out.print(bins)
    per_type = table(
        "Per task type", ["type", "tasks", "kept", "too easy", "too hard", "over cap", "no input row"]
    )
    for name, c in report["per_type"].items():
        per_type.add_row(
            name, *(str(c[k]) for k in ("tasks", "kept", "too_easy", "too_hard", "over_cap", "no_input_row"))
        )
    out.print(per_type)
    o = report["outcomes"]
    out.print(
        f"Tasks {report['tasks']}: kept {o['kept']} + too easy {o['too_easy']} + too hard {o['too_hard']}"
        f" + over cap {o['over_cap']} + no input row {o['no_input_row']}"
        f" (pass rate {report['pass_rate']['low']:g}..{report['pass_rate']['high']:g})"
    )
    sources = ", ".join(f"{name} {n}" for name, n in report["rows_from"].items()) or "none"
    out.print(
        f"Wrote {written} rows ({o['kept']} tasks x {report['repeats']}) to {output}; rows from {sources}"
    )
    if report["rows_without_agent_ref"]:
        out.print(
            f"{report['rows_without_agent_ref']} rows name no agent (agent_ref):"
            " give `gym eval run --agent NAME`"
        )


def register(app: typer.Typer) -> None:
    """Add ``curriculum`` to ``app``."""
    app.command("curriculum")(curriculum_command)
