"""The row being checked (where its findings go) and the facts it contributes to the statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollcraft.validate._codes import _Findings


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
    empty_tools: bool = False  # tools given as an empty list (not absent)
    prompt_messages: int = 0  # DPO, KTO, prompt-completion SFT: how many messages are the prompt
    label: bool | None = None  # KTO
    turn: int | None = None  # SFT rows of ``sft --expand turns``
    rollout_id: str | None = None  # prompt-completion rows
    completion: list[dict[str, Any]] = field(default_factory=list)  # prompt-completion rows
    n_tokens: int | None = None  # exact-token rows (``sft --format tokens``)
