"""Pre-training validation of SFT/DPO JSONL files: findings with stable codes, and statistics.

:func:`validate_file` streams a file written in one of the trainer dialects (``trl``,
``openai``, ``nemo-rl``; SFT or DPO, detected from the rows unless given), checks every row, and
returns a :class:`ValidationReport` (``to_json()``, ``to_dict()``, ``to_html()``).

>>> report = validate_file("train.jsonl")                          # doctest: +SKIP
>>> report.errors, [f.code for f in report.findings][:3]           # doctest: +SKIP
(0, [])

Finding codes are stable strings (other tools read them); :data:`CODES` maps each to its severity
and meaning. ``row`` is the 1-based line number in the file, or ``None`` for a finding about the
whole file. Decisions worth knowing:

- ``developer`` is accepted as a role: silently in the ``openai`` dialect (the OpenAI API knows
  it), with the ``developer_role`` warning elsewhere (most Hugging Face chat templates do not).
- A tool call is *unanswered* when the conversation moves on (a user or assistant message comes)
  before its result. Calls in the very last message are the model's next action: fine in a DPO
  completion, the ``final_tool_call`` warning at the end of an SFT conversation.
- *Identical* chosen/rejected compares the two with tool-call ids set aside and ``arguments``
  parsed, so a re-run of the same trajectory counts as identical.
- Tool-call ``arguments`` may be a JSON string or an object in ``trl`` and ``nemo-rl`` (a string
  must hold a JSON object); ``openai`` needs the string. ``trl`` ``tools`` may be a JSON string.
- The ``datasets`` round trip (``roundtrip_changed``) runs for the dialects that trainers load with
  ``datasets`` (``trl``, ``nemo-rl``). A ``null`` added to a message, tool call or row is tolerated
  (templates read it as absent); any other change (a key added inside ``arguments`` or a tool's
  ``parameters``, a changed value) is an error; numbers equal within 1e-12 (relative) count as equal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from rollcraft._errors import ConfigError, InputError
from rollcraft._tokenizer import load_tokenizer
from rollcraft.formats._dialects import DIALECTS

__all__ = [
    "CODES",
    "DIALECTS",
    "KINDS",
    "Finding",
    "ValidationReport",
    "validate_file",
]

Severity = Literal["error", "warning"]
Kind = Literal["sft", "dpo"]
KINDS: tuple[str, ...] = ("sft", "dpo")

#: Every finding code: its severity and what it means. Codes never change meaning.
CODES: dict[str, tuple[Severity, str]] = {
    "empty_file": ("error", "the file has no rows"),
    "not_json": ("error", "the line is not valid JSON"),
    "not_object": ("error", "the line is JSON but not an object"),
    "missing_key": ("error", "a required key is missing"),
    "wrong_type": ("error", "a value has the wrong type"),
    "empty_messages": ("error", "an SFT conversation has no messages"),
    "unknown_role": ("error", "a message role outside system/user/assistant/tool (and developer)"),
    "invalid_tool": ("error", "a tool definition is not {type: function, function: {name, ...}}"),
    "invalid_arguments": ("error", "tool-call arguments are not a JSON object (or not valid JSON)"),
    "duplicate_tool_call_id": ("error", "two tool calls of one conversation share an id"),
    "orphan_tool_result": ("error", "a tool message answers no earlier, still open tool call"),
    "unanswered_tool_call": (
        "error",
        "a tool call whose result never comes before the conversation moves on",
    ),
    "last_not_assistant": (
        "error",
        "the conversation (SFT) or completion (DPO) does not end with the assistant",
    ),
    "empty_completion": ("error", "chosen or rejected is empty"),
    "identical_pair": ("error", "chosen and rejected are identical (tool-call ids set aside)"),
    "non_positive_margin": ("error", "the pair's margin (quality_difference or reward gap) is <= 0"),
    "multi_message_completion": ("error", "a completion of several messages where the dialect trains one"),
    "bad_completions": ("error", "nemo-rl completions are not exactly two with ranks 0 and 1"),
    "roundtrip_changed": ("error", "datasets.load_dataset('json') changes the row"),
    "roundtrip_failed": ("error", "datasets.load_dataset('json') cannot load the file"),
    "template_error": ("error", "the chat template fails to render the row"),
    "answer_truncated": ("error", "the final assistant turn would be cut by truncation at max_seq_len"),
    "roundtrip_unavailable": ("warning", "the datasets round trip was skipped: datasets is not installed"),
    "blank_line": ("warning", "an empty line"),
    "empty_prompt": ("warning", "a DPO pair has an empty prompt: it trains answers without their question"),
    "developer_role": ("warning", "a developer message: most chat templates do not know the role"),
    "unexpected_key": ("warning", "a key the dialect does not define (the OpenAI API may reject it)"),
    "unknown_tool": ("warning", "a tool call names a tool the row does not declare"),
    "final_tool_call": ("warning", "an SFT conversation ends in a tool call that is never answered"),
    "near_empty_answer": ("warning", "an assistant answer without tool calls has no letters or digits"),
    "duplicate_row": ("warning", "the row repeats an earlier row (tool-call ids set aside)"),
    "extreme_length": ("warning", "the row is far longer or shorter than the file's median"),
    "dominant_task_type": ("warning", "one task type holds most of the data"),
    "reward_out_of_range": ("warning", "a reward outside [0, 1]"),
}

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_OPENAI_SFT_KEYS = frozenset({"messages", "tools", "parallel_tool_calls"})
_OPENAI_DPO_KEYS = frozenset({"input", "preferred_output", "non_preferred_output"})
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_LONG_FACTOR = 20.0
_LONG_ABSOLUTE = {"chars": 100_000, "tokens": 32_768}
_DOMINANT_SHARE = 0.8
_MIN_ROWS_FOR_SHAPE = 5
_EXCERPT_CHARS = 1500
_MAX_EXCERPTS = 300


@dataclass(frozen=True, slots=True)
class Finding:
    """One validation result: a stable ``code``, its ``severity``, a ``message`` and the 1-based ``row``.

    >>> Finding("not_json", "error", "line 3 is not JSON", 3).to_dict()["severity"]
    'error'
    """

    code: str
    severity: Severity
    message: str
    row: int | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"code", "severity", "row", "message"}``."""
        return {"code": self.code, "severity": self.severity, "row": self.row, "message": self.message}


