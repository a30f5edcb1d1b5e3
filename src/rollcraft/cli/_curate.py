"""Curation commands: ``filter``, ``sample``, ``apply-review``, ``balance``.

The filter flags (``*Opt``) and :func:`~rollcraft.cli._filters.filter_config` live in
:mod:`rollcraft.cli._filters`, shared with every command that filters (``sft``, ``dpo``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console

from rollcraft._console import err, out
from rollcraft._io import atomic_writer, refuse_overwriting_inputs
from rollcraft._records import Rollout
from rollcraft.cli._common import (
    PathsArg,
    ReasoningOpt,
    ShapeOpt,
    SuccessOpt,
    TaskKeyOpt,
    progress,
    quarantine_lines,
    read_options,
    read_summary_line,
    table,
    write_json,
)
from rollcraft.cli._filters import judged_rollouts, with_filters
from rollcraft.curate import (
    BalanceReport,
    ReviewReport,
    SampleReport,
    Strata,
    balance,
    read_decisions,
    sample_for_review,
)
from rollcraft.filters import FilterConfig, FilterReport
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD, ReadReport, read_rollouts
from rollcraft.steps import Judged, Review, Stage, WriteKept, WriteRejects, run_steps

__all__ = [
    "register",
    "write_lines",
]

OutOpt = Annotated[str | None, typer.Option("--output", "-o", help="Output JSONL (- for stdout).")]
ReportOpt = Annotated[str | None, typer.Option("--report", help="Write the report as JSON here.")]
RejectsOpt = Annotated[
    str | None,
    typer.Option("--rejects", help='Write dropped lines as {"dropped_by", "reason", "rollout"} JSONL here.'),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same choice).")]
ByOpt = Annotated[
    str, typer.Option("--by", help="Category: task_type, agent, task_key, none, or a record field (dots).")
]


@with_filters
def filter_command(
    paths: PathsArg,
    output: OutOpt = None,
    report_path: ReportOpt = None,
    rejects: RejectsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the report; write no data.")] = False,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
    *,
    filters: FilterConfig,
    redaction: Any,
) -> None:
    """Keep the rollouts that pass every filter; write them as their original lines, byte for byte."""
    options = read_options(shape, reasoning, success_threshold, task_key)
    _check_outputs(paths, output, rejects, report_path, dry_run=dry_run)
    report = FilterReport()

    def steps(stages: list[Stage]) -> Iterator[Judged]:
        return judged_rollouts(paths, filters, redaction, options, report, stages)

    write_lines(steps, None if dry_run else output, None if dry_run else rejects, report.read)
    console = _console_for(output, dry_run)
    _print_filter_report(report, console)
    data = report.to_dict()
    if redaction is not None:
        data["redaction"] = redaction.report.to_dict()
        console.print(f"Secrets: {data['redaction']}")
    if report_path:
        write_json(report_path, data)


def _check_outputs(
    paths: list[str], output: str | None, rejects: str | None, report: str | None, *, dry_run: bool
) -> None:
    if output is None and not dry_run:
        raise typer.BadParameter("give -o OUT.jsonl (or --dry-run)", param_hint="--output")
    refuse_overwriting_inputs(paths, [output, rejects, report])


def _console_for(output: str | None, dry_run: bool) -> Console:
    return err if output == "-" and not dry_run else out


def write_lines(
    steps: Callable[[list[Stage]], Iterator[Judged]],
    output: str | None,
    rejects: str | None,
    read: ReadReport,
) -> None:
    """Run a command's ``steps`` (given the writers to end with): the kept rollouts' original
    lines to ``output`` and the dropped ones, wrapped, to ``rejects`` (:mod:`rollcraft.steps`).

    Either may be None (not written). Both are atomic: nothing is left half-written, and nothing
    at all when ``read`` (filled as the steps run) found no rollout.
    """
    with contextlib.ExitStack() as stack:
        writers: list[Stage] = []
        if output:
            writers.append(WriteKept(stack.enter_context(atomic_writer(output))))
        if rejects:
            writers.append(WriteRejects(stack.enter_context(atomic_writer(rejects))))
        with progress("filtering") as advance:
            for _ in steps(writers):
                advance()
        require_rollouts(read)  # before the outputs are kept: no rollout read is exit 2, no file


def _print_filter_report(report: FilterReport, console: Console) -> None:
    console.print(report.summary_line())
    quarantined = sum(report.read.quarantined.values())
    if quarantined:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(report.read.quarantined.items()))
        console.print(f"Quarantined {quarantined} lines, not counted above ({reasons})")
        for line in quarantine_lines(report.read):
            console.print(line, markup=False)
    result = table("Drops per filter", ["filter", "dropped (first match)", "alone", "example reason"])
    result.columns[3].justify = "left"
    for step in report.steps:
        result.add_row(
            step, str(report.dropped[step]), str(report.alone[step]), report.examples.get(step, "-")
        )
    result.add_row("TOTAL", str(sum(report.dropped.values())), "", "", end_section=False)
    console.print(result)
    console.print(read_summary_line(report.read))
    if not report.balanced:
        console.print("[bold red]COUNTS DO NOT ADD UP[/]")


# ---------------------------------------------------------------------------------------------
# sample


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter("comma-separated numbers", param_hint=name) from None


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter("comma-separated whole numbers", param_hint=name) from None


def sample_command(
    paths: PathsArg,
    output: Annotated[str, typer.Option("--output", "-o", help="Review sample JSONL (original lines).")],
    edges: Annotated[str, typer.Option("--edges", help="Reward band edges, comma-separated.")] = "0.5,0.8",
    sizes: Annotated[
        str, typer.Option("--sizes", help="Rollouts per band (one more than edges).")
    ] = "10,20,20",
    by: ByOpt = "task_type",
    seed: SeedOpt = 0,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
) -> None:
    """Draw the tutorial's stratified review sample (reward bands x category), seeded and reproducible."""
    strata = Strata(_floats(edges, "--edges"), _ints(sizes, "--sizes"))
    options = read_options(shape, reasoning, success_threshold, task_key)
    refuse_overwriting_inputs(paths, [output, report_path])
    report = SampleReport()
    chosen = sample_for_review(paths, strata=strata, by=by, seed=seed, options=options, report=report)
    _write_rollouts(chosen, output, report.read)
    console = _console_for(output, False)
    result = table(f"Review sample (seed {seed})", ["stratum / " + by, "available", "chosen"])
    for row in report.to_dict()["strata"]:
        result.add_row(f"{row['stratum']} / {row['category']}", str(row["available"]), str(row["chosen"]))
    console.print(result)
    console.print(f"Sampled {sum(report.chosen.values())}/{report.read.rollouts} rollouts for review")
    console.print(read_summary_line(report.read))
    if report_path:
        write_json(report_path, report.to_dict())


