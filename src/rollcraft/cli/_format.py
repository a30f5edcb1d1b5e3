"""Format commands: ``sft``, ``kto`` and ``dpo``: the filters' steps
(:func:`~rollcraft.cli._filters.judged_rollouts`) ending with a row writer (SFT, KTO) or the DPO
collector (:mod:`rollcraft.steps`)."""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Annotated, Any, cast

import typer

from rollcraft._console import out
from rollcraft._io import atomic_writer, refuse_overwriting_inputs
from rollcraft.cli._common import (
    PathsArg,
    ReasoningOpt,
    ShapeOpt,
    SuccessOpt,
    TaskKeyOpt,
    TrajectoryOpt,
    finite,
    print_read,
    read_options,
    table,
    write_json,
)
from rollcraft.cli._filters import judged_rollouts, with_filters
from rollcraft.filters import FilterConfig, FilterReport
from rollcraft.formats import (
    DIALECTS,
    DpoOptions,
    DpoReport,
    KtoFormat,
    SftFormat,
    SftReport,
    TemplateProbe,
    probe_template,
)
from rollcraft.formats._dialects import ArgumentsMode, Dialect
from rollcraft.formats._order import EASY_TO_HARD, ORDERS, RatedRows, copy_ordered, ordered_pairs
from rollcraft.formats._rows import RowFormat
from rollcraft.formats.dpo import CompletionMode, PairCollector, Pairing
from rollcraft.formats.kto import kto_summary, label_weights
from rollcraft.formats.sft import NOT_SUCCESS, Expand
from rollcraft.formats.tokens import TOKENS, TokenFormat
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD, ReadOptions
from rollcraft.steps import CollectDpo, ExpandTrajectories, Stage, WriteRows, drain

__all__ = ["register"]

OutOpt = Annotated[str, typer.Option("-o", "--output", help="Output JSONL file (- for stdout).")]
FormatOpt = Annotated[str, typer.Option("--format", help="Trainer dialect: trl, openai or nemo-rl.")]
SftFormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Trainer dialect: trl, openai or nemo-rl; tokens: the exact token ids of a token-capture "
        "run (input_ids, assistant_masks).",
    ),
]
ArgumentsOpt = Annotated[
    str | None,
    typer.Option(
        "--arguments", help="Tool-call arguments as JSON text (string) or objects (object; not openai)."
    ),
]
ReportOpt = Annotated[str | None, typer.Option("--report", help="Write the counts as JSON to this file.")]
IncludeFailuresOpt = Annotated[
    bool,
    typer.Option(
        "--include-failures",
        help="Also write rows of rollouts that did not succeed (by default only successful ones).",
    ),
]


def _dialect(value: str) -> Dialect:
    if value not in DIALECTS:
        raise typer.BadParameter(f"must be one of {', '.join(DIALECTS)}", param_hint="--format")
    return value


OrderOpt = Annotated[
    str,
    typer.Option(
        "--order",
        help="easy-to-hard: rows by their task's pass rate, highest first (for a curriculum run "
        "with shuffling off); input: as read.",
    ),
]
ChatTemplateOpt = Annotated[
    str | None,
    typer.Option(
        "--chat-template",
        help="A Jinja chat template file replacing the --tokenizer's own, for the row shape.",
    ),
]


def _probe(filters: FilterConfig, chat_template: str | None) -> TemplateProbe | None:
    """The chat template of ``--tokenizer`` (and ``--chat-template``) probed once, or None."""
    if filters.tokenizer is None:
        if chat_template is not None:
            raise typer.BadParameter("needs --tokenizer (the model to train)", param_hint="--chat-template")
        return None
    return probe_template(filters.tokenizer, chat_template)


def _run(
    paths: list[str],
    filters: FilterConfig,
    redaction: Any,
    options: ReadOptions,
    report: FilterReport,
    writer: Stage,
) -> list[Stage]:
    """Run the filters' steps ending with ``writer`` (with ``--trajectory branches``, the
    trajectories' other conversations first: :class:`~rollcraft.steps.ExpandTrajectories`); the
    steps that ended them. No rollout read is exit 2: called inside the output's atomic writer,
    it keeps no file."""
    stages: list[Stage] = [writer]
    if options.trajectory == "branches":
        stages.insert(0, ExpandTrajectories(options.reasoning, frozenset(filters.drop_flagged)))
    drain(judged_rollouts(paths, filters, redaction, options, report, stages))
    require_rollouts(report.read)
    return stages


