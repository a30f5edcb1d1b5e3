"""The core types: a read line is a :class:`Rollout` or a :class:`Quarantined` line.

Messages are plain dicts in the OpenAI Chat Completions shape (the hot path stays on decoded
JSON); the containers around them are small slotted dataclasses. Treat them as read-only: the
reader makes one :class:`Rollout` and one :class:`Conversation` per line, and a frozen
dataclass's ``__init__`` (an ``object.__setattr__`` call per field) cost ten times a plain one
(3 us per rollout, 7% of reading a short record); ``dataclasses.replace`` makes changed copies.

A message is one of::

    {"role": "system" | "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [ToolCall, ...]?, "reasoning_content": str?}
    {"role": "tool", "tool_call_id": str, "content": str}

with ``ToolCall = {"id": str, "type": "function", "function": {"name": str, "arguments": str}}``
(``arguments`` is the JSON text, as the Chat Completions API carries it; the trainer dialects
turn it into what each trainer reads). Tools are nested:
``{"type": "function", "function": {"name", "description", "parameters"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollcraft._json import read_json  # as the reader read it

__all__ = ["Conversation", "Message", "Quarantined", "Rollout", "Tool"]

Message = dict[str, Any]
Tool = dict[str, Any]


@dataclass(slots=True)
class Conversation:
    """A rollout as chat: what the agent was given, what it produced, and the tools it had.

    ``prompt`` holds the instructions and the system/developer/user turns (and any earlier turns
    of ``input``); ``completion`` everything the agent produced, in order, including the later
    user/environment turns of multi-turn environments.
    """

    prompt: list[Message]
    completion: list[Message]
    tools: list[Tool] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """The whole conversation, prompt then completion."""
        return [*self.prompt, *self.completion]


@dataclass(slots=True)
class Rollout:
    """One attempt at a task, normalized, with the facts filters and formatters need.

    ``raw`` is the original line, byte for byte, without its line ending.
    """

    source: str
    line: int
    offset: int
    rollout_id: str
    task_key: str
    rollout_index: int | None
    reward: float
    reward_components: dict[str, float]
    success: bool
    task_type: str
    agent: str | None
    shape: str
    flags: frozenset[str]
    conversation: Conversation
    raw: bytes
    n_messages: int
    n_assistant_turns: int
    n_tool_calls: int
    n_chars: int
    #: True when ``raw`` is no longer the input line (e.g. secrets were redacted): whoever needs
    #: the line again must keep ``raw``, not re-read the input file.
    rewritten: bool = field(default=False, compare=False)

    @property
    def record(self) -> dict[str, Any]:
        """The whole JSON record of ``raw``, decoded on each access (the reader keeps only facts)."""
        value = read_json(self.raw)
        return value if isinstance(value, dict) else {}

    def reward_component(self, name: str) -> float | None:
        """The reward component ``name`` of a multi-reward record (``reward_components``), or None
        when the record has no finite number of that name. What a per-component threshold reads."""
        return self.reward_components.get(name)

    @property
    def uses_tools(self) -> bool:
        """True when the agent made at least one tool call."""
        return self.n_tool_calls > 0

    @property
    def n_turns(self) -> int:
        """Messages in the completion: what the tutorial's ``len(output)`` counts, in chat form."""
        return len(self.conversation.completion)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A line that is not a usable rollout: ``reason`` is a stable code, ``detail`` says more."""

    source: str
    line: int
    offset: int
    reason: str
    detail: str
    raw: bytes = field(repr=False, default=b"")
