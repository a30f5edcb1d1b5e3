"""The chat-template probe (real TRL-bundled templates on a tiny local tokenizer) and rows shaped
by it: arguments, empty tools and reasoning as the template reads them; no shape, today's rows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.formats import (
    DEFAULT_SHAPE,
    DpoOptions,
    RowShape,
    dpo_rows,
    probe_template,
    probe_tokenizer,
    sft_row,
    sft_skip_reason,
)
from tests.conftest import REAL_DIR

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(200), vocab_size=300)


def trl_template(name: str) -> Path:
    import trl

    return Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"


@pytest.mark.parametrize(
    ("template", "arguments", "empty_tools", "reasoning", "drops", "limits"),
    [
        ("qwen3", "string", "list", "reasoning_content", (), ()),
        ("qwen2_5", "object", "list", "inline", (), ()),  # tojson of a string: double encoding
        ("qwen3_6", "object", "list", "reasoning_content", (), ("needs_user_turn",)),  # fails on a string
        ("nemotron_3_nano", "object", "list", "reasoning_content", (), ()),
        ("llama3_1", "object", "none", "inline", (), ("one_call_per_turn",)),
        (
            "gptoss",
            "object",
            "list",
            "reasoning_content",
            ("extra_tool_calls",),
            ("content_with_reasoning_on_call",),
        ),
        ("phi3", "object", "list", "inline", ("tool_calls", "tool_results", "tool_definitions"), ()),
        ("gemma3", "string", "list", "inline", (), ("no_tool_role", "needs_user_turn")),
        ("deepseekv3", "string", "list", "inline", ("tool_definitions", "reasoning"), ()),
    ],
)
def test_probe_of_real_templates(
    tok_dir: Path,
    template: str,
    arguments: str,
    empty_tools: str,
    reasoning: str,
    drops: tuple[str, ...],
    limits: tuple[str, ...],
) -> None:
    probe = probe_template(tok_dir, trl_template(template))
    assert probe.shape == RowShape(arguments, empty_tools, reasoning)  # type: ignore[arg-type]
    assert (probe.drops, probe.limits) == (drops, limits)
    assert probe.to_dict()["arguments"] == arguments and len(probe.to_dict()["template_sha256"]) == 16


def test_probe_of_the_tiny_template_is_the_default_shape(tok_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    before = tokenizer.chat_template
    assert probe_tokenizer(tokenizer).shape == DEFAULT_SHAPE
    probe_template(tokenizer, trl_template("qwen2_5"))
    assert tokenizer.chat_template == before  # the override applies to a copy


def test_probe_without_a_template_is_a_config_error(tok_dir: Path) -> None:
    from transformers import AutoTokenizer

    from rollcraft._errors import ConfigError

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        probe_template(tokenizer)


@pytest.fixture(scope="module")
def rollouts() -> list[Rollout]:
    found = [
        r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout) and sft_skip_reason(r) is None
    ]
    assert len(found) > 300
    return found


def _with(rollouts: list[Rollout], test: Any) -> Rollout:
    return next(r for r in rollouts if test(r.conversation))


def test_no_shape_and_the_default_shape_write_todays_bytes(rollouts: list[Rollout]) -> None:
    for rollout in rollouts[::7]:
        for dialect in ("trl", "openai", "nemo-rl"):
            plain = sft_row(rollout, dialect)  # type: ignore[arg-type]
            assert json.dumps(sft_row(rollout, dialect, shape=DEFAULT_SHAPE)) == json.dumps(plain)  # type: ignore[arg-type]


def test_shaped_rows_carry_what_the_template_reads(rollouts: list[Rollout]) -> None:
    called = _with(rollouts, lambda c: any(m.get("tool_calls") for m in c.messages))
    shape = RowShape("object", "none", "thinking")
    row = sft_row(called, "trl", shape=shape)
    calls = [c for m in row["messages"] for c in m["tool_calls"] or []]
    assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)
    assert all(
        list(m) == ["role", "content", "tool_calls", "tool_call_id", "thinking"] for m in row["messages"]
    )
    bare = _with(rollouts, lambda c: not c.tools)
    assert sft_row(bare, "trl", shape=shape)["tools"] is None
    assert sft_row(bare, "nemo-rl", shape=shape)["tools"] is None
    assert sft_row(bare, "openai", shape=shape)["tools"] == []  # the API's format is fixed


def test_inline_reasoning(rollouts: list[Rollout]) -> None:
    thinking = _with(rollouts, lambda c: any(m.get("reasoning_content") for m in c.messages))
    row = sft_row(thinking, "trl", shape=RowShape(reasoning="inline"))
    source = [m for m in thinking.conversation.messages if m.get("reasoning_content")]
    inlined = [m for m in row["messages"] if m["content"].startswith("<think>\n")]
    assert len(inlined) == len(source) and all(m["reasoning_content"] is None for m in row["messages"])
    assert inlined[0]["content"].startswith(f"<think>\n{source[0]['reasoning_content']}\n</think>")


def test_dpo_pairs_take_the_shape() -> None:
    real = [r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout)]
    plain = [json.loads(line) for line in dpo_rows(copy.deepcopy(real), DpoOptions())]
    shaped = [json.loads(line) for line in dpo_rows(real, DpoOptions(shape=RowShape("object", "none")))]
    assert plain and len(shaped) == len(plain)
    for a, b in zip(plain, shaped, strict=True):
        for side in ("prompt", "chosen", "rejected"):
            for m_a, m_b in zip(a[side], b[side], strict=True):
                for c_a, c_b in zip(m_a["tool_calls"] or [], m_b["tool_calls"] or [], strict=True):
                    assert json.loads(c_a["function"]["arguments"]) == c_b["function"]["arguments"]
        assert b["tools"] is None if a["tools"] == "[]" else b["tools"] == a["tools"]