@dataclass(slots=True)
class ValidationReport:
    """What :func:`validate_file` found: findings (capped per code; ``counts`` has full counts), stats."""

    path: str
    kind: str
    dialect: str
    rows: int
    findings: list[Finding]
    counts: dict[str, int]
    stats: dict[str, Any]
    excerpts: dict[int, str] = field(default_factory=dict, repr=False)
    series: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> int:
        """How many error findings (including any left out of ``findings`` by the cap)."""
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "error")

    @property
    def warnings(self) -> int:
        """How many warning findings (including any left out of ``findings`` by the cap)."""
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "warning")

    @property
    def ok(self) -> bool:
        """True when there is no error: the file may go to training."""
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        """Every figure and finding, in the stable JSON layout."""
        return {
            "path": self.path,
            "kind": self.kind,
            "dialect": self.dialect,
            "rows": self.rows,
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": dict(sorted(self.counts.items())),
            "findings_omitted": sum(self.counts.values()) - len(self.findings),
            "findings": [f.to_dict() for f in self.findings],
            "stats": self.stats,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page: summary, plots, findings linked to row excerpts."""
        return _render_html(self)


# ---------------------------------------------------------------------------------------------
# Collecting findings


class _Findings:
    """Findings of a whole file: deduplicated per row, capped per code, counted in full."""

    def __init__(self, max_per_code: int) -> None:
        self.items: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.max_per_code = max_per_code
        self._seen: set[tuple[str, str, int | None]] = set()

    def add(self, code: str, message: str, row: int | None) -> None:
        key = (code, message, row)
        if key in self._seen:
            return
        self._seen.add(key)
        self.counts[code] += 1
        if self.counts[code] <= self.max_per_code:
            self.items.append(Finding(code, CODES[code][0], message, row))

    def rows_with_findings(self) -> set[int]:
        return {f.row for f in self.items if f.row is not None}


@dataclass(slots=True)
class _Row:
    """The row being checked: its number, dialect, and where its findings go."""

    number: int
    kind: str
    dialect: str
    sink: _Findings

    def add(self, code: str, message: str) -> None:
        self.sink.add(code, message, self.number)


@dataclass(slots=True)
class _Facts:
    """What a checked row contributes to the statistics and the tokenizer checks."""

    n_messages: int = 0
    n_assistant: int = 0
    n_tool_calls: int = 0
    chars: int = 0
    reward: float | None = None
    chosen_reward: float | None = None
    rejected_reward: float | None = None
    margin: float | None = None
    task: str | None = None
    fingerprint: bytes | None = None
    renders: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Helpers on JSON values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _canonical(messages: Any) -> bytes:
    """Messages with tool-call ids set aside and arguments parsed, as sorted-key JSON bytes."""
    return orjson.dumps(_strip_ids(messages), option=orjson.OPT_SORT_KEYS)


def _strip_ids(value: Any, parent: str = "") -> Any:
    if isinstance(value, list):
        return [_strip_ids(v, parent) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "tool_call_id" or (key == "id" and parent == "tool_calls"):
            continue
        if key == "arguments" and isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = orjson.loads(v)
        out[key] = _strip_ids(v, key)
    return out


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


# ---------------------------------------------------------------------------------------------
# Detection


def _guess(row: dict[str, Any]) -> tuple[str, str, int] | None:
    """(kind, dialect, weight) that one row's keys point to: weight 2 for a clear sign, 1 for a default."""
    if "chosen" in row and "rejected" in row:
        return "dpo", "trl", 2
    if "preferred_output" in row or "non_preferred_output" in row:
        return "dpo", "openai", 2
    if "completions" in row and "context" in row:
        return "dpo", "nemo-rl", 2
    if "messages" not in row:
        return None
    if isinstance(row.get("tools"), str) or {"reward", "task_type", "rollout_id"} & row.keys():
        return "sft", "trl", 2
    if "task_name" in row:
        return "sft", "nemo-rl", 2
    arguments = _argument_types(row.get("messages"))
    if dict in arguments:
        return "sft", "nemo-rl", 2
    return "sft", "openai", 2 if str in arguments else 1


def _argument_types(messages: Any) -> set[type]:
    found: set[type] = set()
    for m in messages if isinstance(messages, list) else []:
        for call in (m.get("tool_calls") or []) if isinstance(m, dict) else []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                found.add(type(fn.get("arguments")))
    return found


_SPECIFICITY = {"trl": 2, "nemo-rl": 1, "openai": 0}


def _detect(path: str, kind: str | None, dialect: str) -> tuple[str, str]:
    """Look at up to 200 rows and settle (kind, dialect) by weighted vote (ties: the more specific)."""
    votes: Counter[tuple[str, str]] = Counter()
    for _, data in _lines(path, limit=200):
        with contextlib.suppress(ValueError):
            row = orjson.loads(data)
            guess = _guess(row) if isinstance(row, dict) else None
            if guess is not None:
                votes[guess[:2]] += guess[2]
    if kind is None:
        if not votes and dialect != "auto":
            raise ConfigError("cannot tell SFT from DPO from the rows; pass --kind", key="kind")
        kinds: Counter[str] = Counter()
        for (k, _), n in votes.items():
            kinds[k] += n
        kind = kinds.most_common(1)[0][0] if kinds else "sft"
    if dialect == "auto":
        seen = [(n, _SPECIFICITY[d], d) for (k, d), n in votes.items() if k == kind]
        dialect = max(seen)[2] if seen else "trl"
    return kind, dialect


def _lines(path: str, *, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line ending) for each line of ``path``."""
    from rollcraft._io import open_input

    with open_input(path) as stream:
        for number, raw in enumerate(stream, 1):
            if limit is not None and number > limit:
                return
            yield number, raw.rstrip(b"\r\n")


# ---------------------------------------------------------------------------------------------
# Message checks (all dialects)


def _check_role(msg: dict[str, Any], where: str, row: _Row) -> str | None:
    role = msg.get("role")
    if role is None:
        row.add("missing_key", f"{where}: no 'role'")
        return None
    if not isinstance(role, str):
        row.add("wrong_type", f"{where}.role is {_type_name(role)}, not string")
        return None
    if role == "developer":
        if row.dialect != "openai":
            row.add("developer_role", f"{where}: role 'developer' (most chat templates know only 'system')")
        return "system"
    if role not in _ROLES:
        row.add("unknown_role", f"{where}: unknown role {role!r}")
        return None
    return role


def _check_content(msg: dict[str, Any], role: str, where: str, row: _Row) -> None:
    if "content" not in msg:
        if not (role == "assistant" and msg.get("tool_calls")):
            row.add("missing_key", f"{where}: no 'content'")
        return
    content = msg["content"]
    if isinstance(content, str) or (content is None and role == "assistant"):
        return
    if isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content):
        return
    row.add("wrong_type", f"{where}.content is {_type_name(content)}, not string")


def _check_optional_strings(msg: dict[str, Any], where: str, row: _Row) -> None:
    for key in ("reasoning_content", "name"):
        value = msg.get(key)
        if value is not None and not isinstance(value, str):
            row.add("wrong_type", f"{where}.{key} is {_type_name(value)}, not string")
    if row.dialect == "openai" and "weight" in msg:
        weight = msg["weight"]
        if msg.get("role") != "assistant" or weight not in (0, 1) or isinstance(weight, bool):
            row.add("wrong_type", f"{where}.weight must be 0 or 1 on an assistant message, not {weight!r}")


def _check_arguments(args: Any, where: str, row: _Row) -> None:
    if isinstance(args, dict):
        if row.dialect == "openai":
            row.add("wrong_type", f"{where}.arguments is an object; the openai dialect needs a JSON string")
        return
    if not isinstance(args, str):
        row.add("wrong_type", f"{where}.arguments is {_type_name(args)}")
        return
    try:
        parsed = orjson.loads(args)
    except ValueError:
        row.add("invalid_arguments", f"{where}.arguments is not valid JSON: {args[:60]!r}")
        return
    if not isinstance(parsed, dict):
        row.add("invalid_arguments", f"{where}.arguments is JSON {_type_name(parsed)}, not an object")


def _check_call(call: Any, where: str, row: _Row) -> tuple[str | None, str | None]:
    """Check one tool call; returns its (id, function name) where readable."""
    if not isinstance(call, dict):
        row.add("wrong_type", f"{where} is {_type_name(call)}, not object")
        return None, None
    call_id, fn = call.get("id"), call.get("function")
    if call_id is None:
        row.add("missing_key", f"{where}: no 'id'")
    elif not isinstance(call_id, str):
        row.add("wrong_type", f"{where}.id is {_type_name(call_id)}, not string")
        call_id = None
    if "type" in call and call["type"] != "function":
        row.add("wrong_type", f"{where}.type is {call['type']!r}, not 'function'")
    elif "type" not in call and row.dialect == "openai":
        row.add("missing_key", f"{where}: no 'type'")
    if not isinstance(fn, dict):
        row.add(
            "missing_key" if fn is None else "wrong_type", f"{where}: 'function' missing or not an object"
        )
        return call_id, None
    name = fn.get("name")
    if not isinstance(name, str):
        row.add(
            "missing_key" if name is None else "wrong_type", f"{where}.function.name missing or not a string"
        )
        name = None
    if "arguments" not in fn:
        row.add("missing_key", f"{where}.function: no 'arguments'")
    else:
        _check_arguments(fn["arguments"], f"{where}.function", row)
    return call_id, name


def _calls_of(msg: dict[str, Any], role: str, where: str, row: _Row) -> list[tuple[str | None, str | None]]:
    calls = msg.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        row.add("wrong_type", f"{where}.tool_calls is {_type_name(calls)}, not array")
        return []
    if calls and role != "assistant":
        row.add("wrong_type", f"{where}: a {role} message with tool_calls")
        return []
    return [_check_call(c, f"{where}.tool_calls[{i}]", row) for i, c in enumerate(calls)]


@dataclass(slots=True)
class _Flow:
    """Walks a conversation, pairing tool calls with their results."""

    row: _Row
    tool_names: frozenset[str] | None
    open_calls: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    seen_ids: set[str] = field(default_factory=set)

    def calls(self, calls: list[tuple[str | None, str | None]], where: str) -> None:
        self.close(where)
        for call_id, name in calls:
            if name is not None and self.tool_names is not None and name not in self.tool_names:
                self.row.add("unknown_tool", f"{where}: calls {name!r}, which is not in the row's tools")
            if call_id is None:
                continue
            if call_id in self.seen_ids:
                self.row.add("duplicate_tool_call_id", f"{where}: tool call id {call_id!r} used twice")
            self.seen_ids.add(call_id)
            self.open_calls[call_id] = where

    def result(self, msg: dict[str, Any], where: str) -> None:
        call_id = msg.get("tool_call_id")
        if call_id is None:
            self.row.add("missing_key", f"{where}: tool message without 'tool_call_id'")
        elif not isinstance(call_id, str):
            self.row.add("wrong_type", f"{where}.tool_call_id is {_type_name(call_id)}, not string")
        elif call_id in self.open_calls:
            del self.open_calls[call_id]
            self.done.add(call_id)
        else:
            why = "was already answered" if call_id in self.done else "matches no earlier tool call"
            self.row.add("orphan_tool_result", f"{where}: tool_call_id {call_id!r} {why}")

    def close(self, where: str) -> None:
        """A non-tool message arrived: every open call went unanswered."""
        for call_id, at in self.open_calls.items():
            self.row.add("unanswered_tool_call", f"{at}: tool call {call_id!r} has no result before {where}")
        self.open_calls.clear()


def _check_messages(
    messages: Any, where: str, row: _Row, tool_names: frozenset[str] | None, *, final_call_ok: bool
) -> list[dict[str, Any]]:
    """Check a message list (shape, roles, tool-call flow); returns its well-formed messages."""
    if not isinstance(messages, list):
        row.add("missing_key" if messages is None else "wrong_type", f"{where} missing or not an array")
        return []
    flow, good = _Flow(row, tool_names), []
    for i, msg in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(msg, dict):
            row.add("wrong_type", f"{at} is {_type_name(msg)}, not object")
            continue
        role = _check_role(msg, at, row)
        if role is None:
            continue
        _check_content(msg, role, at, row)
        _check_optional_strings(msg, at, row)
        calls = _calls_of(msg, role, at, row)
        if role == "tool":
            flow.result(msg, at)
        elif calls:
            flow.calls(calls, at)
        else:
            flow.close(at)
        good.append(msg)
    _end_flow(flow, messages, where, final_call_ok=final_call_ok)
    return good


def _end_flow(flow: _Flow, messages: list[Any], where: str, *, final_call_ok: bool) -> None:
    last = f"{where}[{len(messages) - 1}]"
    if not flow.open_calls:
        return
    if all(at == last for at in flow.open_calls.values()):
        if not final_call_ok:
            flow.row.add(
                "final_tool_call", f"{last}: the conversation ends in a tool call that is never answered"
            )
        flow.open_calls.clear()
        return
    flow.close("the end of the conversation")


def _message_facts(messages: list[dict[str, Any]], facts: _Facts) -> None:
    for msg in messages:
        facts.n_messages += 1
        calls = msg.get("tool_calls")
        calls = calls if isinstance(calls, list) else []
        if msg.get("role") == "assistant":
            facts.n_assistant += 1
            facts.n_tool_calls += len(calls)
        facts.chars += len(_text_of(msg.get("content"))) + len(msg.get("reasoning_content") or "")
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            facts.chars += len(args) if isinstance(args, str) else len(orjson.dumps(args))


def _visible(msg: dict[str, Any]) -> str:
    return _THINK.sub("", _text_of(msg.get("content"))).strip()


def _check_answers(messages: list[dict[str, Any]], where: str, row: _Row) -> None:
    """Warn about assistant answers (no tool calls) with no letter or digit."""
    for i, msg in enumerate(messages):
        if msg.get("role") == "assistant" and not msg.get("tool_calls"):
            if not any(ch.isalnum() for ch in _visible(msg)):
                row.add(
                    "near_empty_answer",
                    f"{where}[{i}]: assistant answer {_visible(msg)[:20]!r} is (nearly) empty",
                )


# ---------------------------------------------------------------------------------------------
# Tools, rewards, task types


def _parse_tools(value: Any, row: _Row) -> list[dict[str, Any]] | None:
    """The row's tools as a list (a JSON string in trl), or None when absent or broken."""
    if value is None:
        return None
    if isinstance(value, str) and row.dialect == "trl":
        try:
            value = orjson.loads(value)
        except ValueError:
            row.add("invalid_tool", "tools is a string that is not valid JSON")
            return None
    if not isinstance(value, list):
        row.add("wrong_type", f"tools is {_type_name(value)}, not array")
        return None
    return [t for i, t in enumerate(value) if _check_tool(t, i, row)]


def _check_tool(tool: Any, index: int, row: _Row) -> bool:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if (
        not isinstance(fn, dict)
        or tool.get("type", "function") != "function"
        or not isinstance(fn.get("name"), str)
    ):
        row.add("invalid_tool", f"tools[{index}] is not {{type: function, function: {{name, ...}}}}")
        return False
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        row.add("invalid_tool", f"tools[{index}].function.parameters is {_type_name(params)}, not object")
        return False
    return True


def _tool_names(tools: list[dict[str, Any]] | None) -> frozenset[str] | None:
    if not tools:
        return None
    return frozenset(t["function"]["name"] for t in tools)


def _number(row_data: dict[str, Any], key: str, row: _Row) -> float | None:
    value = row_data.get(key)
    if value is None:
        return None
    if not _is_number(value):
        row.add("wrong_type", f"{key} is {_type_name(value)}, not a finite number")
        return None
    return float(value)


def _reward(row_data: dict[str, Any], key: str, row: _Row) -> float | None:
    value = _number(row_data, key, row)
    if value is not None and not 0.0 <= value <= 1.0:
        row.add("reward_out_of_range", f"{key} {value:g} is outside [0, 1]")
    return value


def _task(row_data: dict[str, Any], keys: Sequence[str], row: _Row) -> str | None:
    for key in keys:
        value = row_data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        row.add("wrong_type", f"{key} is {_type_name(value)}, not string")
    return None


def _unexpected_keys(data: dict[str, Any], allowed: frozenset[str], row: _Row) -> None:
    for key in sorted(data.keys() - allowed):
        row.add("unexpected_key", f"key {key!r} is not part of the openai format")


# ---------------------------------------------------------------------------------------------
# SFT rows


def _check_sft(data: dict[str, Any], row: _Row) -> _Facts:
    facts = _Facts()
    if row.dialect == "openai":
        _unexpected_keys(data, _OPENAI_SFT_KEYS, row)
    tools = _parse_tools(data.get("tools"), row)
    messages = data.get("messages")
    good = _check_messages(messages, "messages", row, _tool_names(tools), final_call_ok=False)
    if isinstance(messages, list) and not messages:
        row.add("empty_messages", "messages is empty")
    elif good and len(good) == len(messages or []):
        _sft_ending(good, row)
        facts.renders.append((good[:-1], good))
    _check_answers(good, "messages", row)
    _message_facts(good, facts)
    facts.tools = tools or []
    facts.reward = _reward(data, "reward", row) if row.dialect == "trl" else None
    facts.task = _task(data, ("task_type", "task_name"), row)
    facts.fingerprint = _canonical([messages, tools])
    return facts


def _sft_ending(messages: list[dict[str, Any]], row: _Row) -> None:
    role = messages[-1].get("role")
    if role != "assistant":
        row.add(
            "last_not_assistant",
            f"messages[{len(messages) - 1}] is {role!r}; the last message must be the assistant's",
        )


# ---------------------------------------------------------------------------------------------
# DPO rows


@dataclass(slots=True)
class _Pair:
    prompt: Any
    chosen: Any
    rejected: Any
    names: tuple[str, str, str]
    tools: Any = None


def _pair_of(data: dict[str, Any], row: _Row) -> _Pair | None:
    if row.dialect == "trl":
        return _Pair(
            data.get("prompt"),
            data.get("chosen"),
            data.get("rejected"),
            ("prompt", "chosen", "rejected"),
            data.get("tools"),
        )
    if row.dialect == "openai":
        _unexpected_keys(data, _OPENAI_DPO_KEYS, row)
        inp = data.get("input")
        if not isinstance(inp, dict):
            row.add("missing_key" if inp is None else "wrong_type", "input missing or not an object")
            inp = {}
        names = ("input.messages", "preferred_output", "non_preferred_output")
        return _Pair(
            inp.get("messages"),
            data.get("preferred_output"),
            data.get("non_preferred_output"),
            names,
            inp.get("tools"),
        )
    return _nemo_rl_pair(data, row)


def _nemo_rl_pair(data: dict[str, Any], row: _Row) -> _Pair | None:
    completions = data.get("completions")
    if not isinstance(completions, list):
        row.add("missing_key" if completions is None else "wrong_type", "completions missing or not an array")
        return None
    ranks = [c.get("rank") if isinstance(c, dict) else None for c in completions]
    if len(completions) != 2 or sorted(r for r in ranks if isinstance(r, int)) != [0, 1]:
        row.add("bad_completions", f"completions must be exactly two with ranks 0 and 1, got ranks {ranks}")
        return None
    by_rank = {c["rank"]: c for c in completions}
    names = (
        "context",
        f"completions[{ranks.index(0)}].completion",
        f"completions[{ranks.index(1)}].completion",
    )
    return _Pair(data.get("context"), by_rank[0].get("completion"), by_rank[1].get("completion"), names)


def _check_dpo(data: dict[str, Any], row: _Row) -> _Facts:
    facts = _Facts()
    pair = _pair_of(data, row)
    if pair is None:
        return facts
    tools = _parse_tools(pair.tools, row)
    names = _tool_names(tools)
    prompt = _check_messages(pair.prompt, pair.names[0], row, names, final_call_ok=True)
    if isinstance(pair.prompt, list) and not pair.prompt:
        row.add("empty_prompt", f"{pair.names[0]} is empty")
    _message_facts(prompt, facts)
    for side, name in ((pair.chosen, pair.names[1]), (pair.rejected, pair.names[2])):
        good = _check_side(pair.prompt, side, name, row, names)
        _message_facts(good, facts)
        if good and len(good) == len(side):
            facts.renders.append((prompt + good[:-1], prompt + good))
    _compare_sides(pair, row)
    facts.tools = tools or []
    _dpo_numbers(data, row, facts)
    facts.fingerprint = _canonical([pair.prompt, pair.chosen, pair.rejected, tools])
    return facts


def _check_side(
    prompt: Any, side: Any, name: str, row: _Row, tool_names: frozenset[str] | None
) -> list[dict[str, Any]]:
    """Check chosen or rejected, walking the tool flow over prompt + side; returns its good messages."""
    if not isinstance(side, list):
        row.add("missing_key" if side is None else "wrong_type", f"{name} missing or not an array")
        return []
    if not side:
        row.add("empty_completion", f"{name} is empty")
        return []
    whole = [*(prompt if isinstance(prompt, list) else []), *side]
    scratch = _Row(row.number, row.kind, row.dialect, _Findings(10**6))
    _check_messages(whole, "conversation", scratch, tool_names, final_call_ok=True)
    offset = len(whole) - len(side)
    for f in scratch.sink.items:
        row.add(f.code, _rename(f.message, offset, name))
    good = [m for m in side if isinstance(m, dict)]
    _side_ending(side, name, row)
    return good


def _rename(message: str, offset: int, name: str) -> str:
    """Turn ``conversation[i]`` into ``prompt[i]`` or ``chosen[i - offset]`` in a message."""

    def sub(match: re.Match[str]) -> str:
        i = int(match.group(1))
        return f"prompt[{i}]" if i < offset else f"{name}[{i - offset}]"

    return re.sub(r"conversation\[(\d+)\]", sub, message)


def _side_ending(side: list[Any], name: str, row: _Row) -> None:
    last = side[-1]
    if not isinstance(last, dict):
        return
    if last.get("role") != "assistant":
        row.add(
            "last_not_assistant",
            f"{name}[{len(side) - 1}] is {last.get('role')!r}; it must be the assistant's",
        )
    elif all(isinstance(m, dict) and not _visible(m) and not m.get("tool_calls") for m in side):
        row.add("empty_completion", f"{name} has no text and no tool calls")
    else:
        _check_answers([m for m in side if isinstance(m, dict)], name, row)
    if row.dialect != "trl" and len(side) > 1:
        trained = "the final message" if row.dialect == "nemo-rl" else "one assistant message"
        row.add(
            "multi_message_completion",
            f"{name} has {len(side)} messages; the {row.dialect} dialect trains {trained}",
        )


def _compare_sides(pair: _Pair, row: _Row) -> None:
    chosen, rejected = pair.chosen, pair.rejected
    if (
        isinstance(chosen, list)
        and isinstance(rejected, list)
        and chosen
        and _canonical(chosen) == _canonical(rejected)
    ):
        row.add(
            "identical_pair", f"{pair.names[1]} and {pair.names[2]} are identical (tool-call ids set aside)"
        )


def _dpo_numbers(data: dict[str, Any], row: _Row, facts: _Facts) -> None:
    if row.dialect != "trl":
        return
    facts.chosen_reward = _reward(data, "chosen_reward", row)
    facts.rejected_reward = _reward(data, "rejected_reward", row)
    margin = _number(data, "quality_difference", row)
    if margin is None and facts.chosen_reward is not None and facts.rejected_reward is not None:
        margin = facts.chosen_reward - facts.rejected_reward
    if margin is not None and margin <= 0:
        row.add(
            "non_positive_margin", f"margin {margin:g} is not positive: chosen is not better than rejected"
        )
    facts.margin = margin
    facts.task = _task(data, ("task_type", "task_key"), row)


# ---------------------------------------------------------------------------------------------
# Tokenizer checks


class _Renderer:
    """Renders conversations with a local tokenizer's chat template and counts tokens."""

    def __init__(self, folder: str, chat_template: str | None) -> None:
        self.tokenizer = _load_tokenizer(folder)
        if chat_template is not None:
            self.tokenizer.chat_template = _read_template(chat_template)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                f"{folder}: the tokenizer has no chat template; pass --chat-template FILE", key="tokenizer"
            )

    def count(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, generation_prompt: bool
    ) -> int:
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools or None, tokenize=False, add_generation_prompt=generation_prompt
        )
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def _load_tokenizer(folder: str) -> Any:
    # "sequence longer than the model's maximum" on stderr: the report says that itself
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return load_tokenizer(folder)