def _print_shape(probe: TemplateProbe | None, filters: FilterConfig, stages: list[Stage]) -> None:
    expand = next((s for s in stages if isinstance(s, ExpandTrajectories)), None)
    if expand is not None:
        left = sum(expand.left_out.values())
        out.print(f"Trajectories: {expand.added} more rows from subagents and branches; {left} left out")
    if probe is None:
        return
    shape = probe.shape
    out.print(
        f"Rows shaped for the chat template of {filters.tokenizer}: arguments as {shape.arguments}, "
        f"empty tools as {shape.empty_tools}, reasoning as {shape.reasoning}",
        markup=False,
    )
    if probe.drops or probe.limits:
        out.print(
            f"The template drops {', '.join(probe.drops) or 'nothing'}; its limits: "
            f"{', '.join(probe.limits) or 'none'} (rollcraft validate --tokenizer names the rows)",
            markup=False,
        )


def _expand(value: str) -> Expand:
    if value not in ("none", "turns"):
        raise typer.BadParameter("must be none or turns", param_hint="--expand")
    return cast(Expand, value)


def _arguments(value: str | None, dialect: Dialect) -> ArgumentsMode:
    mode = value or "string"
    if mode not in ("string", "object") or (dialect == "openai" and mode == "object"):
        raise typer.BadParameter(
            "must be string or object (openai takes only string)", param_hint="--arguments"
        )
    return cast(ArgumentsMode, mode)


def _print_filtering(report: FilterReport, redaction: Any) -> None:
    print_read(report.read)
    out.print(report.summary_line() + " after filters")
    dropped = {f"{name}": n for name, n in report.dropped.items() if n}
    if dropped:
        out.print(_skip_table("Dropped by filter (first match)", dropped))
    if redaction is not None:
        info = redaction.report.to_dict()
        summary = f"{info['redacted']} rollouts redacted, {info['dropped']} dropped"
        out.print(f"Secrets: {summary}; kinds {info['kinds']}")


def _skip_table(title: str, counts: dict[str, int]) -> Any:
    result = table(title, ["reason", "count"])
    for reason, n in counts.items():
        result.add_row(reason, str(n))
    return result


@with_filters
def sft_command(
    paths: PathsArg,
    output: OutOpt,
    dialect: SftFormatOpt = "trl",
    arguments: ArgumentsOpt = None,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
    trajectory: TrajectoryOpt = "main",
    chat_template: ChatTemplateOpt = None,
    include_failures: IncludeFailuresOpt = False,
    expand: Annotated[
        str,
        typer.Option(
            "--expand",
            help="turns: one row per assistant turn (earlier turns without their reasoning), for "
            "thinking models; none: one row per rollout.",
        ),
    ] = "none",
    order: OrderOpt = "input",
    *,
    filters: FilterConfig,
    redaction: Any,
) -> None:
    """Write one SFT row per successful kept rollout: the conversation with its tools, in a trainer's dialect.

    The filter flags of ``rollcraft filter`` apply first (with its default --drop-flagged set);
    rollouts that did not succeed are left out unless --include-failures is given.
    """
    chosen: str = TOKENS if dialect == TOKENS else _dialect(dialect)
    options = read_options(shape, reasoning, success_threshold, task_key, trajectory)
    refuse_overwriting_inputs(paths, [output, report_path])
    report = FilterReport()
    probe = _probe(filters, chat_template)
    row_shape = probe.shape if probe is not None else None
    fmt: SftFormat | TokenFormat
    if chosen == TOKENS:
        _refuse_for_tokens(arguments=arguments, expand=_expand(expand) != "none")
        fmt = TokenFormat(success_only=not include_failures)
    else:
        messages = cast(Dialect, chosen)
        mode, how = _arguments(arguments, messages), _expand(expand)
        fmt = SftFormat(messages, mode, success_only=not include_failures, shape=row_shape, expand=how)
    rated = _rated(fmt, order, paths, options)
    with atomic_writer(output) as handle, tempfile.TemporaryFile() as scratch:
        rows, sink = (fmt, handle) if rated is None else (rated, scratch)
        writer = WriteRows(rows, sink, offsets=False)
        stages = _run(paths, filters, redaction, options, report, writer)
        if rated is not None:
            copy_ordered(scratch, rated.noted, handle)
    sft = writer.report
    _print_filtering(report, redaction)
    _print_shape(probe, filters, stages)
    _print_sft(sft, chosen, output)
    _write_report(report_path, report, redaction, probe, sft=sft.to_dict(), format=chosen)


