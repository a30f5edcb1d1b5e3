"""The HTML report, and the headline figures as text that the terminal and the HTML share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollcraft.formats.kto import kto_summary
from rollcraft.validate._codes import CODES
from rollcraft.validate._turns import turns_line

if TYPE_CHECKING:
    from rollcraft.validate._report import ValidationReport


_HTML_FINDINGS = 2000


def _render_html(report: ValidationReport) -> str:
    from rollcraft import _svg

    name = Path(report.path).name
    body = [
        f"<h1>rollcraft validate: {_svg.esc(name)}</h1>",
        _html_summary(report),
        "<h2>Plots</h2>",
        f'<div class="charts">{"".join(_html_charts(report))}</div>',
        "<h2>Figures</h2>",
        _svg.table_html(["figure", "value"], _html_figures(report)),
        "<h2>Findings by code</h2>",
        _html_counts(report),
        f"<h2>Findings ({len(report.findings)} listed)</h2>",
        _html_findings(report),
        _html_excerpts(report),
    ]
    return _svg.html_page(f"rollcraft validate: {name}", "\n".join(body))


def _html_summary(report: ValidationReport) -> str:
    from rollcraft._svg import esc

    verdict = (
        f'<span class="error">{report.errors} error(s)</span>'
        if report.errors
        else '<span class="ok">no errors</span>'
    )
    unit = report.stats["length_unit"]
    return (
        f'<p class="meta">{esc(report.path)}</p><p>'
        f'<span class="pill">{esc(report.kind.upper())}</span>'
        f'<span class="pill">dialect {esc(report.dialect)}</span>'
        f'<span class="pill">{report.rows} rows</span><span class="pill">lengths in {esc(unit)}</span> '
        f'{verdict}, <span class="warning">{report.warnings} warning(s)</span></p>'
    )


def _html_charts(report: ValidationReport) -> list[str]:
    from rollcraft._svg import bar_svg, histogram_svg

    series, unit = report.series, report.stats["length_unit"]
    charts = []
    for key, title in (
        ("reward", "Reward"),
        ("chosen_reward", "Chosen reward"),
        ("rejected_reward", "Rejected reward"),
    ):
        values = series.get(key) or []
        if values or (key == "reward" and report.kind == "sft"):
            charts.append(
                histogram_svg(
                    values,
                    bins=20,
                    title=title,
                    x_label=key.replace("_", " "),
                    value_range=_reward_range(values),
                )
            )
    if report.kind == "dpo":
        charts.append(
            histogram_svg(
                series.get("margin") or [], bins=20, title="Margin (chosen - rejected)", x_label="margin"
            )
        )
    charts.append(
        histogram_svg(series.get("length") or [], bins=30, title=f"Row length ({unit})", x_label=unit)
    )
    charts.append(
        histogram_svg(series.get("messages") or [], bins=20, title="Messages per row", x_label="messages")
    )
    tasks = (report.stats.get("tasks") or {}).get("counts") or {}
    charts.append(bar_svg(list(tasks), list(tasks.values()), title="Rows per task type"))
    return charts


def _reward_range(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    return min(0.0, min(values)), max(1.0, max(values))


def _fmt_stat(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    return (
        f"mean {summary['mean']:.4g}, min {summary['min']:.4g}, p25 {summary['p25']:.4g}, "
        f"median {summary['p50']:.4g}, p75 {summary['p75']:.4g}, p95 {summary['p95']:.4g}, "
        f"max {summary['max']:.4g} "
        f"(n={summary['count']})"
    )


def stat_lines(report: ValidationReport) -> list[tuple[str, str]]:
    """The report's headline figures as (label, value) text pairs (terminal and HTML share them)."""
    st = report.stats
    lines = [("rows", str(report.rows)), ("rows checked", str(st["rows_checked"]))]
    for key in ("reward", "chosen_reward", "rejected_reward", "margin"):
        if key in st and (key != "reward" or st[key]):
            lines.append((key.replace("_", " "), _fmt_stat(st[key])))
    lines.append((f"length ({st['length_unit']})", _fmt_stat(st["length"])))
    for key in ("messages", "assistant_turns", "tool_calls"):
        lines.append((f"{key.replace('_', ' ')} per row", _fmt_stat(st["lengths"][key])))
    rate = st["tool_use_rate"]
    lines.append(("tool-use rate", "-" if rate is None else f"{rate:.1%} of rows call a tool"))
    tasks = st["tasks"]
    if tasks:
        lines.append(
            (
                "task types",
                f"{tasks['distinct']} distinct; largest {tasks['largest']!r} "
                f"holds {tasks['largest_share']:.1%}; "
                f"normalized entropy {tasks['normalized_entropy']:.3f}",
            )
        )
    lines.append(("duplicates", str(st["duplicates"])))
    if "labels" in st:
        lines.append(("KTO labels", kto_summary({"labels": _label_counts(st["labels"])})))
    if "turn_rows" in st:
        lines.append(("per-turn rows", f"{st['turn_rows']} rows with a turn index (sft --expand turns)"))
    if "earlier_turn_reasoning" in st:
        lines.append(("earlier-turn reasoning", turns_line(st["earlier_turn_reasoning"])))
    return lines


def _label_counts(labels: dict[str, Any]) -> dict[str, int]:
    return {"desirable": labels["desirable"], "undesirable": labels["undesirable"]}


def _html_figures(report: ValidationReport) -> list[tuple[str, str]]:
    return stat_lines(report)


def _html_counts(report: ValidationReport) -> str:
    from rollcraft._svg import esc, table_html

    if not report.counts:
        return '<p class="ok">No findings.</p>'
    rows = [
        (f'<span class="{CODES[c][0]}">{CODES[c][0]}</span>', esc(c), str(n), esc(CODES[c][1]))
        for c, n in sorted(report.counts.items(), key=lambda item: (CODES[item[0]][0] != "error", item[0]))
    ]
    return table_html(["severity", "code", "count", "meaning"], rows, raw_columns=frozenset({0, 1, 2, 3}))


def _html_findings(report: ValidationReport) -> str:
    from rollcraft._svg import esc, table_html

    if not report.findings:
        return '<p class="ok">Nothing to report.</p>'
    rows = []
    for f in report.findings[:_HTML_FINDINGS]:
        where = (
            "file"
            if f.row is None
            else (f'<a href="#row-{f.row}">{f.row}</a>' if f.row in report.excerpts else str(f.row))
        )
        rows.append((f'<span class="{f.severity}">{f.severity}</span>', where, esc(f.code), esc(f.message)))
    more = len(report.findings) - _HTML_FINDINGS
    tail = f"<p>… and {more} more in the JSON report.</p>" if more > 0 else ""
    return (
        table_html(["severity", "row", "code", "message"], rows, raw_columns=frozenset({0, 1, 2, 3})) + tail
    )


def _html_excerpts(report: ValidationReport) -> str:
    from rollcraft._svg import esc

    if not report.excerpts:
        return ""
    parts = ["<h2>Rows with findings</h2>"]
    for number in sorted(report.excerpts):
        codes = sorted({f.code for f in report.findings if f.row == number})
        parts.append(
            f'<h3 id="row-{number}">row {number} <small>{esc(", ".join(codes))}</small></h3>'
            f"<pre>{esc(report.excerpts[number])}</pre>"
        )
    return "".join(parts)
