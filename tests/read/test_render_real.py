"""Every normalized real conversation renders through real tool-capable chat templates and keeps
every tool call, tool result and final answer of its raw record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.read._normalize import content_text
from tests._chat_check import render, tokenizer
from tests.conftest import REAL_DIR


def _raw_items(record: dict[str, Any]) -> list[dict[str, Any]]:
    params = record["responses_create_params"]
    items = params["input"] if isinstance(params.get("input"), list) else []
    output = record["response"].get("output") or []
    if output and all(isinstance(x, list) for x in output):
        output = output[-1]
    return [i for i in [*items, *output] if isinstance(i, dict)]


def _expected(record: dict[str, Any]) -> tuple[list[str], list[str], str]:
    items = _raw_items(record)
    calls = [i["name"] for i in items if i.get("type") == "function_call"]
    results = [
        i["output"] if isinstance(i["output"], str) else content_text(i["output"], set())
        for i in items
        if i.get("type") == "function_call_output"
    ]
    answers = [content_text(i.get("content"), set()) for i in items if i.get("role") == "assistant"]
    return calls, results, answers[-1] if answers else ""


@pytest.mark.parametrize("template", ["qwen3", "tiny"])
def test_every_real_conversation_renders_and_keeps_calls_results_and_answer(
    template: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tok = tokenizer(str(tmp_path_factory.getbasetemp()), template)
    rendered = 0
    for rollout in read_rollouts([str(REAL_DIR)]):
        if not isinstance(rollout, Rollout):
            continue
        conversation = rollout.conversation
        messages = conversation.messages
        calls, results, answer = _expected(rollout.record)
        got_calls = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or []]
        got_results = [m["content"] for m in messages if m["role"] == "tool"]
        assert got_calls == calls and got_results == results, rollout.source
        if not messages:
            continue
        text = render(tok, messages, conversation.tools)
        for name in calls:
            assert name in text
        for result in results:
            assert result in text
        # Qwen3's template drops inline <think> reasoning of past turns by design: the answer is what follows
        assert answer.split("</think>")[-1].strip() in text
        for call in (c for m in messages for c in m.get("tool_calls") or []):
            assert json.loads(call["function"]["arguments"]) is not None
        rendered += 1
    assert rendered == 400  # 405 rollouts; 5 (toolsandbox) have neither prompt nor completion
