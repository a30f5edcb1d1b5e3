"""Tiny, dependency-free SVG charts and a self-contained HTML page for rollcraft's reports.

Every function returns a string; every piece of caller text is escaped. The page has a strict
Content-Security-Policy (no scripts, no network: styles and images inline only), so a report
opens offline and cannot fetch anything.

The whole API::

    histogram_svg(values, *, bins=20, title, x_label, value_range=None) -> str   # inline <svg>
    bar_svg(labels, values, *, title, max_bars=20) -> str                       # inline <svg>
    table_html(headers, rows) -> str                                             # escaped <table>
    html_page(title, body_html) -> str                                           # full document
    esc(text) -> str                                                             # HTML-escape

>>> "<svg" in histogram_svg([0.1, 0.5, 0.9], bins=4, title="Reward", x_label="reward")
True
>>> html_page("R", "<p>hi</p>").startswith("<!DOCTYPE html>")
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

__all__ = ["bar_svg", "esc", "histogram_svg", "html_page", "table_html"]

_W, _H = 560, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 16, 34, 46
_BAR = "#4a78b5"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def esc(text: object) -> str:
    """HTML-escape ``text`` (quotes included), so it is safe in element content and attributes."""
    return html.escape(str(text), quote=True)


def _fmt(x: float) -> str:
    """A short label for a number: ``3``, ``0.25``, ``1.2e+04``."""
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" class="title">{esc(title)}</text>'
    )


def _empty_svg(title: str) -> str:
    return (
        _svg_open(_W, 80, title)
        + f'<text x="{_W / 2:.0f}" y="55" text-anchor="middle" class="note">no data</text></svg>'
    )


def _bin_counts(values: Sequence[float], bins: int, lo: float, hi: float) -> list[int]:
    counts = [0] * bins
    width = (hi - lo) / bins
    for v in values:
        if lo <= v <= hi:
            counts[min(int((v - lo) / width), bins - 1)] += 1
    return counts


def _range_of(values: Sequence[float], value_range: tuple[float, float] | None) -> tuple[float, float]:
    lo, hi = value_range if value_range is not None else (min(values), max(values))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def histogram_svg(
    values: Iterable[float],
    *,
    bins: int = 20,
    title: str,
    x_label: str,
    value_range: tuple[float, float] | None = None,
) -> str:
    """An inline ``<svg>`` histogram of ``values`` (NaN and infinities left out).

    ``value_range`` fixes the x axis (values outside it are not counted); by default it spans
    the data. An empty input gives a small "no data" panel.
    """
    data = [float(v) for v in values if math.isfinite(v)]
    if not data:
        return _empty_svg(title)
    lo, hi = _range_of(data, value_range)
    counts = _bin_counts(data, max(1, bins), lo, hi)
    return _svg_open(_W, _H, title) + _hist_body(counts, lo, hi, x_label) + "</svg>"


def _hist_body(counts: list[int], lo: float, hi: float, x_label: str) -> str:
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    top = max(counts) or 1
    step = plot_w / len(counts)
    parts = [_axes(plot_w, plot_h, top)]
    for i, n in enumerate(counts):
        h = plot_h * n / top
        x0 = lo + (hi - lo) * i / len(counts)
        x1 = lo + (hi - lo) * (i + 1) / len(counts)
        parts.append(
            f'<rect class="bar" x="{_LEFT + i * step + 0.5:.1f}" y="{_TOP + plot_h - h:.1f}" '
            f'width="{max(step - 1, 0.5):.1f}" height="{h:.1f}" fill="{_BAR}">'
            f"<title>{esc(_fmt(x0))} to {esc(_fmt(x1))}: {n}</title></rect>"
        )
    base = _TOP + plot_h + 16
    for tick in _nice_ticks(lo, hi):
        x = _LEFT + plot_w * (tick - lo) / (hi - lo)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP + plot_h}" x2="{x:.1f}" y2="{_TOP + plot_h + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{base}" text-anchor="middle">{esc(_fmt(tick))}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_H - 8}" text-anchor="middle">{esc(x_label)}</text>'
    )
    return "".join(parts)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (multiples of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    raw = (hi - lo) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = [round((first + i) * step, 12) for i in range(target + 2)]
    return [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]


def _axes(plot_w: float, plot_h: float, top: int) -> str:
    y_axis = f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" class="axis"/>'
    x_axis = (
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" class="axis"/>'
    )
    labels = (
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{top}</text>'
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h + 4}" text-anchor="end">0</text>'
        f'<text x="14" y="{_TOP + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2:.0f})">count</text>'
    )
    return y_axis + x_axis + labels


def _clip(label: str, width: int = 30) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def bar_svg(labels: Sequence[str], values: Sequence[float], *, title: str, max_bars: int = 20) -> str:
    """An inline ``<svg>`` of horizontal bars, largest first; bars past ``max_bars`` are summed as "other"."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda p: -p[1])
    if len(pairs) > max_bars:
        pairs = [
            *pairs[: max_bars - 1],
            (f"other ({len(pairs) - max_bars + 1})", sum(v for _, v in pairs[max_bars - 1 :])),
        ]
    if not pairs:
        return _empty_svg(title)
    row_h, label_w = 22, 215
    height = _TOP + row_h * len(pairs) + 12
    top = max(v for _, v in pairs) or 1
    plot_w = _W - label_w - 70
    parts = [_svg_open(_W, height, title)]
    for i, (label, value) in enumerate(pairs):
        y = _TOP + i * row_h
        w = plot_w * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{esc(_clip(label))}'
            f"<title>{esc(label)}</title></text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" '
            f'height="{row_h - 6}" fill="{_BAR}">'
            f"<title>{esc(label)}: {esc(_fmt(value))}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{esc(_fmt(value))}</text>'
        )
    return "".join(parts) + "</svg>"


def table_html(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw_columns: frozenset[int] = frozenset()
) -> str:
    """An HTML ``<table>``; every cell is escaped except those in ``raw_columns`` (caller-built HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if i in raw_columns else esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;
 padding:0 16px;color:#1d232b;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde3ea}
.meta{color:#5b6570}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #dde3ea;border-radius:6px;background:#fbfcfd;font-size:11px;fill:#33404d}
svg.chart .title{font-size:13px;font-weight:600}svg.chart .note{fill:#8a96a3}
svg.chart .axis{stroke:#9aa6b2;stroke-width:1}svg.chart rect.bar:hover{fill:#e08a2c}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e6eaef;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.num,th.num{text-align:right}
.error{color:#b3261e;font-weight:600}.warning{color:#9a6700;font-weight:600}.ok{color:#1a7f37;font-weight:600}
pre{background:#f6f8fa;border:1px solid #e6eaef;padding:8px;overflow-x:auto;white-space:pre-wrap;
 word-break:break-all;font-size:12px;max-height:320px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;background:#eef2f6;margin-right:6px}
:target{background:#fff6d6}
"""


def html_page(title: str, body_html: str) -> str:
    """A complete offline HTML document: ``title`` is escaped, ``body_html`` is inserted as is.

    The Content-Security-Policy forbids scripts and every network fetch.
    """
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body_html}</body></html>\n"
    )
