"""Exact-token SFT rows (``rollcraft sft --format tokens``): the tokens the model saw and produced.

A NeMo Gym record with token capture carries, per model call, every token the model saw
(``prompt_token_ids``, cumulative) and what it generated (``generation_token_ids``):
:func:`rollcraft.read._tokens.token_turns`. When the calls form one unbroken sequence
(:func:`rollcraft.read._tokens.contiguous`: each call's prompt extends everything before it), the last
call's prompt and generation are the whole sequence, and the generated spans are the tokens to
train on. A row is that sequence, pre-tokenized as TRL's ``SFTTrainer`` takes it::

    {"input_ids": [...], "assistant_masks": [0, 0, ..., 1, 1, ...], "reward", "task_type", "rollout_id"}

``assistant_masks`` is 1 on generated tokens and 0 on the rest (the prompt, tool outputs, the
chat template's own tokens). ``SFTTrainer`` recognizes a dataset with ``input_ids`` as tokenized,
builds ``labels`` from ``assistant_masks`` (-100 where it is 0) whatever ``completion_only_loss``
says, and drops the other columns: training sees exactly the ids the model produced, with no
re-tokenization of text.

A rollout without token ids (``no_token_ids``), or whose calls do not form one sequence
(``token_calls_not_contiguous``: a context that was rewritten between calls), is left out and
counted. So is a subagent's or a branch's conversation of ``--trajectory branches``
(``tokens_main_chain_only``): the captured ids are the main chain's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from rollcraft._records import Rollout
from rollcraft.formats._dialects import Dialect
from rollcraft.formats.sft import left_out as sft_left_out
from rollcraft.read._tokens import TokenTurn, contiguous, token_turns

__all__ = ["TOKENS", "TOKEN_SKIP_REASONS", "TokenFormat", "token_row"]

#: The ``--format`` value (and a pipeline's ``sft: {format: tokens}``) of exact-token rows.
TOKENS: Final = "tokens"

NO_TOKEN_IDS = "no_token_ids"
NOT_CONTIGUOUS = "token_calls_not_contiguous"
MAIN_CHAIN_ONLY = "tokens_main_chain_only"

#: Why a rollout gives no exact-token row (besides the reasons of every SFT row).
TOKEN_SKIP_REASONS: dict[str, str] = {
    NO_TOKEN_IDS: "the record carries no token ids (token capture was off)",
    NOT_CONTIGUOUS: "a model call's prompt does not extend the tokens before it",
    MAIN_CHAIN_ONLY: "a subagent's or branch's conversation: the captured ids are the main chain's",
}


def token_row(rollout: Rollout, turns: list[TokenTurn]) -> dict[str, Any]:
    """The exact-token row of ``rollout`` from its contiguous ``turns`` (see the module docstring)."""
    last = turns[-1]
    input_ids = last.prompt_token_ids + last.generation_token_ids
    mask = [0] * len(input_ids)
    for turn in turns:
        start, end = turn.generated_span
        mask[start:end] = [1] * (end - start)
    return {
        "input_ids": input_ids,
        "assistant_masks": mask,
        "reward": rollout.reward,
        "task_type": rollout.task_type,
        "rollout_id": rollout.rollout_id,
    }


@dataclass(slots=True)
class TokenFormat:
    """The exact-token row format (:class:`rollcraft.formats._rows.RowFormat`): one row per
    rollout that succeeded (``success_only``) and reaches ``min_reward``, as SFT rows are chosen."""

    success_only: bool = True
    min_reward: float | None = None
    name: str = "sft"
    #: For the row writer's reasoning count: token rows carry whatever the model generated.
    dialect: Dialect = "trl"
    #: The record's own rollout seen last (the conversations of a trajectory share its line).
    _seen: Rollout | None = field(default=None, repr=False, compare=False)
    #: The rollout whose turns were decoded last, and its turns (once for ``left_out`` and ``rows``).
    _last: tuple[Rollout, list[TokenTurn]] | None = field(default=None, repr=False, compare=False)

    def left_out(self, rollout: Rollout) -> str | None:
        seen = self._seen
        if seen is not None and seen is not rollout and seen.raw is rollout.raw:
            return MAIN_CHAIN_ONLY  # a conversation --trajectory branches added after its rollout
        self._seen = rollout
        reason = sft_left_out(rollout, success_only=self.success_only, min_reward=self.min_reward)
        if reason is not None:
            return reason
        turns = self._turns(rollout)
        if not turns:
            return NO_TOKEN_IDS
        if not contiguous(turns):
            return NOT_CONTIGUOUS
        return None

    def label(self, rollout: Rollout) -> str | None:
        return None

    def rows(self, rollout: Rollout) -> list[dict[str, Any]]:
        return [token_row(rollout, self._turns(rollout))]

    def _turns(self, rollout: Rollout) -> list[TokenTurn]:
        last = self._last
        if last is not None and last[0] is rollout:
            return last[1]
        turns = token_turns(rollout)
        self._last = (rollout, turns)
        return turns
