"""Options and output helpers shared by the CLI command modules."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
import typer
import typer.main
from rich.table import Table

from rollcraft._console import err, out, reports_to_stderr
from rollcraft._io import atomic_writer
from rollcraft.read._inspect import read_summary, require_rollouts
from rollcraft.read._normalize import ReasoningMode
from rollcraft.read._reader import ReadOptions, ReadReport, Shape, kept_examples
from rollcraft.read._trajectory import TrajectoryMode

__all__ = [
    "PathsArg",
    "PiiOpt",
    "ReasoningOpt",
    "ShapeOpt",
    "SuccessOpt",
    "TaskKeyOpt",
    "TrajectoryOpt",
    "finite",
    "pii_kinds",
    "print_read",
    "progress",
    "quarantine_lines",
    "quarantine_listing",
    "read_options",
    "read_summary_line",
    "route_reports",
    "write_json",
]

PathsArg = Annotated[list[str], typer.Argument(help="Rollout files, folders, globs, or - for stdin.")]
ShapeOpt = Annotated[
    str, typer.Option("--shape", help="Record shape: auto (per record), nemo-gym, tutorial or chat.")
]
ReasoningOpt = Annotated[
    str,
    typer.Option(
        "--reasoning", help="Reasoning: separate (reasoning_content), think (inline <think>) or drop."
    ),
]


def finite(value: float | None) -> float | None:
    """Option callback: a threshold must be a finite number (``nan`` compares false with all)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, not {value}")
    return value


SuccessOpt = Annotated[
    float,
    typer.Option(
        "--success-threshold",
        help="Reward at or above which a rollout without an explicit flag succeeds.",
        callback=finite,
    ),
]
TaskKeyOpt = Annotated[
    str | None, typer.Option("--task-key", help="A record field (dots reach inside) that names the task.")
]

_SHAPES = ("auto", "nemo-gym", "tutorial", "chat")
_REASONING = ("separate", "think", "drop")


PiiOpt = Annotated[
    str | None,
    typer.Option(
        "--redact-pii",
        help="Also redact these personal-data kinds (comma-separated: phone_number, ip_address).",
        rich_help_panel="Secrets",
    ),
]


def pii_kinds(value: str | None) -> list[str]:
    """``--redact-pii a,b`` as a list of kinds."""
    return [kind.strip() for kind in (value or "").split(",") if kind.strip()]


TrajectoryOpt = Annotated[
    str,
    typer.Option(
        "--trajectory",
        help="Records with ng_trajectory: main (the main agent's model-visible conversation), branches"
        " (also a row per subagent and per context before a compaction) or off (response.output).",
    ),
]


def read_options(
    shape: str, reasoning: str, success_threshold: float, task_key: str | None, trajectory: str = "main"
) -> ReadOptions:
    """Check and bundle the reading options."""
    if trajectory not in ("main", "branches", "off"):
        raise typer.BadParameter("must be main, branches or off", param_hint="--trajectory")
    if shape not in _SHAPES:
        raise typer.BadParameter(f"must be one of {', '.join(_SHAPES)}", param_hint="--shape")
    if reasoning not in _REASONING:
        raise typer.BadParameter(f"must be one of {', '.join(_REASONING)}", param_hint="--reasoning")
    return ReadOptions(
        shape=cast(Shape, shape),
        reasoning=cast(ReasoningMode, reasoning),
        success_threshold=success_threshold,
        task_key=task_key,
        trajectory=cast(TrajectoryMode, trajectory),
    )


def read_summary_line(report: ReadReport) -> str:
    """``Read L lines: R rollouts + Q quarantined (reason n, ...)`` and whether they add up.

    Every command that reads rollouts reports its read through here, so this is where a read
    that found no rollout at all stops the command: :func:`rollcraft.read._inspect.require_rollouts`
    raises an :class:`~rollcraft.InputError` (exit 2) that names what the inputs look like
    (SFT rows, DPO pairs, NeMo Gym input rows, ...) and carries this line.
    """
    require_rollouts(report)
    check = "" if report.balanced else "  [bold red]COUNTS DO NOT ADD UP[/]"
    return read_summary(report) + check


