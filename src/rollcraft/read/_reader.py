"""The reader: every input line becomes exactly one :class:`Rollout` or :class:`Quarantined` line."""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, TypeVar

import orjson
from msgspec import UNSET

from rollcraft._compact import LocatorSet
from rollcraft._io import (
    RawLine,
    _read_lines,
    expand_inputs,
    is_compressed,
    is_plain_file,
    iter_lines,
    lines_at,
    skip_bom,
)
from rollcraft._records import Conversation, Quarantined, Rollout
from rollcraft.read._attempts import attempt_flag, attempt_of, rollout_identity
from rollcraft.read._facts import (
    _agent,
    _components,
    _Facts,
    _index_key,
    _indexed,
    _mark,
    _Quarantine,
    _reward,
    _success,
    _task_id_key,
    _task_type,
    rollout_id_of,
    task_key_of,
)
from rollcraft.read._fast import fast_conversation, fast_decode, prompt_task_key
from rollcraft.read._normalize import (
    ReasoningMode,
    TooDeep,
    conversation_from_chat,
    conversation_from_responses,
    read_json,
    value_text,
)
from rollcraft.read._trajectory import DEFAULT_TRAJECTORY_MODE, TrajectoryMode, main_conversation

__all__ = [
    "QUARANTINE_REASONS",
    "ReadOptions",
    "ReadReport",
    "Shape",
    "parse_line",
    "read_rollouts",
    "task_key_of",
]

Shape = Literal["auto", "nemo-gym", "tutorial", "chat"]

#: Every quarantine reason code, with what it means.
QUARANTINE_REASONS: dict[str, str] = {
    "empty_line": "the line is empty or only whitespace",
    "not_json": "the line is not valid JSON (or not UTF-8)",
    "not_object": "the line is JSON but not an object",
    "no_result": "an input row without a result (materialized input: no response and no reward)",
    "failed_attempt": "a failed attempt (_ng_failure_class is set)",
    "metric_row": "a per-task metric row (reward profiling), not a rollout",
    "bad_reward": "the reward is missing or not a finite number",
    "unknown_schema": "a JSON object of no known rollout shape",
    "malformed_record": "a known shape whose parts have the wrong types",
    "line_too_long": "the line is longer than the configured limit",
    "too_deeply_nested": (
        "the JSON nests deeper than 1024 levels (what the decoder reads), or a value the reader keeps"
        " or turns into text (a tool's parameters, a content part, arguments, a task_id) deeper than"
        " about 250 (what the encoder writes)"
    ),
}

