"""The tiny local tokenizer and model: built offline, tool-capable template, reloadable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rollcraft.tiny import EOS_TOKEN, save_tiny_model, save_tiny_tokenizer

ADD = {"name": "add", "description": "Add.", "parameters": {"type": "object"}}
TOOLS = [{"type": "function", "function": ADD}]


def _call(arguments: object) -> dict[str, object]:
    return {"id": "c1", "type": "function", "function": {"name": "add", "arguments": arguments}}


def _conversation(arguments: object) -> list[dict[str, object]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 12 + 30?"},
        {"role": "assistant", "content": "", "tool_calls": [_call(arguments)]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "42"},
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    tokenizer_dir = save_tiny_tokenizer(root / "tok")
    return save_tiny_model(root / "model", tokenizer_dir=tokenizer_dir)


def test_tokenizer_splits_digits_and_knows_specials(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    assert [t for t in tok.tokenize("1234") if t.strip("Ġ")] == ["1", "2", "3", "4"]
    assert tok.eos_token == EOS_TOKEN
    assert tok.pad_token == "<|endoftext|>"
    assert len(tok.encode("<tool_call>", add_special_tokens=False)) == 1


def test_template_renders_tools_and_calls_with_dict_or_string_arguments(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    as_dict = tok.apply_chat_template(_conversation({"a": 12, "b": 30}), tools=TOOLS, tokenize=False)
    text_args = json.dumps({"a": 12, "b": 30})
    as_text = tok.apply_chat_template(_conversation(text_args), tools=TOOLS, tokenize=False)
    assert as_dict == as_text
    assert '<tool_call>{"name": "add", "arguments": {"a": 12, "b": 30}}</tool_call><|im_end|>' in as_dict
    assert '"name": "add"' in as_dict.split("<|im_start|>user")[0]
    assert "<|im_start|>tool\n42<|im_end|>" in as_dict


def test_assistant_mask_covers_what_the_assistant_emits(tiny: Path) -> None:
    from transformers import AutoTokenizer
    from trl.chat_template_utils import (
        is_chat_template_prefix_preserving,
        is_chat_template_stop_token_trained,
    )

    tok = AutoTokenizer.from_pretrained(tiny)
    out = tok.apply_chat_template(
        _conversation({"a": 1}),
        tools=TOOLS,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    trained = tok.decode([i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m])
    call = '<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'
    assert trained == f"{call}<|im_end|>\n42<|im_end|>\n"
    assert is_chat_template_stop_token_trained(tok)
    assert is_chat_template_prefix_preserving(tok)


def test_model_is_small_reloads_and_generates(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 100_000 < model.num_parameters() < 250_000
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 5