def quarantine_lines(report: ReadReport, *, limit: int = 5) -> list[str]:
    """The first quarantined lines as ``file:line: reason (detail)``, for the terminal."""
    examples = [(q.source, q.line, q.reason, q.detail) for q in report.quarantine_examples]
    return quarantine_listing(examples, sum(report.quarantined.values()), limit=limit)


def quarantine_listing(
    examples: Sequence[tuple[str, int, str, str]],
    total: int,
    *,
    limit: int = 5,
    more: str = "--json / --report list the first 20 and the first of each reason",
) -> list[str]:
    """The first ``limit`` of ``examples`` (source, line, reason, detail) and the first of each
    other reason, and ``... and N more (more)`` when ``total`` quarantined lines are more."""
    chosen = kept_examples(examples, limit, reason=itemgetter(2))
    shown = [f"  {src}:{line}: {reason} ({detail[:100]})" for src, line, reason, detail in chosen]
    if total > len(shown):
        shown.append(f"  ... and {total - len(shown)} more ({more})")
    return shown


def print_read(report: ReadReport) -> None:
    """The read summary line, then where the first quarantined lines are (see :func:`read_summary_line`)."""
    out.print(read_summary_line(report))
    for line in quarantine_lines(report):
        out.print(line, markup=False)


def route_reports(app: typer.Typer, args: Sequence[str]) -> None:
    """Send reports to standard error when the command in ``args`` writes data to stdout.

    That is when one of its options is given ``-`` (``-o -``, ``--report -``, ``--json=-``) or
    ``/dev/stdout``: standard output then carries only the data. Decided before the command
    runs, so no report printed before the output is opened lands in the data.
    """
    command: Any = typer.main.get_command(app)  # typer may vendor click: duck-typed
    words = list(args)
    while isinstance(getattr(command, "commands", None), dict):  # a group: find its subcommand
        name = next((w for w in words if not w.startswith("-")), None)
        if name is None or name not in command.commands:
            return
        words = words[words.index(name) + 1 :]
        command = command.commands[name]
    if _option_given_dash(command, words):
        reports_to_stderr()


def _option_given_dash(command: Any, words: list[str]) -> bool:
    valued = {
        opt
        for param in command.params
        if param.param_type_name == "option" and not param.is_flag and not param.count
        for opt in param.opts
    }
    for i, word in enumerate(words):
        if word == "--":
            return False
        if word in valued and i + 1 < len(words) and words[i + 1] in _STDOUT:
            return True
        name, eq, value = word.partition("=")
        if eq and value in _STDOUT and name in valued:
            return True
        if word[:2] in valued and not word.startswith("--") and word[2:] in _STDOUT:
            return True
    return False


#: Output names that are standard output.
_STDOUT = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (``-`` prints it)."""
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    with atomic_writer(path) as handle:
        handle.write(payload)


def table(title: str, columns: list[str]) -> Table:
    """A rich table with rollcraft's look."""
    result = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        result.add_column(column, justify="left" if i == 0 else "right")
    return result


@contextmanager
def progress(description: str, *, total: float | None = None) -> Iterator[Any]:
    """A transient progress bar on stderr when it is a terminal; a no-op object otherwise."""
    if not sys.stderr.isatty():
        yield _NoProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Advance(bar, task, description)


class _NoProgress:
    def __call__(self, n: float = 1) -> None:
        return None

    def restart(self, description: str) -> None:
        return None


class _Advance:
    def __init__(self, bar: Any, task: Any, description: str) -> None:
        self._bar = bar
        self._task = task
        self._description = description

    def __call__(self, n: float = 1) -> None:
        self._bar.advance(self._task, n)

    def restart(self, description: str) -> None:
        """Start again from zero (another pass over the same input), under ``description``."""
        self._bar.reset(self._task, description=f"{self._description}: {description}")


def echo(text: str) -> None:
    """Print a report line to stdout (rich markup allowed)."""
    out.print(text)