def _read_template(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the chat template ({exc})", path=path) from None


def _token_check(renderer: _Renderer, facts: _Facts, row: _Row, max_len: int | None) -> int | None:
    """Token length of the row's longest rendering; reports template errors and cut answers."""
    longest: int | None = None
    for context, full in facts.renders:
        try:
            total = renderer.count(full, facts.tools, generation_prompt=False)
            start = renderer.count(context, facts.tools, generation_prompt=True) if context else 0
        except Exception as exc:
            row.add("template_error", f"the chat template fails: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        longest = max(longest or 0, total)
        if max_len is not None and total > max_len:
            lost = "all of it" if start >= max_len else f"{total - max_len} of its {total - start} tokens"
            row.add(
                "answer_truncated",
                f"{total} tokens > max_seq_len {max_len}: "
                f"the final assistant turn (from token {start}) loses {lost}",
            )
    return longest


# ---------------------------------------------------------------------------------------------
# Statistics over the file


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
    if kind == "dpo":
        out["chosen_reward"] = summarize(stats.chosen_rewards)
        out["rejected_reward"] = summarize(stats.rejected_rewards)
        out["margin"] = summarize(stats.margins)
    return out


def _shape_findings(stats: _Stats, unit: str, sink: _Findings) -> None:
    """File-level warnings: extreme lengths and a dominant task type."""
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


# ---------------------------------------------------------------------------------------------
# The datasets round trip


_LOOSE_LIST_KEYS = frozenset(
    {
        "messages",
        "prompt",
        "chosen",
        "rejected",
        "context",
        "completion",
        "completions",
        "tool_calls",
        "tools",
        "preferred_output",
        "non_preferred_output",
    }
)


def _diff(before: Any, after: Any, path: str, loose: bool) -> str | None:
    """Where ``after`` first differs from ``before`` (None when equal); ``loose`` dicts may gain nulls."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before.keys() | after.keys():
            if key not in before:
                if loose and after[key] is None:
                    continue
                return f"{path}.{key} appears ({json.dumps(after[key])[:40]})"
            if key not in after:
                return f"{path}.{key} disappears"
            child_loose = key in ("function", "input")
            if isinstance(before[key], list):
                child_loose = key in _LOOSE_LIST_KEYS
            found = _diff(before[key], after[key], f"{path}.{key}", child_loose)
            if found:
                return found
        return None
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            found = _diff(b, a, f"{path}[{i}]", loose)
            if found:
                return found
        return None
    if _same_scalar(before, after):
        return None
    return f"{path} changes from {json.dumps(before)[:40]} to {json.dumps(after, default=str)[:40]}"


def _same_scalar(before: Any, after: Any) -> bool:
    """Equal scalars; numbers within 1e-12 relative (Arrow's float parsing may move the last digit)."""
    if isinstance(before, (list, dict)) or isinstance(after, (list, dict)):
        return False
    if _is_number(before) and _is_number(after):
        return bool(math.isclose(before, after, rel_tol=1e-12, abs_tol=0.0))
    return bool(type(before) is type(after) and before == after)


def _roundtrip(path: str, sink: _Findings) -> None:
    """Load the file with ``datasets`` and report every row the load changes."""
    try:
        import datasets
    except ImportError:
        sink.add("roundtrip_unavailable", "datasets is not installed; the round trip was not checked", None)
        return
    cache = tempfile.mkdtemp(prefix="rollcraft-roundtrip-")
    try:
        _compare_loaded(path, _load_json_dataset(datasets, path, cache), sink)
    except _LoadFailed as exc:
        sink.add("roundtrip_failed", f"datasets cannot load the file: {exc}", None)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


class _LoadFailed(Exception):
    pass


def _load_json_dataset(datasets: Any, path: str, cache: str) -> Any:
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        return datasets.load_dataset("json", data_files=os.path.abspath(path), split="train", cache_dir=cache)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _LoadFailed(f"{type(exc).__name__}: {first[:200]}") from None


def _compare_loaded(path: str, dataset: Any, sink: _Findings) -> None:
    loaded = _loaded_rows(dataset)
    for number, data in _lines(path):
        if not data.strip():
            continue
        after = next(loaded, None)
        change = _diff(orjson.loads(data), after, "row", True)
        if change:
            sink.add("roundtrip_changed", f"load_dataset('json') changes the row: {change}", number)


def _loaded_rows(dataset: Any) -> Iterator[Any]:
    """The rows of a loaded dataset as ``iter(dataset)`` gives them (decoded by its features),
    read from its Arrow cache files one record batch at a time.

    Iterating the dataset reads them through a memory map whose pages stay resident: the peak
    memory grew with the file (+214 MB for a 302 MB file, 4x slower). Any other dataset (in
    memory, or with an indices mapping) is iterated as it is.
    """
    files = [entry["filename"] for entry in getattr(dataset, "cache_files", None) or ()]
    features = getattr(dataset, "features", None)
    if not files or features is None or getattr(dataset, "_indices", None) is not None:
        yield from dataset
        return
    import pyarrow as pa

    try:  # the cache is an Arrow stream (as ``datasets`` writes it); anything else: iterate
        with pa.OSFile(files[0]) as handle:
            pa.ipc.open_stream(handle)
    except pa.ArrowInvalid:
        yield from dataset
        return
    for name in files:
        with pa.OSFile(name) as handle:
            for batch in pa.ipc.open_stream(handle):
                for row in batch.to_pylist():
                    yield features.decode_example(row)


# ---------------------------------------------------------------------------------------------
# The whole file


def validate_file(
    path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    dialect: str = "auto",
    tokenizer: str | os.PathLike[str] | None = None,
    max_seq_len: int | None = None,
    chat_template: str | os.PathLike[str] | None = None,
    roundtrip: bool = True,
    max_findings_per_code: int = 1000,
) -> ValidationReport:
    """Check every row of ``path`` and gather statistics.

    ``kind`` (``"sft"``/``"dpo"``) and ``dialect`` (``"trl"``, ``"openai"``, ``"nemo-rl"``) are
    detected from the rows when not given. With ``tokenizer`` (a local Hugging Face tokenizer
    folder; ``chat_template`` a Jinja file that replaces its template) every row is rendered with
    ``apply_chat_template`` and lengths are in tokens; ``max_seq_len`` then reports rows whose final
    assistant turn would be truncated. Without a tokenizer lengths are in characters.

    >>> validate_file("sft.jsonl", kind="sft").ok                  # doctest: +SKIP
    True
    """
    source = _check_options(path, kind, dialect, max_seq_len)
    kind, dialect = _detect(source, kind, dialect)
    renderer = _Renderer(os.fspath(tokenizer), _opt(chat_template)) if tokenizer is not None else None
    sink = _Findings(max_findings_per_code)
    stats, clean_json = _scan(source, kind, dialect, renderer, max_seq_len, sink)
    unit = "tokens" if renderer is not None else "chars"
    if stats.rows == 0:
        sink.add("empty_file", "the file has no rows", None)
    _shape_findings(stats, unit, sink)
    if roundtrip and dialect in ("trl", "nemo-rl") and clean_json and stats.rows:
        _roundtrip(source, sink)
    findings = sorted(
        sink.items, key=lambda f: (f.row is not None, f.row or 0, f.severity != "error", f.code)
    )
    report = ValidationReport(
        source, kind, dialect, stats.rows, findings, dict(sink.counts), _stats_dict(stats, kind, unit)
    )
    report.excerpts = _excerpts(source, sink.rows_with_findings())
    report.series = _series(stats, unit)
    return report


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


def _opt(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


def _check_options(
    path: str | os.PathLike[str], kind: str | None, dialect: str, max_seq_len: int | None
) -> str:
    source = os.fspath(path)
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"must be one of {', '.join(KINDS)}, not {kind!r}", key="kind")
    if dialect != "auto" and dialect not in DIALECTS:
        raise ConfigError(f"must be auto or one of {', '.join(DIALECTS)}, not {dialect!r}", key="format")
    if max_seq_len is not None and max_seq_len < 1:
        raise ConfigError(f"must be a positive number of tokens, not {max_seq_len}", key="max_seq_len")
    if not Path(source).is_file():
        raise InputError("no such file", path=source)
    return source


def _scan(
    source: str, kind: str, dialect: str, renderer: _Renderer | None, max_len: int | None, sink: _Findings
) -> tuple[_Stats, bool]:
    """The streaming pass, each row checked once; returns the stats and whether every line was an object."""
    stats, clean_json = _Stats(), True
    for number, data in _lines(source):
        if not data.strip():
            sink.add("blank_line", "an empty line", number)
            continue
        stats.rows += 1
        row = _Row(number, kind, dialect, sink)
        facts = _check_line(data, row)
        if facts is None:
            clean_json = False
            continue
        first = stats.duplicate_of(number, facts.fingerprint)
        if first is not None:
            row.add("duplicate_row", f"repeats row {first}")
        stats.add(number, facts)
        if renderer is not None:
            tokens = _token_check(renderer, facts, row, max_len)
            if tokens is not None:
                stats.tokens.append((number, tokens))
    return stats, clean_json


def _check_line(data: bytes, row: _Row) -> _Facts | None:
    try:
        value = orjson.loads(data)
    except ValueError as exc:
        row.add("not_json", f"not valid JSON: {str(exc).splitlines()[0][:120]}")
        return None
    if not isinstance(value, dict):
        row.add("not_object", f"a JSON {_type_name(value)}, not an object")
        return None
    return _check_sft(value, row) if row.kind == "sft" else _check_dpo(value, row)


def _excerpts(source: str, rows: set[int]) -> dict[int, str]:
    """The first characters of each row that has a finding (for the HTML report), at most a few hundred."""
    wanted = set(sorted(rows)[:_MAX_EXCERPTS])
    out: dict[int, str] = {}
    if not wanted:
        return out
    for number, data in _lines(source, limit=max(wanted)):
        if number in wanted:
            text = data.decode("utf-8", errors="replace")
            out[number] = text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + " …"
    return out


# ---------------------------------------------------------------------------------------------
# The HTML report

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
    return lines


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
