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
    that reached the step (None while only the twin has seen the key). One table for both, and
    one key and one search per rollout for both (the twin asks right after the step)."""

    __slots__ = ("_present", "_rollout", "first")

    def __init__(self) -> None:
        self.first = FirstSeen()
        self._rollout: Rollout | None = None
        self._present = False

    def claim(self, rollout: Rollout, rollout_id: str | None) -> str | None:
        """The id of the first rollout with this one's key that reached the step; the key is
        this rollout's (``rollout_id``: it reached the step) when it has none yet."""
        present, first = self.first.claim(conversation_key(rollout.conversation), rollout_id)
        self._rollout, self._present = rollout, present
        return first

    def seen(self, rollout: Rollout) -> bool:
        """For the twin: whether a rollout before this one had its key (remembered if not)."""
        if rollout is not self._rollout:  # the step did not see it (an earlier step dropped it)
            self.claim(rollout, None)
        self._rollout = None  # judged: the same object judged again is a later rollout
        return self._present


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
        first = self._memory.claim(rollout, rollout.rollout_id)
        return None if first is None else f"duplicate of {first}"

    def twin(self) -> Filter:
        """The step as if alone (it sees every rollout), sharing this step's memory."""
        return _DedupeTwin(self._memory)


@dataclass(frozen=True, slots=True)
class _DedupeTwin:
    memory: _DedupeMemory
    name: ClassVar[str] = "dedupe"

    def check(self, rollout: Rollout) -> str | None:
        return "duplicate" if self.memory.seen(rollout) else None


def conversation_key(conversation: Conversation) -> bytes:
    """The dedupe key: an XXH3-128 of the canonical JSON of prompt, completion and tools, ids set aside.

    >>> from rollcraft import Conversation
    >>> a = Conversation([{"role": "user", "content": "hi"}], [])
    >>> conversation_key(a) == conversation_key(Conversation([{"role": "user", "content": "hi"}], []))
    True
    """
    prompt, completion = conversation.prompt, conversation.completion
    for message in (*prompt, *completion):  # copies without ids, where one has any (most have none)
        if "tool_call_id" in message or "tool_calls" in message:
            prompt, completion = [_without_ids(m) for m in prompt], [_without_ids(m) for m in completion]
            break
    payload = orjson.dumps((prompt, completion, conversation.tools), option=orjson.OPT_SORT_KEYS)
    return xxh3_128_digest(payload)


def _without_ids(message: Message) -> Message:
    if "tool_call_id" not in message and not message.get("tool_calls"):
        return message
    clean = {k: v for k, v in message.items() if k != "tool_call_id"}
    if message.get("tool_calls"):
        clean["tool_calls"] = [{k: v for k, v in call.items() if k != "id"} for call in message["tool_calls"]]
    return clean