def _write_rollouts(rollouts: Iterator[Rollout], output: str, read: ReadReport) -> None:
    with atomic_writer(output) as handle:
        for rollout in rollouts:
            handle.write(rollout.raw + b"\n")
        require_rollouts(read)  # before the output is kept: no rollout read is exit 2, no file


# ---------------------------------------------------------------------------------------------
# apply-review


def apply_review_command(
    paths: PathsArg,
    decisions: Annotated[str, typer.Option("--decisions", help="Decisions JSONL (see docs/filtering.md).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Kept rollouts (original lines).")],
    rejects: RejectsOpt = None,
    drop_undecided: Annotated[
        bool, typer.Option("--drop-undecided", help="Also drop rollouts that have no decision.")
    ] = False,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
) -> None:
    """Drop the rollouts rejected in review; report decisions that matched no rollout."""
    options = read_options(shape, reasoning, success_threshold, task_key)
    refuse_overwriting_inputs([*paths, decisions], [output, rejects, report_path])
    table_of = read_decisions(decisions)
    review = Review(table_of, drop_undecided)
    report = review.report

    def steps(stages: list[Stage]) -> Iterator[Judged]:
        items = read_rollouts(paths, options=options)
        return run_steps(items, [review, *stages], FilterReport(read=report.read))

    write_lines(steps, output, rejects, report.read)
    report.unmatched = review.unmatched()
    console = _console_for(output, False)
    console.print(
        f"Kept {report.kept}/{report.read.rollouts} rollouts: {report.accepted} accepted, "
        f"{report.rejected} rejected, {report.undecided} without a decision"
        + _undecided_detail(report, drop_undecided)
    )
    console.print(f"{len(report.unmatched)} of {len(table_of)} decisions matched no rollout")
    console.print(read_summary_line(report.read))
    if report_path:
        write_json(report_path, report.to_dict())


def _undecided_detail(report: ReviewReport, drop_undecided: bool) -> str:
    """`` (S skipped, D dropped)`` after the undecided count (a skip is no decision)."""
    parts = [f"{report.skipped} skipped"] if report.skipped else []
    parts += [f"{report.dropped_undecided} dropped"] if drop_undecided else []
    return f" ({', '.join(parts)})" if parts else ""


# ---------------------------------------------------------------------------------------------
# balance


def balance_command(
    paths: PathsArg,
    output: Annotated[str, typer.Option("--output", "-o", help="Balanced rollouts (original lines).")],
    max_per_category: Annotated[int, typer.Option("--max-per-category", help="Keep at most N per category.")],
    by: ByOpt = "task_type",
    seed: SeedOpt = 0,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
) -> None:
    """Keep at most N rollouts per category: a seeded random choice in each, not the first N."""
    options = read_options(shape, reasoning, success_threshold, task_key)
    refuse_overwriting_inputs(paths, [output, report_path])
    report = BalanceReport()
    kept = balance(paths, max_per_category=max_per_category, by=by, seed=seed, options=options, report=report)
    _write_rollouts(kept, output, report.read)
    console = _console_for(output, False)
    result = table(f"Rollouts per {by} (seed {seed})", [by, "before", "after"])
    for row in report.to_dict()["categories"]:
        result.add_row(row["category"], str(row["before"]), str(row["after"]))
    console.print(result)
    console.print(f"Kept {sum(report.after.values())}/{report.read.rollouts} rollouts")
    console.print(read_summary_line(report.read))
    if report_path:
        write_json(report_path, report.to_dict())


def register(app: typer.Typer) -> None:
    """Add the curation commands to ``app``."""
    app.command("filter")(filter_command)
    app.command("sample")(sample_command)
    app.command("apply-review")(apply_review_command)
    app.command("balance")(balance_command)
