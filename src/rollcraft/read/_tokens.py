"""The token ids a NeMo Gym record carries, per model call: what an exact-token row is made of.

NeMo Gym's token capture puts three arrays on the output item that carried a model call's
generation: ``prompt_token_ids`` (every token the model saw before it, cumulative: earlier
generations, tool outputs and the chat template's own tokens included),
``generation_token_ids`` and ``generation_log_probs`` (and ``routed_experts`` for MoE
backends, not read here). A call whose content was not captured is a token-only item
``{"type": "message"}`` with no role and no content, which the normalizer turns into no message.

The reader's hot path never decodes these arrays: :func:`token_turns` decodes the rollout's
original line again, on demand, and walks it with the one normalizer
(:class:`rollcraft.read._normalize.Builder`) to say which assistant message of the conversation
each generation belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollcraft._json import read_json
from rollcraft._records import Rollout
from rollcraft.read._normalize import Builder, items_of, nest_tools

__all__ = ["TokenTurn", "contiguous", "token_turns"]


@dataclass(frozen=True, slots=True)
class TokenTurn:
    """One model call's tokens, as its record carries them.

    ``prompt_token_ids``: every token the model saw before this generation (cumulative).
    ``generation_token_ids`` / ``generation_log_probs``: what it generated, one log probability
    per token. ``item``: the index in ``response.output`` of the item that carried them.
    ``message``: the index in ``rollout.conversation.completion`` of the assistant message that
    holds this call's text and tool calls; None when the call's content is not in the record (a
    token-only item) or made no assistant message.
    """

    prompt_token_ids: list[int]
    generation_token_ids: list[int]
    generation_log_probs: list[float]
    item: int
    message: int | None

    @property
    def generated_span(self) -> tuple[int, int]:
        """Where the generation lies in ``prompt_token_ids + generation_token_ids``: [start, end)."""
        start = len(self.prompt_token_ids)
        return start, start + len(self.generation_token_ids)


def token_turns(rollout: Rollout) -> list[TokenTurn]:
    """The token-bearing items of a NeMo Gym rollout's ``response.output``, in order: those with
    non-empty ``generation_token_ids`` (empty when the record carries none, or is not of the NeMo
    Gym shape).

    Each later call's ``prompt_token_ids`` extends the earlier calls' prompt and generation when
    the capture was contiguous (NeMo Gym's projection of the main chain guarantees it): the last
    call's prompt plus its generation is then the whole sequence, and the generated spans are
    the tokens to train on.
    """
    record = read_json(rollout.raw)
    if not isinstance(record, dict):
        return []
    params, response = record.get("responses_create_params"), record.get("response")
    if not isinstance(params, dict) or not isinstance(response, dict):
        return []
    output = items_of(response.get("output"), set())
    if not any(_carries_tokens(item) for item in output):
        return []
    builder = _TokenBuilder("separate", set())
    instructions = params.get("instructions")
    if isinstance(instructions, str) and instructions:
        builder.add_message("system", instructions)
    builder.feed(items_of(params.get("input"), set()))
    builder.end_prompt()
    found = builder.collect(output)
    conversation = builder.finish(nest_tools(params.get("tools"), set()))
    messages = builder.messages
    offset = len(messages) - len(conversation.completion)
    turns = []
    for index, item, position, content in found:
        message = position - offset if content and position < len(messages) else None
        if message is not None and (message < 0 or messages[position]["role"] != "assistant"):
            message = None
        turns.append(
            TokenTurn(
                _ints(item.get("prompt_token_ids")),
                _ints(item.get("generation_token_ids")),
                [float(v) for v in item.get("generation_log_probs") or () if _number(v)],
                index,
                message,
            )
        )
    return turns


class _TokenBuilder(Builder):
    """The normalizer, noting where each token-bearing item's message will be."""

    __slots__ = ()

    def collect(self, items: list[Any]) -> list[tuple[int, dict[str, Any], int, bool]]:
        """Feed ``items``; for each token-bearing one: (its index, the item, the index its
        turn's message will have among all messages, whether it has content of its own)."""
        found = []
        for index, item in enumerate(items):
            if _carries_tokens(item):
                get = item.get
                token_only = get("type") == "message" and get("role") is None and not get("content")
                found.append((index, item, len(self.messages), not token_only))
            self.feed((item,))
        return found


def contiguous(turns: list[TokenTurn]) -> bool:
    """Whether each turn's prompt extends every token before it (the earlier prompt and
    generation), as NeMo Gym's projection of a rollout's main chain guarantees: then the last
    turn's prompt and generation are the whole sequence, with no re-tokenization between calls."""
    seen: list[int] = []
    for turn in turns:
        if turn.prompt_token_ids[: len(seen)] != seen:
            return False
        seen = turn.prompt_token_ids + turn.generation_token_ids
    return True


def _carries_tokens(item: Any) -> bool:
    """An item carrying a generation (NeMo Gym's test: non-empty ``generation_token_ids``)."""
    return isinstance(item, dict) and bool(item.get("generation_token_ids"))


def _ints(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
