"""Retries of one rollout: the latest attempt wins.

NeMo Gym names a rollout by its task and repeat (``_ng_task_index``, ``_ng_rollout_index``; or
``_ng_rollout_id``) and stamps each try of it with ``_ng_attempt_index`` (0, 1, ...). A file can
hold several lines of one rollout: an outcome of an attempt that a later attempt replaced, or the
same attempt written twice. Within one file, the line of the highest attempt wins (the first such
line, by byte offset); every other line of a record that carries ``_ng_attempt_index`` is flagged:
``superseded_attempt`` (a later attempt exists) or ``duplicate_rollout`` (the same attempt came
earlier). The lines stay rollouts, counted once each; ``drop_flagged`` drops both by default.

What a line is depends on the whole file, and the reader streams (and the engines read byte
ranges in separate processes): the first line that carries ``_ng_attempt_index`` makes the
reader index that file once (:func:`attempt_flag`), per process; a file without the key costs
nothing. Standard input cannot be read twice: its lines are not flagged.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import msgspec
import orjson

from rollcraft.read._facts import _scalar

__all__ = ["ATTEMPT_FLAGS", "LineKeys", "attempt_flag", "attempt_of", "line_keys", "rollout_identity"]

#: The flags of a line that is not its rollout's result.
ATTEMPT_FLAGS = frozenset({"superseded_attempt", "duplicate_rollout"})


def rollout_identity(agent: str | None, task_index: Any, rollout_index: Any, rollout_id: Any) -> str | None:
    """Which rollout a line is an attempt of: the agent with the task and rollout indices, else
    ``_ng_rollout_id``; None when the record says neither."""
    if task_index is not None and rollout_index is not None:
        return f"{agent or ''}\x00{_scalar(task_index)}\x00{_scalar(rollout_index)}"
    if rollout_id is not None:
        return f"id\x00{_scalar(rollout_id)}"
    return None


def attempt_of(value: Any) -> int:
    """``_ng_attempt_index`` as a number (NeMo Gym coerces a numeric string); else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0


class _Keys(msgspec.Struct, gc=False):
    """The fields of a line that say which attempt of which rollout it is (raw: decoded once)."""

    task: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="_ng_task_index")
    rollout: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="_ng_rollout_index")
    attempt: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="_ng_attempt_index")
    rollout_id: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="_ng_rollout_id")
    agent_ref: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"))


_KEYS = msgspec.json.Decoder(_Keys)

#: identity -> (highest attempt, byte offset of its first line).
_Index = dict[str, tuple[int, int]]
#: (source, size, mtime) -> that file's index; None: the file cannot be indexed (stdin).
_INDEXES: dict[tuple[str, int, int], _Index] = {}


def attempt_flag(source: str, offset: int, identity: str | None, attempt: int) -> str | None:
    """``superseded_attempt``, ``duplicate_rollout`` or None for the line at byte ``offset`` of
    ``source`` (a record that carries ``_ng_attempt_index``)."""
    if identity is None:
        return None
    index = _index(source)
    if index is None:
        return None
    best = index.get(identity)
    if best is None:
        return None
    if attempt < best[0]:
        return "superseded_attempt"
    if offset != best[1]:
        return "duplicate_rollout"
    return None


def _index(source: str) -> _Index | None:
    try:
        stat = os.stat(source)
    except (OSError, ValueError):
        return None  # stdin, or a line that names no file
    key = (source, stat.st_size, stat.st_mtime_ns)
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 64:
            _INDEXES.clear()
        index = _INDEXES[key] = _build(source)
    return index


class LineKeys(NamedTuple):
    """Which attempt of which rollout of which task a line is."""

    identity: str | None
    attempt: int
    agent: str | None
    task_index: Any


def line_keys(data: bytes) -> LineKeys | None:
    """A line's :class:`LineKeys` (a partial decode), or None when it is not a JSON object."""
    try:
        keys = _KEYS.decode(data)
        agent = _agent_name(keys.agent_ref)
        task = _value(keys.task)
        identity = rollout_identity(agent, task, _value(keys.rollout), _value(keys.rollout_id))
        return LineKeys(identity, attempt_of(_value(keys.attempt)), agent, task)
    except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError, TypeError):
        return None


def _build(source: str) -> _Index:
    from rollcraft._io import iter_lines

    index: _Index = {}
    for raw in iter_lines([source]):
        keys = line_keys(raw.data)
        if keys is None or keys.identity is None:
            continue
        identity, attempt = keys.identity, keys.attempt
        best = index.get(identity)
        if best is None or attempt > best[0]:
            index[identity] = (attempt, raw.offset)
    return index


def _value(raw: msgspec.Raw) -> Any:
    return orjson.loads(bytes(raw))


def _agent_name(raw: msgspec.Raw) -> str | None:
    ref = _value(raw)
    name = ref.get("name") if isinstance(ref, dict) else None
    return name if isinstance(name, str) and name else None
