"""Data commands: ``inspect`` (and the filter/curate/format commands as they land)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from rollcraft._console import out
from rollcraft.cli._common import (
    PathsArg,
    ReasoningOpt,
    ShapeOpt,
    SuccessOpt,
    TaskKeyOpt,
    print_read,
    read_options,
    table,
)
from rollcraft.read._inspect import inspect_paths, require_rollouts
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD

__all__ = ["register"]


def inspect_command(
    paths: PathsArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    shape: ShapeOpt = "auto",
    reasoning: ReasoningOpt = "separate",
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
) -> None:
    """Count lines, rollouts, quarantined lines, tasks, rewards, success, tool use, task types and flags."""
    options = read_options(shape, reasoning, success_threshold, task_key)
    report = inspect_paths(paths, options=options)
    data = report.to_dict()
    if as_json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        require_rollouts(report.total.read)  # what print_read checks below, after the JSON
        return
    out.print(_files_table(data))
    out.print(_detail_table("Quarantined lines", data["quarantined"]))
    out.print(_detail_table("Task types", data["task_types"]))
    out.print(_detail_table("Flags", data["flags"]))
    if "reward_components" in data:
        out.print(_components_table(data["reward_components"]))
    if "sidecars" in data:
        out.print(_sidecars_table(data["sidecars"]))
    print_read(report.total.read)


def _components_table(components: dict[str, dict[str, Any]]) -> Table:
    result = table("Reward components", ["name", "rollouts", "min / mean / max"])
    for name, c in components.items():
        result.add_row(name, str(c["count"]), f"{_fmt(c['min'])} / {_fmt(c['mean'])} / {_fmt(c['max'])}")
    return result


def _sidecars_table(sidecars: dict[str, dict[str, Any]]) -> Table:
    """What NeMo Gym wrote beside each rollouts file (``rollcraft.read._inspect.sidecars_beside``)."""
    result = table("Beside the rollouts files", ["file", "sidecar", "what it holds"])
    for name, found in sidecars.items():
        for kind, summary in found.items():
            beside = summary["file"].rsplit("/", 1)[-1]
            result.add_row(name.rsplit("/", 1)[-1], beside, _sidecar_text(kind, summary))
    return result


def _sidecar_text(kind: str, summary: dict[str, Any]) -> str:
    if kind == "failures":
        classes = ", ".join(f"{name} {n}" for name, n in summary["classes"].items())
        return f"{summary['attempts']} failed attempts ({classes})"
    if kind == "reward_profiling":
        mean, full = summary["mean_reward"], summary["full_reward"]
        return (
            f"{summary['tasks']} tasks, {summary['rollouts']} rollouts; task mean reward "
            f"{_fmt(mean['min'])} / {_fmt(mean['mean'])} / {_fmt(mean['max'])}; full reward never "
            f"{full['never']}, sometimes {full['sometimes']}, always {full['always']}"
        )
    if "error" in summary:
        return f"unreadable: {summary['error']}"
    return "; ".join(
        f"{agent}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())
        for agent, metrics in summary["agents"].items()
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _files_table(data: dict[str, Any]) -> Table:
    columns = [
        "file",
        "lines",
        "rollouts",
        "quarantined",
        "tasks",
        "per task",
        "reward min/mean/max",
        "success",
        "tool use",
    ]
    result = table("Rollouts per file", columns)
    rows = [*data["files"].items(), ("TOTAL", data)]
    for name, f in rows:
        reward = f["reward"]
        rpt = f["rollouts_per_task"]
        result.add_row(
            name.rsplit("/", 1)[-1],
            str(f["lines"]),
            str(f["rollouts"]),
            str(sum(f["quarantined"].values())),
            str(f["tasks"]),
            f"{rpt['min']}-{rpt['max']}",
            f"{_fmt(reward['min'])} / {_fmt(reward['mean'])} / {_fmt(reward['max'])}",
            _fmt(f["success_rate"]),
            _fmt(f["tool_use_rate"]),
            end_section=name == rows[-2][0] if len(rows) > 1 else False,
        )
    return result


def _detail_table(title: str, counts: dict[str, int]) -> Table:
    result = table(title, ["name", "count"])
    for name, n in counts.items():
        result.add_row(name, str(n))
    if not counts:
        result.add_row("(none)", "0")
    return result


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    app.command("inspect")(inspect_command)