DEFAULT_SUCCESS_THRESHOLD = 1.0
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How lines are read and normalized.

    ``success_threshold``: a rollout without an explicit ``success``/``is_correct``/``resolved``
    succeeds when its reward is at least this. ``task_key``: a top-level field (dots reach into
    objects, e.g. ``metadata.id``) that names the task, instead of the default rule.
    ``trajectory``: with ``main`` or ``branches``, a record that carries ``ng_trajectory`` has
    its main agent's model-visible conversation (:func:`rollcraft.read._trajectory.main_conversation`
    says when); ``off`` reads ``response.output`` only.
    """

    shape: Shape = "auto"
    reasoning: ReasoningMode = "separate"
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD
    task_key: str | None = None
    max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES
    trajectory: TrajectoryMode = DEFAULT_TRAJECTORY_MODE

    @property
    def fast(self) -> bool:
        """Whether NeMo Gym lines of the common shape may take the fast path (:mod:`rollcraft.read._fast`)."""
        return self.shape in ("auto", "nemo-gym") and self.task_key is None


_T = TypeVar("_T")

#: How many quarantined lines a report keeps as examples, besides the first of each reason.
KEPT_EXAMPLES = 20


def kept_examples(
    items: Iterable[_T], limit: int = KEPT_EXAMPLES, reason: Callable[[_T], str] = attrgetter("reason")
) -> list[_T]:
    """The first ``limit`` of ``items``, and the first item of each ``reason`` not among them."""
    seen: set[str] = set()
    kept: list[_T] = []
    for item in items:
        why = reason(item)
        if len(kept) < limit or why not in seen:
            kept.append(item)
        seen.add(why)
    return kept


@dataclass(slots=True)
class ReadReport:
    """Counts of what reading saw; reports add up (``a + b``), so workers' reports merge.

    ``lines == rollouts + sum(quarantined.values())`` always holds.
    """

    lines: int = 0
    rollouts: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    #: The first :data:`KEPT_EXAMPLES` quarantined lines, and the first of every other reason
    #: (one broken line among thousands of expected metric rows is still named).
    quarantine_examples: list[Quarantined] = field(default_factory=list)

    def count(self, item: Rollout | Quarantined) -> None:
        self.lines += 1
        if isinstance(item, Rollout):
            self.rollouts += 1
            return
        self.quarantined[item.reason] += 1
        if len(self.quarantine_examples) < KEPT_EXAMPLES or self.quarantined[item.reason] == 1:
            self.quarantine_examples.append(item)

    def __add__(self, other: ReadReport) -> ReadReport:
        return ReadReport(
            self.lines + other.lines,
            self.rollouts + other.rollouts,
            self.quarantined + other.quarantined,
            kept_examples([*self.quarantine_examples, *other.quarantine_examples]),
        )

    @property
    def balanced(self) -> bool:
        return self.lines == self.rollouts + sum(self.quarantined.values())


def read_rollouts(
    paths: Iterable[str],
    *,
    options: ReadOptions | None = None,
    report: ReadReport | None = None,
    only: LocatorSet | None = None,
) -> Iterator[Rollout | Quarantined]:
    """Read files, folders, globs or ``-`` and yield one Rollout or Quarantined per input line.

    ``only``: the locators ``(file, byte offset)`` of the lines to read; every other line is
    passed over undecoded (and not counted in ``report``).

    >>> from rollcraft import read_rollouts, Rollout
    >>> rollouts = [r for r in read_rollouts(["examples/rollouts"]) if isinstance(r, Rollout)]
    """
    opts = options or ReadOptions()
    sources = expand_inputs(paths)
    if only is None:
        lines = _raw_lines(sources, opts.max_line_bytes)
    else:
        lines = _lines_at(sources, only, opts.max_line_bytes)
    for item in parse_lines(lines, opts):
        if report is not None:
            report.count(item)
        yield item


_READ_BUFFER = 1 << 20


def _raw_lines(sources: Sequence[str], max_line_bytes: int | None) -> Iterator[RawLine]:
    """:func:`rollcraft._io.iter_lines`, with a large read buffer for plain files (the same lines).

    ``readline`` through the default 8 KiB buffer costs several times the decode of a long line's
    bytes; compressed files and stdin go through ``iter_lines`` unchanged.
    """
    for source in sources:
        handle = _open_plain(source)
        if handle is None:
            yield from iter_lines([source], max_line_bytes=max_line_bytes)
            continue
        with handle:
            offset = skip_bom(handle, source)
            number = 0
            for line in _read_lines(handle, source, max_line_bytes):
                number += 1
                yield RawLine(source, number, offset, line.rstrip(b"\r\n"))
                offset += len(line)


def _lines_at(sources: Sequence[str], only: LocatorSet, max_line_bytes: int | None) -> Iterator[RawLine]:
    """The lines of ``sources`` at the locators ``only``: in a plain file found by offset, in a
    compressed one among all its lines."""
    for source in sources:
        offsets = only.offsets(source)
        if not offsets:
            continue
        if hasattr(os, "pread") and is_plain_file(source):
            yield from lines_at(source, offsets, only.lines(source))
            continue
        wanted = set(offsets)
        yield from (raw for raw in _raw_lines([source], max_line_bytes) if raw.offset in wanted)


def _open_plain(source: str) -> io.BufferedReader[io.FileIO] | None:
    if source == "-":
        return None
    try:
        handle = io.BufferedReader(io.FileIO(source, "rb"), buffer_size=_READ_BUFFER)
    except OSError:
        return None  # iter_lines raises the usual InputError
    head = handle.peek(4)[:4]
    if is_compressed(head):
        handle.close()
        return None
    return handle


def parse_lines(lines: Iterable[RawLine], options: ReadOptions) -> Iterator[Rollout | Quarantined]:
    """:func:`parse_line` over ``lines``.

    (Hashing the rollout ids ahead in a thread, where hashlib releases the GIL, was measured
    slower on a 2-core machine: the GIL hand-offs cost more than the hashing.)
    """
    fast = options.fast
    for raw in lines:
        yield _parse(raw, options, None, fast)


def parse_line(
    raw: RawLine, options: ReadOptions, *, rollout_id: str | None = None, fast: bool = True
) -> Rollout | Quarantined:
    """One raw line -> a Rollout, or a Quarantined line with its reason code.

    ``rollout_id``: ``rollout_id_of(raw.data)`` when the caller has it already. ``fast=False``
    skips the fast path (the result is the same; for tests).
    """
    return _parse(raw, options, rollout_id, fast and options.fast)


def _parse(raw: RawLine, options: ReadOptions, rollout_id: str | None, fast: bool) -> Rollout | Quarantined:
    data = raw.data
    if options.max_line_bytes is not None and len(data) > options.max_line_bytes:
        return _quarantined(raw, "line_too_long", f"longer than {options.max_line_bytes} bytes")
    if not data or data.isspace():  # the same test as ``not data.strip()``, without copying the line
        return _quarantined(raw, "empty_line", "empty line")
    if fast:
        rollout = _fast_rollout(raw, options, rollout_id)
        if rollout is not None:
            return rollout
    return _general_rollout(raw, options, rollout_id)


def _quarantined(raw: RawLine, reason: str, detail: str) -> Quarantined:
    return Quarantined(raw.source, raw.line, raw.offset, reason, detail, raw.data)


def _general_rollout(raw: RawLine, options: ReadOptions, rollout_id: str | None) -> Rollout | Quarantined:
    """The general path: the whole record decoded, every known shape."""
    data = raw.data
    try:
        record = read_json(data)
    except RecursionError:  # Python's json, after orjson refused a number (``read_json``)
        return _quarantined(raw, "too_deeply_nested", "nests deeper than the decoder reads")
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            return _quarantined(raw, "too_deeply_nested", str(exc))
        return _quarantined(raw, "not_json", str(exc))
    if not isinstance(record, dict):
        return _quarantined(raw, "not_object", f"a JSON {type(record).__name__}, not an object")
    try:
        return _rollout(raw, record, options, rollout_id)
    except _Quarantine as q:
        return _quarantined(raw, q.reason, q.detail)
    except (TooDeep, RecursionError) as exc:  # RecursionError: a safety net; nothing here recurses
        return _quarantined(raw, "too_deeply_nested", str(exc))
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        if isinstance(exc, orjson.JSONEncodeError) and "ecursion" in str(exc):  # e.g. a task_id object
            return _quarantined(raw, "too_deeply_nested", f"a value nests deeper than can be written: {exc}")
        return _quarantined(raw, "malformed_record", f"{type(exc).__name__}: {exc}")


def conversation_of_line(data: bytes, options: ReadOptions) -> Conversation:
    """Only the conversation of a line :func:`parse_line` already read as a Rollout (the same one).

    For reading pair lines back: no rollout id, task key or counts (the first pass has them).
    Raises ``ValueError`` when the line is not a rollout after all.
    """
    if options.fast:
        fast = fast_decode(data)
        if fast is not None and fast.ng_trajectory is not UNSET and options.trajectory != "off":
            fast = None  # the general path reads the trajectory
        found = fast_conversation(fast, options.reasoning, set()) if fast is not None else None
        if found is not None:
            return found[0]
    try:
        record = read_json(data)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        shape = detect_shape(record) if options.shape == "auto" else _forced_shape(record, options.shape)
        return _with_trajectory(record, _conversation(record, shape, options, set()), options, set())
    except _Quarantine as q:
        raise ValueError(q.detail) from None


def detect_shape(record: dict[str, Any]) -> Shape:
    """Which known record shape a decoded object has (raises :class:`_Quarantine` when none)."""
    if "_ng_failure_class" in record:
        raise _Quarantine("failed_attempt", f"failed attempt: {_brief(record.get('_ng_failure_class'))}")
    if "response" in record and isinstance(record.get("responses_create_params"), dict):
        return "nemo-gym"
    if "output" in record and "reward" in record:
        return "tutorial"
    if "messages" in record and "reward" in record:
        return "chat"
    if "response" not in record and any(key.startswith(_METRIC_PREFIXES) for key in record):
        raise _Quarantine("metric_row", "a per-task metric row (keys like mean/reward)")
    if "response" not in record and "reward" not in record and _looks_like_input(record):
        raise _Quarantine("no_result", "an input row: no response and no reward")
    if "responses_create_params" in record and "reward" in record:
        raise _Quarantine("no_result", "a row with a reward but no response")
    raise _Quarantine("unknown_schema", "keys: " + ", ".join(sorted(record)[:8]))


def _brief(value: Any) -> str:
    """A value for a quarantine's detail, cut short: a list or object as JSON, not by Python's
    ``repr``, which recurses (and fails, near 1000 levels, depending on the stack)."""
    try:
        return value_text(value)[:200]
    except TooDeep:
        return "(a value nested too deeply to show)"


_METRIC_PREFIXES = ("mean/", "max/", "min/", "median/", "std/", "sum/", "pass@", "count/")


def _looks_like_input(record: dict[str, Any]) -> bool:
    return any(k in record for k in ("responses_create_params", "_ng_task_index", "agent_ref", "messages"))


def _rollout(raw: RawLine, record: dict[str, Any], options: ReadOptions, rollout_id: str | None) -> Rollout:
    shape = detect_shape(record) if options.shape == "auto" else _forced_shape(record, options.shape)
    reward = _reward(record)
    flags: set[str] = set()
    own = _conversation(record, shape, options, flags)  # the task key reads the record's own prompt
    conversation = _with_trajectory(record, own, options, flags)
    _mark(flags, record.get("mask_sample"), record.get("verification_skipped"))
    agent = _agent(record)
    index = record.get("_ng_rollout_index")
    attempt = record.get("_ng_attempt_index")
    if attempt is not None:
        task, rollout_id = record.get("_ng_task_index"), record.get("_ng_rollout_id")
        _mark_attempt(raw, flags, agent, task, index, rollout_id, attempt)
    metadata = record.get("metadata")
    facts = _Facts(
        task_key=task_key_of(record, own, agent, options.task_key),
        rollout_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        reward_components=_components(record.get("reward_components")),
        success=_success(
            [record.get(k) for k in ("success", "is_correct", "resolved")], reward, options.success_threshold
        ),
        task_type=_task_type(
            metadata.get("task_type") if isinstance(metadata, dict) else None, record.get("category"), agent
        ),
        agent=agent,
    )
    return _build(raw, shape, reward, conversation, flags, facts, rollout_id)


def _fast_rollout(raw: RawLine, options: ReadOptions, rollout_id: str | None) -> Rollout | None:
    """The fast path (:mod:`rollcraft.read._fast`) for a NeMo Gym record of the common shape, or None."""
    record = fast_decode(raw.data)
    if record is None or not _utf8(raw.data):
        return None
    if record.ng_trajectory is not UNSET and options.trajectory != "off":
        return None  # the general path reads the trajectory
    flags: set[str] = set()
    found = fast_conversation(record, options.reasoning, flags)
    if found is None:
        return None
    conversation, tools_json = found
    if record.mask_sample or record.verification_skipped:
        _mark(flags, record.mask_sample, record.verification_skipped)
    ref = record.agent_ref
    agent = ref.name if ref is not None and ref.name else None
    if record.ng_attempt_index is not None:
        _mark_attempt(
            raw,
            flags,
            agent,
            record.ng_task_index,
            record.ng_rollout_index,
            record.ng_rollout_id,
            record.ng_attempt_index,
        )
    if record.task_id is not None:
        task_key = _task_id_key(agent, record.task_id)
    elif conversation.prompt:
        task_key = _indexed(prompt_task_key(agent, conversation.prompt, tools_json), record.ng_task_index)
    else:
        task_key = _index_key(agent, record.ng_task_index)
    metadata = record.metadata
    components = record.reward_components
    facts = _Facts(  # positional, in field order (once per line)
        task_key,
        record.ng_rollout_index,
        _components(components) if components else {},
        _success(
            (record.success, record.is_correct, record.resolved), record.reward, options.success_threshold
        ),
        _task_type(metadata.task_type if metadata is not None else None, record.category, agent),
        agent,
    )
    return _build(raw, "nemo-gym", record.reward, conversation, flags, facts, rollout_id)


def _mark_attempt(
    raw: RawLine, flags: set[str], agent: str | None, task: Any, rollout: Any, rollout_id: Any, attempt: Any
) -> None:
    """Flag a line that is not its rollout's latest attempt in its file (:mod:`rollcraft.read._attempts`)."""
    identity = rollout_identity(agent, task, rollout, rollout_id)
    flag = attempt_flag(raw.source, raw.offset, identity, attempt_of(attempt))
    if flag is not None:
        flags.add(flag)


