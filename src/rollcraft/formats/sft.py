"""SFT examples: one row per rollout, the whole conversation with its tools, in a trainer's dialect."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from rollcraft._errors import ConfigError
from rollcraft._records import Message, Rollout
from rollcraft.formats._dialects import ArgumentsMode, Dialect, encode_messages, encode_tools
from rollcraft.formats._rows import count_row, drops_reasoning
from rollcraft.formats._templates import RowShape

__all__ = [
    "SFT_SKIP_REASONS",
    "SftFormat",
    "SftReport",
    "drops_reasoning",
    "left_out",
    "sft_row",
    "sft_rows",
    "sft_skip_reason",
    "turn_rows",
]

#: ``sft --expand``: one row per rollout, or one per assistant turn.
Expand = Literal["none", "turns"]

#: Why a rollout can become no SFT row, whatever the dialect.
SFT_SKIP_REASONS: dict[str, str] = {
    "empty_completion": "the agent produced nothing",
    "no_final_assistant": "the conversation does not end with an assistant message",
    "empty_final_answer": "the last assistant message is empty",
    "unpaired_tool_call": "a tool call never got its result",
    "orphan_tool_output": "a tool result answers no tool call",
}


#: The skip reason of a rollout left out because it did not succeed (see :func:`sft_rows`).
NOT_SUCCESS = "not_success"
#: The skip reason of a rollout left out for its reward (the pipeline's ``sft: {min_reward: X}``).
BELOW_MIN_REWARD = "below_sft_min_reward"


def left_out(rollout: Rollout, *, success_only: bool = True, min_reward: float | None = None) -> str | None:
    """Why ``rollout`` is left out of SFT by choice (before whether it can be a row at all:
    :func:`sft_skip_reason`), or None."""
    if min_reward is not None and rollout.reward < min_reward:
        return BELOW_MIN_REWARD
    if success_only and not rollout.success:
        return NOT_SUCCESS
    return None


@dataclass(slots=True)
class SftReport:
    """Rows written and rollouts skipped (by reason); reports add up across workers.

    ``reasoning_lost``: rows written without the reasoning their rollout had, because the
    dialect has no field for it (openai; see :func:`drops_reasoning`). ``labels``: rows per
    label, for a format that labels its rows (KTO's desirable and undesirable).
    """

    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    reasoning_lost: int = 0
    labels: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def label(self, label: str) -> None:
        self.labels[label] += 1

    def __add__(self, other: SftReport) -> SftReport:
        return SftReport(
            self.rows + other.rows,
            self.skipped + other.skipped,
            self.reasoning_lost + other.reasoning_lost,
            self.labels + other.labels,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rows": self.rows,
            "skipped": dict(sorted(self.skipped.items())),
            "reasoning_lost": self.reasoning_lost,
        }
        if self.labels:
            data["labels"] = dict(sorted(self.labels.items()))
        return data


@dataclass(frozen=True, slots=True)
class SftFormat:
    """The SFT row format (:class:`rollcraft.formats._rows.RowFormat`): the whole conversation
    with its tools (:func:`sft_row`), of the rollouts that succeeded (``success_only``) and reach
    ``min_reward`` (when given)."""

    dialect: Dialect = "trl"
    arguments: ArgumentsMode = "string"
    success_only: bool = True
    min_reward: float | None = None
    shape: RowShape | None = None
    #: ``turns``: one row per assistant turn (:func:`turn_rows`); ``none``: one per rollout.
    expand: Expand = "none"
    name: str = "sft"

    def __post_init__(self) -> None:
        if self.expand == "turns" and self.dialect == "nemo-rl":
            raise ConfigError(
                "expand turns writes prompt/completion rows (trl) or weighted messages (openai): "
                "nemo-rl trains on every assistant message of a row",
                key="expand",
            )

    def left_out(self, rollout: Rollout) -> str | None:
        return left_out(rollout, success_only=self.success_only, min_reward=self.min_reward)

    def label(self, rollout: Rollout) -> str | None:
        return None

    def rows(self, rollout: Rollout) -> list[dict[str, Any]]:
        if self.expand == "turns":
            return turn_rows(rollout, self.dialect, arguments=self.arguments, shape=self.shape)
        return [sft_row(rollout, self.dialect, arguments=self.arguments, shape=self.shape)]


def sft_skip_reason(rollout: Rollout) -> str | None:
    """Why ``rollout`` cannot be an SFT example (a key of :data:`SFT_SKIP_REASONS`), or None."""
    completion = rollout.conversation.completion
    if not completion:
        return "empty_completion"
    last = completion[-1]
    if last["role"] != "assistant" or last.get("tool_calls"):
        return "no_final_assistant"
    if not last["content"].strip():
        return "empty_final_answer"
    for flag in ("unpaired_tool_call", "orphan_tool_output"):
        if flag in rollout.flags:
            return flag
    return None


def sft_row(
    rollout: Rollout,
    dialect: Dialect = "trl",
    *,
    arguments: ArgumentsMode = "string",
    shape: RowShape | None = None,
) -> dict[str, Any]:
    """The SFT row of one rollout (call :func:`sft_skip_reason` first).

    ``shape``: the row shape a chat template needs (:func:`rollcraft.formats.probe_template`;
    it sets ``arguments``); None writes the dialect's plain rows.

    * ``trl``: ``{"messages", "tools", "reward", "task_type", "rollout_id"}``
    * ``openai``: ``{"messages", "tools"}`` and nothing else (no reasoning: :func:`drops_reasoning`)
    * ``nemo-rl``: ``{"messages", "tools", "task_name"}``
    """
    conversation = rollout.conversation
    messages = encode_messages(conversation.messages, dialect, arguments=arguments, shape=shape)
    tools = encode_tools(conversation.tools, dialect, shape)
    if dialect == "openai":
        return {"messages": messages, "tools": tools}
    if dialect == "nemo-rl":
        return {"messages": messages, "tools": tools, "task_name": rollout.task_type}
    return {
        "messages": messages,
        "tools": tools,
        "reward": rollout.reward,
        "task_type": rollout.task_type,
        "rollout_id": rollout.rollout_id,
    }


def turn_rows(
    rollout: Rollout,
    dialect: Dialect = "trl",
    *,
    arguments: ArgumentsMode = "string",
    shape: RowShape | None = None,
) -> list[dict[str, Any]]:
    """One row per assistant turn of ``rollout`` (``sft --expand turns``), for reasoning models.

    Thinking templates (Qwen3, Nemotron, DeepSeek-R1 style) drop the reasoning of earlier turns
    when they render a conversation, so a whole trajectory in one row trains on reasoning the
    model never sees at inference. Here each assistant message of the completion is a row: the
    conversation before it is the prompt, its earlier assistant turns without their reasoning (as
    the template shows them), and the turn itself, with its reasoning, the completion. A turn
    with nothing before it (a record whose agent spoke first) gives no row: a trainer needs a
    prompt to condition on.

    * ``trl``: ``{"prompt", "completion", "tools", "reward", "task_type", "rollout_id", "turn"}``
      (TRL's conversational prompt-completion form: the loss is on the completion only).
    * ``openai``: ``{"messages", "tools"}`` with ``"weight": 0`` on the earlier assistant turns
      and ``1`` on the last (OpenAI's fine-tuning trains only weight-1 messages).
    """
    conversation = rollout.conversation
    messages = conversation.messages
    first = len(conversation.prompt)
    tools = encode_tools(conversation.tools, dialect, shape)
    rows: list[dict[str, Any]] = []
    for at in range(first, len(messages)):
        if messages[at]["role"] != "assistant" or at == 0:  # a turn with nothing before it is no row
            continue
        history = [_unreasoned(m) for m in messages[:at]]
        if dialect == "openai":
            encoded = encode_messages([*history, messages[at]], dialect, arguments=arguments, shape=shape)
            weighted = [m | {"weight": 0} if m["role"] == "assistant" else m for m in encoded[:-1]]
            rows.append({"messages": [*weighted, encoded[-1] | {"weight": 1}], "tools": tools})
            continue
        rows.append(
            {
                "prompt": encode_messages(history, dialect, arguments=arguments, shape=shape),
                "completion": encode_messages([messages[at]], dialect, arguments=arguments, shape=shape),
                "tools": tools,
                "reward": rollout.reward,
                "task_type": rollout.task_type,
                "rollout_id": rollout.rollout_id,
                "turn": len(rows),
            }
        )
    return rows


def _unreasoned(message: Message) -> Message:
    """An assistant message without its reasoning (as a thinking template shows an earlier turn)."""
    if message["role"] != "assistant" or not message.get("reasoning_content"):
        return message
    return {k: v for k, v in message.items() if k != "reasoning_content"}


def sft_rows(
    rollouts: Iterable[Rollout],
    dialect: Dialect = "trl",
    *,
    report: SftReport | None = None,
    arguments: ArgumentsMode = "string",
    include_failures: bool = False,
    shape: RowShape | None = None,
) -> Iterator[bytes]:
    """Encoded SFT lines (with their newline) of the successful rollouts a dialect can express.

    A rollout that did not succeed is left out and counted as ``not_success`` (the pipeline's
    ``sft: {success_only: true}``; ``rollcraft sft`` without ``--include-failures``);
    ``include_failures=True`` keeps it. ``shape``: see :func:`sft_row`. ``report.reasoning_lost``
    counts the rows written without their rollout's reasoning (see :func:`drops_reasoning`).

    >>> from rollcraft import read_rollouts, Rollout
    >>> lines = list(sft_rows(r for r in read_rollouts(["examples/rollouts"]) if isinstance(r, Rollout)))
    """
    counts = report if report is not None else SftReport()
    fmt = SftFormat(dialect, arguments, success_only=not include_failures, shape=shape)
    for rollout in rollouts:
        if count_row(fmt, rollout, sft_skip_reason(rollout), counts):
            for row in fmt.rows(rollout):
                counts.rows += 1
                yield orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
