"""``rollcraft validate``: check an SFT/DPO file before training; exit 1 when it has errors."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from rollcraft._console import out
from rollcraft._io import atomic_writer, refuse_overwriting_inputs
from rollcraft.validate import ValidationReport, stat_lines, validate_file

__all__ = ["register"]

_SHOWN_FINDINGS = 40


class _KindOption(str, Enum):
    sft = "sft"
    dpo = "dpo"
    kto = "kto"


class _FormatOption(str, Enum):
    auto = "auto"
    trl = "trl"
    openai = "openai"
    nemo_rl = "nemo-rl"
    tokens = "tokens"  # exact-token SFT rows (sft --format tokens)


def validate_command(
    data: Annotated[
        Path, typer.Argument(help="The SFT or DPO JSONL file to check.", metavar="DATA", show_default=False)
    ],
    kind: Annotated[
        _KindOption | None, typer.Option("--kind", help="sft, dpo or kto (detected by default).")
    ] = None,
    dialect: Annotated[_FormatOption, typer.Option("--format", help="Trainer dialect.")] = _FormatOption.auto,
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            "--tokenizer",
            help="Local Hugging Face tokenizer folder: render rows as train does (lengths in tokens, "
            "what the chat template drops or refuses).",
        ),
    ] = None,
    max_seq_len: Annotated[
        int | None, typer.Option("--max-seq-len", min=1, help="Report rows whose final answer it would cut.")
    ] = None,
    chat_template: Annotated[
        Path | None, typer.Option("--chat-template", help="A Jinja chat template to use instead.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every figure and finding here.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
    roundtrip: Annotated[
        bool, typer.Option("--roundtrip/--no-roundtrip", help="Check the datasets.load_dataset round trip.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdict line.")] = False,
) -> None:
    """Validate an SFT/DPO file: structure, tool calls, pairs, lengths, rewards, task mix.

    Exit status: 0 no errors, 1 errors found, 2 usage error.
    """
    if (max_seq_len is not None or chat_template is not None) and tokenizer is None:
        raise typer.BadParameter("needs --tokenizer", param_hint="--max-seq-len/--chat-template")
    refuse_overwriting_inputs([data], [json_out, html_out])
    report = validate_file(
        data,
        kind=None if kind is None else kind.value,
        dialect=dialect.value,
        tokenizer=tokenizer,
        max_seq_len=max_seq_len,
        chat_template=chat_template,
        roundtrip=roundtrip,
    )
    _write_reports(report, json_out, html_out)
    _print_summary(report, quiet=quiet)
    if not report.ok:
        sys.exit(1)


def _write_reports(report: ValidationReport, json_out: Path | None, html_out: Path | None) -> None:
    for target, text in ((json_out, report.to_json), (html_out, report.to_html)):
        if target is not None:
            with atomic_writer(target) as handle:
                handle.write(text().encode("utf-8"))


def _print_summary(report: ValidationReport, *, quiet: bool) -> None:
    if not quiet:
        out.print(_figures_table(report))
        if report.findings:
            out.print(_findings_table(report))
    verdict = "[bold red]FAIL[/]" if report.errors else "[bold green]OK[/]"
    out.print(
        f"{verdict} {report.path}: {report.kind} / {report.dialect}, {report.rows} rows, "
        f"{report.errors} error(s), {report.warnings} warning(s)",
        markup=True,
    )


def _figures_table(report: ValidationReport) -> Table:
    table = Table(
        title=f"rollcraft validate: {Path(report.path).name}", show_header=False, title_justify="left"
    )
    table.add_column("figure", style="bold")
    table.add_column("value")
    for label, value in stat_lines(report):
        table.add_row(label, value)
    if report.stats["length_unit"] == "chars":
        table.add_row("note", "lengths in characters (pass --tokenizer DIR for tokens)")
    template = report.stats.get("template")
    if template:
        table.add_row("chat template", escape(_template_line(template)))
    return table


def _template_line(template: dict[str, Any]) -> str:
    """The probed template in one line: the row shape it needs, what it drops, its limits."""
    parts = [f"arguments {template['arguments']}", f"no tools as {template['empty_tools']}"]
    parts.append(f"reasoning {template['reasoning']}")
    if template["drops"]:
        parts.append("drops " + ", ".join(template["drops"]))
    if template["limits"]:
        parts.append("limits " + ", ".join(template["limits"]))
    return "; ".join(parts)


def _findings_table(report: ValidationReport) -> Table:
    shown = report.findings[:_SHOWN_FINDINGS]
    more = sum(report.counts.values()) - len(shown)
    caption = f"... and {more} more (see --json / --html)" if more > 0 else None
    table = Table(title="Findings", caption=caption, title_justify="left", caption_justify="left")
    for column in ("severity", "row", "code", "message"):
        table.add_column(column, overflow="fold")
    for f in shown:
        style = "red" if f.severity == "error" else "yellow"
        row = "file" if f.row is None else str(f.row)
        table.add_row(f"[{style}]{f.severity}[/]", row, f.code, escape(f.message))
    return table


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to the ``rollcraft`` app."""
    app.command("validate", no_args_is_help=True)(validate_command)
