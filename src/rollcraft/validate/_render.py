"""Token checks: rows rendered with a local tokenizer's chat template, lengths and truncation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rollcraft._errors import ConfigError, InputError
from rollcraft._tokenizer import load_tokenizer
from rollcraft.validate._row import _Facts, _Row


class _Renderer:
    """Renders conversations with a local tokenizer's chat template and counts tokens."""

    def __init__(self, folder: str, chat_template: str | None) -> None:
        self.tokenizer = _load_tokenizer(folder)
        if chat_template is not None:
            self.tokenizer.chat_template = _read_template(chat_template)
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                f"{folder}: the tokenizer has no chat template; pass --chat-template FILE", key="tokenizer"
            )

    def count(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, generation_prompt: bool
    ) -> int:
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools or None, tokenize=False, add_generation_prompt=generation_prompt
        )
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def _load_tokenizer(folder: str) -> Any:
    # "sequence longer than the model's maximum" on stderr: the report says that itself
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return load_tokenizer(folder)


def _read_template(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the chat template ({exc})", path=path) from None


def _token_check(renderer: _Renderer, facts: _Facts, row: _Row, max_len: int | None) -> int | None:
    """Token length of the row's longest rendering; reports template errors and cut answers."""
    longest: int | None = None
    for context, full in facts.renders:
        try:
            total = renderer.count(full, facts.tools, generation_prompt=False)
            start = renderer.count(context, facts.tools, generation_prompt=True) if context else 0
        except Exception as exc:
            row.add("template_error", f"the chat template fails: {type(exc).__name__}: {str(exc)[:200]}")
            return None
        longest = max(longest or 0, total)
        if max_len is not None and total > max_len:
            lost = "all of it" if start >= max_len else f"{total - max_len} of its {total - start} tokens"
            row.add(
                "answer_truncated",
                f"{total} tokens > max_seq_len {max_len}: "
                f"the final assistant turn (from token {start}) loses {lost}",
            )
    return longest
