"""The HTML report of ``evaluate``: tables, the paired binary outcomes and a plot per metric."""

from __future__ import annotations

from collections.abc import Sequence

from rollcraft.evaluate._binary import PairedBinary
from rollcraft.evaluate._compare import Comparison, MetricResult

__all__ = ["binary_summary", "render_html"]


def render_html(comparison: Comparison | Sequence[Comparison]) -> str:
    """A self-contained HTML report: the tables, and per metric a plot of both values with the CI.

    Several comparisons (candidates against one baseline) give one section each.
    """
    from rollcraft._svg import html_page

    if isinstance(comparison, Comparison):
        return html_page("rollcraft evaluate", _section(comparison))
    sections = []
    for i, one in enumerate(comparison, 1):
        path = one.inputs.get("candidate", {}).get("path", f"candidate {i}")
        sections.append(f"<h2>Candidate {i}: {_esc(str(path))}</h2>" + _section(one))
    return html_page("rollcraft evaluate", "".join(sections))


def _esc(text: str) -> str:
    from rollcraft._svg import esc

    return esc(text)


def _section(comparison: Comparison) -> str:
    from rollcraft._svg import esc, histogram_svg, table_html

    parts = [
        f"<p>{comparison.paired_tasks} paired tasks; only in baseline: {len(comparison.only_in_baseline)}, "
        f"only in candidate: {len(comparison.only_in_candidate)}.</p>"
    ]
    headers = ["group", "metric", "baseline", "candidate", "difference", "95% CI", "p", "verdict", "tasks"]
    adjusted = _adjusted(comparison)
    if adjusted:
        headers.insert(7, "p (Holm)")
    parts.append(table_html(headers, _rows(comparison)))
    if comparison.paired_binary is not None:
        parts.append(_binary_html(comparison.paired_binary))
    for metric, result in comparison.overall.items():
        parts.append(_pair_svg(metric, result))
        diffs = comparison.task_differences.get(metric, [])
        parts.append(
            histogram_svg(
                diffs, bins=21, title=f"Per-task difference: {metric}", x_label="candidate - baseline"
            )
        )
    unpaired = comparison.only_in_baseline + comparison.only_in_candidate
    if unpaired:
        parts.append("<h2>Unpaired tasks</h2><pre>" + esc("\n".join(unpaired[:200])) + "</pre>")
    return "".join(parts)


def _adjusted(comparison: Comparison) -> bool:
    return any(r.p_adjusted is not None for r in comparison.overall.values())


def _binary_html(binary: PairedBinary) -> str:
    from rollcraft._svg import esc

    lines = [f"{f.direction}  {f.task}" for f in binary.flips[:200]]
    return f"<h2>Paired binary outcomes</h2><p>{esc(binary_summary(binary))}</p>" + (
        "<pre>" + esc("\n".join(lines)) + "</pre>" if lines else ""
    )


def binary_summary(binary: PairedBinary) -> str:
    """One line: the tasks, the flips each way, ties and McNemar's p (and its Holm p)."""
    adjusted = "" if binary.mcnemar_p_adjusted is None else f" (Holm {binary.mcnemar_p_adjusted:.3g})"
    return (
        f"{binary.tasks} tasks both runs attempted: fail->pass {binary.fail_to_pass}, "
        f"pass->fail {binary.pass_to_fail}, both pass {binary.both_pass}, both fail {binary.both_fail}, "
        f"tied {binary.tied}; McNemar exact p = {binary.mcnemar_p:.3g}{adjusted}"
    )


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _rows(comparison: Comparison) -> list[list[str]]:
    groups = [("overall", comparison.overall), *comparison.by_task_type.items()]
    rows = []
    for group, metrics in groups:
        for metric, r in metrics.items():
            name = f"pass@{r.k}" if r.k is not None else metric
            ci = f"[{r.ci95[0]:+.3f}, {r.ci95[1]:+.3f}]"
            rows.append(
                [
                    group,
                    name,
                    _fmt(r.baseline),
                    _fmt(r.candidate),
                    f"{r.difference:+.3f}",
                    ci,
                    f"{r.p_value:.3g}",
                    *([] if r.p_adjusted is None else [f"{r.p_adjusted:.3g}"]),
                    r.verdict,
                    str(r.n_tasks),
                ]
            )
    return rows


def _pair_svg(metric: str, result: MetricResult) -> str:
    """Two bars (baseline, candidate) on a 0..max scale, with the candidate's CI as a whisker."""
    from rollcraft._svg import esc

    width, height, left, bar_h = 560, 110, 110, 26
    top = max(result.baseline, result.candidate, result.baseline + result.ci95[1], 1e-9)
    scale = (width - left - 70) / top
    lo = max(result.baseline + result.ci95[0], 0.0) * scale + left
    hi = (result.baseline + result.ci95[1]) * scale + left
    bars = []
    for i, (label, value, color) in enumerate(
        (("baseline", result.baseline, "#9aa5b1"), ("candidate", result.candidate, "#4a78b5"))
    ):
        y = 30 + i * (bar_h + 8)
        bars.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{label}</text>'
            f'<rect x="{left}" y="{y}" width="{value * scale:.1f}" height="{bar_h}" fill="{color}"/>'
            f'<text x="{left + value * scale + 6:.1f}" y="{y + 17}">{value:.3f}</text>'
        )
    whisker_y = 30 + bar_h + 8 + bar_h / 2
    whisker = (
        f'<line x1="{lo:.1f}" y1="{whisker_y:.1f}" x2="{hi:.1f}" y2="{whisker_y:.1f}" '
        f'stroke="#222" stroke-width="2"><title>95% CI: baseline + CI of the difference</title></line>'
    )
    title = f"{metric}: {result.verdict} (difference {result.difference:+.3f}, p={result.p_value:.3g})"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="title">{esc(title)}</text>'
        + "".join(bars)
        + whisker
        + "</svg>"
    )