@with_filters
def dpo_command(
    paths: PathsArg,
    output: OutOpt,
    order: OrderOpt = "input",
    dialect: FormatOpt = "trl",
    pairing: Annotated[str, typer.Option("--pairing", help="best-worst, all or top-k.")] = "best-worst",
    k: Annotated[
        int, typer.Option("--k", min=1, help="With --pairing top-k: the k best against the k worst.")
    ] = 2,
    min_margin: Annotated[
        float,
        typer.Option(
            "--min-margin", help="Pair only if chosen reward - rejected reward >= this.", callback=finite
        ),
    ] = 0.1,
    completion: Annotated[
        str | None,
        typer.Option(
            "--completion", help="full or first-divergence (default: full for trl, else first-divergence)."
        ),
    ] = None,
    arguments: ArgumentsOpt = None,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
    trajectory: TrajectoryOpt = "main",
    chat_template: ChatTemplateOpt = None,
    *,
    filters: FilterConfig,
    redaction: Any,
) -> None:
    """Write DPO preference pairs (chosen vs rejected rollouts of one task) in a trainer's dialect.

    The filter flags of ``rollcraft filter`` apply first (with its default --drop-flagged set);
    pairs are made from the kept rollouts of each task.
    """
    chosen = _dialect(dialect)
    if pairing not in ("best-worst", "all", "top-k"):
        raise typer.BadParameter("must be best-worst, all or top-k", param_hint="--pairing")
    if completion not in (None, "full", "first-divergence"):
        raise typer.BadParameter("must be full or first-divergence", param_hint="--completion")
    if min_margin < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--min-margin")
    dpo_options = DpoOptions(
        dialect=chosen,
        pairing=cast(Pairing, pairing),
        k=k,
        min_margin=min_margin,
        completion=cast(CompletionMode | None, completion),
        arguments=_arguments(arguments, chosen),
    )
    options = read_options(shape, reasoning, success_threshold, task_key, trajectory)
    refuse_overwriting_inputs(paths, [output, report_path])
    probe = _probe(filters, chat_template)
    if probe is not None:
        dpo_options = dataclasses.replace(dpo_options, shape=probe.shape)
    report, dpo = FilterReport(), DpoReport()
    collector = PairCollector(dpo_options, read_options=options, report=dpo)
    collect = CollectDpo(collector, dialect=chosen)
    rates = _rates(order, paths, options)
    with atomic_writer(output) as handle:
        stages = _run(paths, filters, redaction, options, report, collect)
        if rates is None:
            for line in collector.rows():
                handle.write(line)
        else:
            ordered_pairs(collector, rates, handle)
    _print_filtering(report, redaction)
    _print_shape(probe, filters, stages)
    _print_dpo(dpo, dpo_options, output)
    if collect.reasoning_lost:
        out.print(
            f"{collect.reasoning_lost} kept rollouts have reasoning that the {chosen} format cannot carry "
            "(a pair drops it); --reasoning think inlines it as <think>...</think>",
            markup=False,
        )
    counts = dpo.to_dict() | {"reasoning_lost_rollouts": collect.reasoning_lost}
    _write_report(report_path, report, redaction, probe, dpo=counts, format=chosen)


@with_filters
def kto_command(
    paths: PathsArg,
    output: OutOpt,
    desirable_min_reward: Annotated[
        float | None,
        typer.Option(
            "--desirable-min-reward",
            help="Desirable: reward >= this (with --undesirable-max-reward). Default: the rollout succeeded.",
            callback=finite,
        ),
    ] = None,
    undesirable_max_reward: Annotated[
        float | None,
        typer.Option(
            "--undesirable-max-reward",
            help="Undesirable: reward <= this; rollouts between the two are left out.",
            callback=finite,
        ),
    ] = None,
    arguments: ArgumentsOpt = None,
    report_path: ReportOpt = None,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
    trajectory: TrajectoryOpt = "main",
    chat_template: ChatTemplateOpt = None,
    *,
    filters: FilterConfig,
    redaction: Any,
) -> None:
    """Write KTO rows (unpaired preferences for TRL's KTOTrainer): one per kept rollout, labelled
    desirable (it succeeded) or undesirable.

    The filter flags of ``rollcraft filter`` apply first (with its default --drop-flagged set).
    Unlike DPO, a task needs no second rollout: every kept rollout that ends with an answer is a row.
    """
    options = read_options(shape, reasoning, success_threshold, task_key, trajectory)
    refuse_overwriting_inputs(paths, [output, report_path])
    probe = _probe(filters, chat_template)
    row_shape = probe.shape if probe is not None else None
    fmt = KtoFormat(_arguments(arguments, "trl"), desirable_min_reward, undesirable_max_reward, row_shape)
    report = FilterReport()
    with atomic_writer(output) as handle:
        writer = WriteRows(fmt, handle, offsets=False)
        stages = _run(paths, filters, redaction, options, report, writer)
    _print_filtering(report, redaction)
    _print_shape(probe, filters, stages)
    kto = writer.report
    unfit = {reason: n for reason, n in sorted(kto.skipped.items())}
    out.print(f"Wrote {kto.rows} KTO rows to {output}; skipped {sum(unfit.values())} rollouts")
    out.print(kto_summary(kto.to_dict()), markup=False)
    if unfit:
        out.print(_skip_table("Rollouts skipped", unfit))
    counts = kto.to_dict() | {"weights": label_weights(kto.to_dict())}
    _write_report(report_path, report, redaction, probe, kto=counts)


