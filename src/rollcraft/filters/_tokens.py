"""The token step (:class:`MaxTokens`) and :func:`count_tokens`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from rollcraft._records import Conversation, Message, Rollout
from rollcraft._tokenizer import cached_tokenizer


@dataclass(frozen=True, slots=True)
class MaxTokens:
    """Keep rollouts of at most ``maximum`` tokens with the local Hugging Face tokenizer in ``tokenizer``.

    The conversation is rendered with the tokenizer's chat template (tools included) when it has
    one that renders it, else its texts are joined with newlines. Needs ``transformers``.
    """

    maximum: int
    tokenizer: str
    name: ClassVar[str] = "max_tokens"

    def check(self, rollout: Rollout) -> str | None:
        n = count_tokens(rollout.conversation, cached_tokenizer(self.tokenizer))
        return None if n <= self.maximum else f"{n} tokens > {self.maximum}"


def count_tokens(conversation: Conversation, tokenizer: Any) -> int:
    """Tokens of a conversation as a chat template renders it (or of its texts joined)."""
    text = _rendered(conversation, tokenizer)
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _rendered(conversation: Conversation, tokenizer: Any) -> str:
    if getattr(tokenizer, "chat_template", None):
        tools = conversation.tools or None
        with contextlib.suppress(Exception):  # a template may reject any message shape
            return str(tokenizer.apply_chat_template(conversation.messages, tools=tools, tokenize=False))
    return "\n".join(_message_text(m) for m in conversation.messages)


def _message_text(message: Message) -> str:
    parts = [message.get("reasoning_content") or "", message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        parts.append(f"{call['function']['name']}({call['function']['arguments']})")
    return "\n".join(p for p in parts if p)
