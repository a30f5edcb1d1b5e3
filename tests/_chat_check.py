"""An independent structural check of chat rows, and rendering through real chat templates."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ROLES = {"system", "user", "assistant", "tool"}


def parse_tools(tools: Any) -> list[dict[str, Any]]:
    return json.loads(tools) if isinstance(tools, str) else list(tools or [])


def check_messages(messages: list[dict[str, Any]], *, final_assistant: bool = True) -> None:
    """Roles known, call ids paired with results, arguments valid JSON, last message the assistant's."""
    open_calls: set[str] = set()
    for message in messages:
        assert message["role"] in ROLES, message["role"]
        assert isinstance(message["content"], str)
        for call in message.get("tool_calls") or []:
            assert call["type"] == "function" and call["function"]["name"]
            args = call["function"]["arguments"]
            assert isinstance(json.loads(args) if isinstance(args, str) else args, dict)
            open_calls.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_calls, message
            open_calls.discard(message["tool_call_id"])
    if final_assistant:
        assert not open_calls, open_calls
        assert messages[-1]["role"] == "assistant"


def check_tools(tools: list[dict[str, Any]]) -> None:
    for tool in tools:
        assert tool["type"] == "function" and isinstance(tool["function"]["name"], str)
        assert isinstance(tool["function"]["parameters"], dict)


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as templates want them: arguments as objects (Qwen and Llama templates iterate them)."""
    out = []
    for message in messages:
        copy = {k: v for k, v in message.items() if v is not None}
        if copy.get("tool_calls"):
            copy["tool_calls"] = [
                {**c, "function": {**c["function"], "arguments": _obj(c["function"]["arguments"])}}
                for c in copy["tool_calls"]
            ]
        out.append(copy)
    return out


def _obj(args: Any) -> Any:
    return json.loads(args) if isinstance(args, str) else args


TEMPLATES = ("tiny", "qwen3", "qwen2_5", "llama3_1")


@cache
def tokenizer(tmp_root: str, template: str) -> Any:
    import trl
    from transformers import AutoTokenizer

    from rollcraft.tiny import save_tiny_tokenizer

    folder = Path(tmp_root) / "tok"
    if not (folder / "tokenizer_config.json").exists():
        save_tiny_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    if template != "tiny":
        tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / f"{template}.jinja").read_text()
    return tok


def render(tok: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    text = tok.apply_chat_template(template_messages(messages), tools=tools or None, tokenize=False)
    assert isinstance(text, str) and text
    return text