def _rated(fmt: RowFormat, order: str, paths: list[str], options: ReadOptions) -> RatedRows | None:
    """With ``--order easy-to-hard``, ``fmt`` noting each row's task pass rate; else None."""
    rates = _rates(order, paths, options)
    return None if rates is None else RatedRows(fmt, rates)


def _rates(order: str, paths: list[str], options: ReadOptions) -> dict[str, float] | None:
    """With ``--order easy-to-hard``, each task's pass rate (a first pass over ``paths``:
    :func:`rollcraft.curriculum.task_pass_rates`); else None."""
    if order not in ORDERS:
        raise typer.BadParameter(f"must be one of {', '.join(ORDERS)}", param_hint="--order")
    if order != EASY_TO_HARD:
        return None
    if "-" in paths:
        raise typer.BadParameter(
            "needs files (a first pass counts each task's pass rate), not -", param_hint="--order"
        )
    from rollcraft.curriculum import task_pass_rates

    return dict(task_pass_rates(paths, options=options))


def _refuse_for_tokens(**given: bool | str | None) -> None:
    """Options that shape messages have no meaning for token rows: one given is an error."""
    for name, value in given.items():
        if value:
            raise typer.BadParameter("token rows have no messages to shape", param_hint=f"--{name}")


def _print_sft(sft: SftReport, dialect: str, output: str) -> None:
    unfit = {reason: n for reason, n in sorted(sft.skipped.items()) if reason != NOT_SUCCESS}
    out.print(f"Wrote {sft.rows} SFT rows ({dialect}) to {output}; skipped {sum(unfit.values())} rollouts")
    if sft.skipped[NOT_SUCCESS]:
        out.print(
            f"Left out {sft.skipped[NOT_SUCCESS]} unsuccessful rollouts; pass --include-failures to keep them"
        )
    if sft.reasoning_lost:
        out.print(
            f"{sft.reasoning_lost} rows had reasoning that the {dialect} format cannot carry; "
            "--reasoning think inlines it as <think>...</think>",
            markup=False,
        )
    if unfit:
        out.print(_skip_table("Rollouts skipped", unfit))


def _print_dpo(dpo: DpoReport, options: DpoOptions, output: str) -> None:
    out.print(
        f"Tasks: {dpo.tasks} seen, {dpo.tasks_with_two_or_more} with >= 2 usable rollouts; "
        f"wrote {dpo.pairs} pairs ({options.dialect}, {options.pairing}, {options.completion_mode}, "
        f"margin >= {options.min_margin:g}) to {output}"
    )
    skipped = {f"task: {k}": v for k, v in sorted(dpo.skipped_tasks.items())}
    skipped |= {f"pair: {k}": v for k, v in sorted(dpo.skipped_pairs.items())}
    skipped |= {f"rollout: {k}": v for k, v in sorted(dpo.excluded.items())}
    if skipped:
        out.print(_skip_table("Skipped", skipped))


def _write_report(
    path: str | None, report: FilterReport, redaction: Any, probe: TemplateProbe | None, **counts: Any
) -> None:
    """``--report``: the filters' counts, the format's ``counts``, then the redaction's and the
    row shape's when there are some."""
    if not path:
        return
    data = {"filter": report.to_dict(), **counts}
    if redaction is not None:
        data["redaction"] = redaction.report.to_dict()
    if probe is not None:
        data["row_shape"] = probe.to_dict()
    write_json(path, data)


def register(app: typer.Typer) -> None:
    """Add ``sft`` and ``dpo`` to ``app``."""
    app.command("sft")(sft_command)
    app.command("dpo")(dpo_command)
    app.command("kto")(kto_command)
