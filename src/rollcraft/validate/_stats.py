"""Statistics over the file: summaries, task mix, duplicates, and the file-level shape warnings."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rollcraft.formats.kto import kto_weights
from rollcraft.validate._codes import _Findings
from rollcraft.validate._row import _Facts

_LONG_FACTOR = 20.0
_LONG_ABSOLUTE = {"chars": 100_000, "tokens": 32_768}
_DOMINANT_SHARE = 0.8
_MIN_ROWS_FOR_SHAPE = 5


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: Sequence[float], *, bins: int = 20) -> dict[str, Any] | None:
    """Count, mean, min, max, quantiles (p5..p95) and a histogram of ``values``; ``None`` when empty.

    >>> summarize([1, 2, 3, 4])["p50"]
    2.5
    """
    if not values:
        return None
    data = sorted(float(v) for v in values)
    lo, hi = data[0], data[-1]
    width = (hi - lo) / bins if hi > lo else 1.0
    counts = [0] * bins
    for v in data:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    quantiles = {f"p{int(q * 100)}": round(_quantile(data, q), 6) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    return {
        "count": len(data),
        "mean": round(sum(data) / len(data), 6),
        "min": lo,
        "max": hi,
        **quantiles,
        "histogram": {"edges": [round(lo + width * i, 6) for i in range(bins + 1)], "counts": counts},
    }


@dataclass(slots=True)
class _Stats:
    rows: int = 0
    checked: int = 0
    n_messages: list[float] = field(default_factory=list)
    n_assistant: list[float] = field(default_factory=list)
    n_tool_calls: list[float] = field(default_factory=list)
    chars: list[tuple[int, float]] = field(default_factory=list)
    tokens: list[tuple[int, float]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    chosen_rewards: list[float] = field(default_factory=list)
    rejected_rewards: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    tasks: Counter[str] = field(default_factory=Counter)
    tool_rows: int = 0
    labels: Counter[bool] = field(default_factory=Counter)
    turn_rows: int = 0
    duplicates: int = 0
    seen: dict[bytes, int] = field(default_factory=dict)

    def add(self, number: int, facts: _Facts) -> None:
        self.checked += 1
        self.n_messages.append(facts.n_messages)
        self.n_assistant.append(facts.n_assistant)
        self.n_tool_calls.append(facts.n_tool_calls)
        self.chars.append((number, facts.chars))
        self.tool_rows += facts.n_tool_calls > 0
        for values, value in (
            (self.rewards, facts.reward),
            (self.chosen_rewards, facts.chosen_reward),
            (self.rejected_rewards, facts.rejected_reward),
            (self.margins, facts.margin),
        ):
            if value is not None:
                values.append(value)
        if facts.task is not None:
            self.tasks[facts.task] += 1
        if facts.label is not None:
            self.labels[facts.label] += 1
        self.turn_rows += facts.turn is not None

    def duplicate_of(self, number: int, fingerprint: bytes | None) -> int | None:
        if fingerprint is None:
            return None
        digest = hashlib.blake2b(fingerprint, digest_size=16).digest()
        first = self.seen.setdefault(digest, number)
        if first != number:
            self.duplicates += 1
            return first
        return None


def _task_stats(tasks: Counter[str], total: int) -> dict[str, Any] | None:
    if not tasks:
        return None
    n = sum(tasks.values())
    largest, top = tasks.most_common(1)[0]
    entropy = -sum(c / n * math.log(c / n) for c in tasks.values())
    return {
        "counts": dict(tasks.most_common()),
        "distinct": len(tasks),
        "rows_with_task": n,
        "rows_without_task": total - n,
        "largest": largest,
        "largest_share": round(top / n, 6),
        "normalized_entropy": round(entropy / math.log(len(tasks)), 6) if len(tasks) > 1 else 0.0,
    }


def _stats_dict(stats: _Stats, kind: str, unit: str) -> dict[str, Any]:
    lengths = stats.tokens if unit == "tokens" else stats.chars
    out: dict[str, Any] = {
        "rows": stats.rows,
        "rows_checked": stats.checked,
        "length_unit": unit,
        "lengths": {
            "messages": summarize(stats.n_messages),
            "assistant_turns": summarize(stats.n_assistant),
            "tool_calls": summarize(stats.n_tool_calls),
            "chars": summarize([v for _, v in stats.chars]),
            "tokens": summarize([v for _, v in stats.tokens]) if unit == "tokens" else None,
        },
        "length": summarize([v for _, v in lengths]),
        "reward": summarize(stats.rewards),
        "tasks": _task_stats(stats.tasks, stats.checked),
        "tool_use_rate": round(stats.tool_rows / stats.checked, 6) if stats.checked else None,
        "duplicates": stats.duplicates,
    }
    if kind == "kto":
        out["labels"] = kto_weights(stats.labels[True], stats.labels[False])
    if stats.turn_rows:
        out["turn_rows"] = stats.turn_rows
    if kind == "dpo":
        out["chosen_reward"] = summarize(stats.chosen_rewards)
        out["rejected_reward"] = summarize(stats.rejected_rewards)
        out["margin"] = summarize(stats.margins)
    return out


def _shape_findings(stats: _Stats, unit: str, sink: _Findings) -> None:
    """File-level warnings: extreme lengths, a dominant task type, a KTO file of one label."""
    if len(stats.labels) == 1:
        only = "desirable" if True in stats.labels else "undesirable"
        sink.add("single_label", f"every labelled row is {only}: KTO learns from both labels", None)
    lengths = stats.tokens if unit == "tokens" else stats.chars
    values = sorted(v for _, v in lengths)
    if values:
        median = _quantile(values, 0.5)
        enough = len(values) >= _MIN_ROWS_FOR_SHAPE
        for number, v in lengths:
            if v > _LONG_ABSOLUTE[unit] or (enough and v > _LONG_FACTOR * median):
                sink.add("extreme_length", f"{v:g} {unit}, the file's median is {median:g}", number)
            elif enough and v < median / _LONG_FACTOR:
                sink.add("extreme_length", f"only {v:g} {unit}, the file's median is {median:g}", number)
    n = sum(stats.tasks.values())
    if len(stats.tasks) >= 2 and n >= _MIN_ROWS_FOR_SHAPE:
        name, top = stats.tasks.most_common(1)[0]
        if top / n >= _DOMINANT_SHARE:
            sink.add(
                "dominant_task_type", f"task type {name!r} holds {top} of {n} rows ({top / n:.0%})", None
            )


def _series(stats: _Stats, unit: str) -> dict[str, list[float]]:
    """The raw per-row values behind the HTML plots."""
    lengths = stats.tokens if unit == "tokens" else stats.chars
    return {
        "reward": stats.rewards,
        "chosen_reward": stats.chosen_rewards,
        "rejected_reward": stats.rejected_rewards,
        "margin": stats.margins,
        "length": [v for _, v in lengths],
        "messages": stats.n_messages,
        "tool_calls": stats.n_tool_calls,
    }