def _utf8(data: bytes) -> bool:
    """Whether the line is UTF-8. msgspec checks the strings it decodes, not those it skips (an
    unknown key's value), where orjson, on the general path, rejects the whole line: such a line
    is quarantined as ``not_json``, as there. About 0.5 s per GB of non-ASCII lines."""
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _forced_shape(record: dict[str, Any], shape: Shape) -> Shape:
    if "_ng_failure_class" in record:
        raise _Quarantine("failed_attempt", f"failed attempt: {_brief(record.get('_ng_failure_class'))}")
    needed = {
        "nemo-gym": ("responses_create_params", "response"),
        "tutorial": ("output",),
        "chat": ("messages",),
    }
    missing = [k for k in needed[shape] if k not in record]
    if missing:
        if "reward" not in record and "response" not in record:
            raise _Quarantine("no_result", "an input row: no response and no reward")
        raise _Quarantine("unknown_schema", f"not a {shape} record: no {', '.join(missing)}")
    return shape


def _conversation(
    record: dict[str, Any], shape: Shape, options: ReadOptions, flags: set[str]
) -> Conversation:
    mode = options.reasoning
    if shape == "nemo-gym":
        params = record["responses_create_params"]
        response = record["response"]
        if not isinstance(params, dict) or not isinstance(response, dict):
            raise _Quarantine("malformed_record", "responses_create_params and response must be objects")
        if (response.get("incomplete_details") or {}).get("reason") or response.get("status") == "incomplete":
            flags.add("truncated")
        return conversation_from_responses(params, response.get("output"), reasoning=mode, flags=flags)
    params = (
        record.get("responses_create_params")
        if isinstance(record.get("responses_create_params"), dict)
        else {}
    )
    tools = record.get("tools", params.get("tools") if params else None)
    if shape == "tutorial":
        prompt = params.get("input") if params else record.get("input", record.get("prompt"))
        if not isinstance(record.get("output"), list):
            raise _Quarantine("malformed_record", "output must be a list")
        return conversation_from_chat(prompt, record["output"], tools, reasoning=mode, flags=flags)
    if not isinstance(record.get("messages"), list):
        raise _Quarantine("malformed_record", "messages must be a list")
    return conversation_from_chat(None, record["messages"], tools, reasoning=mode, flags=flags)


