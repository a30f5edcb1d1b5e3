"""The tiny SVG/HTML helpers: counts land in the right bins, text is escaped, pages stay offline."""

from __future__ import annotations

import re

from rollcraft._svg import bar_svg, esc, histogram_svg, html_page, table_html


def _bar_titles(svg: str) -> list[str]:
    return re.findall(r'<rect class="bar"[^>]*><title>([^<]*)</title>', svg)


def test_histogram_counts_every_value_once() -> None:
    svg = histogram_svg(
        [0.0, 0.1, 0.5, 0.9, 1.0], bins=2, title="Reward", x_label="reward", value_range=(0, 1)
    )
    assert _bar_titles(svg) == ["0 to 0.5: 2", "0.5 to 1: 3"]
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "Reward" in svg


def test_histogram_of_one_value_and_of_nothing() -> None:
    assert (
        sum(int(t.rsplit(": ", 1)[1]) for t in _bar_titles(histogram_svg([3, 3, 3], title="t", x_label="x")))
        == 3
    )
    empty = histogram_svg([], title="Nothing", x_label="x")
    assert "no data" in empty and "<rect" not in empty
    assert "no data" in histogram_svg([float("nan")], title="t", x_label="x")


def test_text_is_escaped() -> None:
    svg = histogram_svg([1, 2], title="<b>&", x_label='"x"')
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg and "&quot;x&quot;" in svg
    assert "<i>" not in bar_svg(["<i>"], [1], title="t")
    assert (
        table_html(["h"], [["<td>"]])
        == "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>&lt;td&gt;</td></tr></tbody></table>"
    )
    assert esc("'") == "&#x27;"


def test_bars_sorted_and_overflow_summed() -> None:
    labels = [f"t{i}" for i in range(30)]
    svg = bar_svg(labels, list(range(30)), title="Tasks", max_bars=5)
    titles = _bar_titles(svg)
    assert titles[0] == "t29: 29" and len(titles) == 5
    assert titles[-1] == f"other (26): {sum(range(26))}"
    assert "no data" in bar_svg([], [], title="t")


def test_long_labels_are_clipped_with_full_title() -> None:
    label = "a-very-long-task-type-name-that-goes-on-and-on"
    svg = bar_svg([label], [1], title="t")
    assert f"<title>{label}</title>" in svg and "…" in svg


def test_page_is_offline_and_strict() -> None:
    page = html_page("A <title>", "<p>body</p>")
    assert page.startswith("<!DOCTYPE html>") and "<p>body</p>" in page
    assert "<title>A &lt;title&gt;</title>" in page
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None and "default-src 'none'" in csp.group(1) and "script" not in csp.group(1)
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
