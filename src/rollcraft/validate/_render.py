"""Token checks: rows rendered with a local tokenizer's chat template exactly as ``train`` renders
them, lengths and truncation, and what the template does to each row.

The tokenizer goes through the same preparation as ``train``'s (``rollcraft.train._data``): the
template TRL renders with (its training variant for SFT with assistant-only loss), probed once
(:func:`rollcraft.formats.probe_tokenizer`), rows read as ``load_rows`` reads them and prepared by
:func:`~rollcraft.train._data.template_ready`. Each row then gets the findings of
:mod:`rollcraft.validate._template` (double encoding, what the template drops or refuses, the
empty-tools boilerplate, DPO prompt prefixes, assistant masks).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rollcraft._errors import ConfigError
from rollcraft._tokenizer import load_tokenizer
from rollcraft.formats._templates import TemplateProbe, probe_tokenizer, read_chat_template
from rollcraft.train._data import (
    assistant_masks_possible,
    prepare_tools,
    rendering_template,
    template_ready,
    trainer_messages,
)
from rollcraft.validate._row import _Facts, _Row
from rollcraft.validate._template import limit_finding, row_findings

Messages = list[dict[str, Any]]


class _Renderer:
    """Renders conversations as ``train`` does and counts tokens."""

    def __init__(self, folder: str, chat_template: str | None, kind: str = "sft") -> None:
        tokenizer = _load_tokenizer(folder)
        if chat_template is not None:
            tokenizer.chat_template = read_chat_template(chat_template)
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"{folder}: the tokenizer has no chat template; pass --chat-template FILE", key="tokenizer"
            )
        self.kind = kind
        self.name = os.path.basename(os.path.normpath(chat_template or folder))
        self.masks = kind == "sft" and assistant_masks_possible(tokenizer)
        self.inference_template = str(tokenizer.chat_template)  # before TRL's training variant
        tokenizer.chat_template = rendering_template(tokenizer, kind, self.masks)
        self.probe: TemplateProbe = probe_tokenizer(tokenizer)
        self.as_written = tokenizer.apply_chat_template  # without train's preparation
        self.tokenizer = template_ready(tokenizer, self.probe.shape)

    def text(self, messages: Messages, tools: Any, *, generation_prompt: bool) -> str:
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
        )
        return str(text)

    def inference_text(self, messages: Messages, tools: Any) -> str:
        """The text the tokenizer's own template (not TRL's training variant) renders, as at inference."""
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, chat_template=self.inference_template
        )
        return str(text)

    def ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def assistant_mask(self, messages: Messages, tools: Any) -> list[int]:
        """TRL's assistant mask of a rendering (``return_assistant_tokens_mask``), token by token."""
        out = self.tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(out["assistant_masks"])


def _load_tokenizer(folder: str) -> Any:
    # "sequence longer than the model's maximum" on stderr: the report says that itself
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return load_tokenizer(folder)


def _token_check(renderer: _Renderer, facts: _Facts, row: _Row, max_len: int | None) -> int | None:
    """Token length of the row's longest rendering; reports template errors, cut answers and what
    the template does to the row."""
    longest: int | None = None
    tools = prepare_tools(facts.tools)
    for context, full in facts.renders:
        prepared, prompt = trainer_messages(full), trainer_messages(context)
        try:
            text = renderer.text(prepared, tools, generation_prompt=False)
            start_text = renderer.text(prompt, tools, generation_prompt=True) if prompt else ""
        except Exception as exc:  # the template's own message is the finding
            code, message = limit_finding(renderer.probe, full, exc)
            row.add(code, message)
            return None
        ids = renderer.ids(text)
        start_ids = renderer.ids(start_text) if start_text else []
        start = _common_prefix(start_ids, ids)
        tokens = _prompt_tokens(renderer, prepared, tools, ids, facts.prompt_messages)
        row_findings(renderer, row, full, facts.tools, text, tokens, empty_tools=facts.empty_tools)
        total = len(ids)
        longest = max(longest or 0, total)
        if max_len is not None and total > max_len:
            lost = "all of it" if start >= max_len else f"{total - max_len} of its {total - start} tokens"
            row.add(
                "answer_truncated",
                f"{total} tokens > max_seq_len {max_len}: "
                f"the final assistant turn (from token {start}) loses {lost}",
            )
    return longest


def _prompt_tokens(
    renderer: _Renderer, prepared: Messages, tools: Any, ids: list[int], count: int
) -> tuple[list[int], int]:
    """The row's prompt (DPO, KTO, prompt-completion SFT) as TRL tokenizes it (with the generation
    prompt) and how much of it prompt+completion shares (``[]``, 0 without a prompt)."""
    if not count:
        return [], 0
    prompt_ids = renderer.ids(renderer.text(prepared[:count], tools, generation_prompt=True))
    return prompt_ids, _common_prefix(prompt_ids, ids)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