def _with_trajectory(
    record: dict[str, Any], conversation: Conversation, options: ReadOptions, flags: set[str]
) -> Conversation:
    """The record's conversation, or its trajectory's main one (:func:`main_conversation`)."""
    if options.trajectory == "off" or "ng_trajectory" not in record:
        return conversation
    try:
        return main_conversation(record, conversation, options.reasoning, flags)
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError):  # not a readable trajectory
        flags.add("trajectory_gap")
        return conversation


def _build(
    raw: RawLine,
    shape: Shape,
    reward: float,
    conversation: Conversation,
    flags: set[str],
    facts: _Facts,
    rollout_id: str | None,
) -> Rollout:
    completion = conversation.completion
    n_calls = n_assistant = n_chars = 0
    for message in conversation.prompt:
        n_chars += len(message["content"])
    for message in completion:
        n_chars += len(message["content"])
        if message["role"] == "assistant":
            n_assistant += 1
        calls = message.get("tool_calls")
        if calls:
            n_calls += len(calls)
    return Rollout(  # positional, in field order: a third faster than keywords, once per line
        raw.source,  # source
        raw.line,  # line
        raw.offset,  # offset
        rollout_id if rollout_id is not None else rollout_id_of(raw.data),  # rollout_id
        facts.task_key,
        facts.rollout_index,
        reward,
        facts.reward_components,
        facts.success,
        facts.task_type,
        facts.agent,
        shape,
        frozenset(flags),  # flags
        conversation,
        raw.data,  # raw
        len(conversation.prompt) + len(completion),  # n_messages
        n_assistant,  # n_assistant_turns
        n_calls,  # n_tool_calls
        n_chars,
    )
