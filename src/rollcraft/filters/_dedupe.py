"""The dedupe step (:class:`Dedupe`): drop a rollout whose conversation was seen before, keyed by
:func:`conversation_key`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import orjson
from xxhash import xxh3_128_digest

from rollcraft._compact import FirstSeen
from rollcraft._records import Conversation, Message, Rollout
from rollcraft.filters._base import Filter

__all__ = ["Dedupe", "conversation_key"]


class _DedupeMemory:
    """What a dedupe step and its twin saw: per conversation key, the id of the first rollout
    that reached the step (None while only the twin has seen the key). One dict for both, and
    the key of the rollout being judged computed once for both (the twin asks right after the
    step): before, each kept its own dict and computed the key again."""

    __slots__ = ("_first_id", "_key", "_rollout", "_seen_before", "_stored", "first")

    def __init__(self) -> None:
        self.first = FirstSeen()
        self._rollout: Rollout | None = None
        self._key = b""
        self._seen_before = self._stored = False
        self._first_id: str | None = None

    def key(self, rollout: Rollout) -> tuple[bytes, bool]:
        """The rollout's key, and whether any rollout before it had that key."""
        if rollout is not self._rollout:
            key = conversation_key(rollout.conversation)
            self._rollout, self._key, self._stored = rollout, key, False
            self._seen_before, self._first_id = self.first.lookup(key)
        return self._key, self._seen_before

    def first_id(self, rollout: Rollout) -> str | None:
        """The id of the first rollout with this rollout's key that reached the step."""
        self.key(rollout)
        return self._first_id

    def reached(self, rollout_id: str) -> None:
        """The rollout (just looked up, with no first id) reached the step: it is the first."""
        if self._seen_before:
            self.first[self._key] = rollout_id  # only the twin had seen the key
        else:
            self.first.add(self._key, rollout_id)
        self._stored, self._first_id = True, rollout_id  # the same object checked again: a duplicate

    def seen(self) -> bool:
        """For the twin, after :meth:`key`: whether an earlier rollout had the key; else the key
        is remembered (with no first id unless the step just gave it this rollout's)."""
        if not self._seen_before and not self._stored:
            self.first.add(self._key, None)
        self._rollout = None  # judged: the same object judged again is a later rollout
        return self._seen_before


@dataclass(frozen=True, slots=True)
class Dedupe:
    """Drop a rollout whose conversation was seen before (the first one seen is kept).

    Stateful: one instance remembers what it saw (per distinct conversation, its 16-byte digest
    and the first id: 25 bytes, :class:`rollcraft._compact.FirstSeen`).
    """

    name: ClassVar[str] = "dedupe"
    stateful: ClassVar[bool] = True
    _memory: _DedupeMemory = field(default_factory=_DedupeMemory, init=False, repr=False, compare=False)

    def check(self, rollout: Rollout) -> str | None:
        memory = self._memory
        first = memory.first_id(rollout)
        if first is not None:
            return f"duplicate of {first}"
        memory.reached(rollout.rollout_id)
        return None

    def twin(self) -> Filter:
        """The step as if alone (it sees every rollout), sharing this step's memory."""
        return _DedupeTwin(self._memory)


@dataclass(frozen=True, slots=True)
class _DedupeTwin:
    memory: _DedupeMemory
    name: ClassVar[str] = "dedupe"

    def check(self, rollout: Rollout) -> str | None:
        memory = self.memory
        memory.key(rollout)
        return "duplicate" if memory.seen() else None


def conversation_key(conversation: Conversation) -> bytes:
    """The dedupe key: an XXH3-128 of the canonical JSON of prompt, completion and tools, ids set aside.

    >>> from rollcraft import Conversation
    >>> a = Conversation([{"role": "user", "content": "hi"}], [])
    >>> conversation_key(a) == conversation_key(Conversation([{"role": "user", "content": "hi"}], []))
    True
    """
    payload = {
        "prompt": [_without_ids(m) for m in conversation.prompt],
        "completion": [_without_ids(m) for m in conversation.completion],
        "tools": conversation.tools,
    }
    return xxh3_128_digest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))


def _without_ids(message: Message) -> Message:
    if "tool_call_id" not in message and not message.get("tool_calls"):
        return message
    clean = {k: v for k, v in message.items() if k != "tool_call_id"}
    if message.get("tool_calls"):
        clean["tool_calls"] = [{k: v for k, v in call.items() if k != "id"} for call in message["tool_calls"]]
    return clean
