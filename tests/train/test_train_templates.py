"""``train`` on real TRL-bundled chat templates: it renders through the probed row shape, so rows
``validate`` passes train (JSON-text arguments on a template that needs mappings), and a row the
template refuses stops training early with validate's finding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ConfigError
from rollcraft.formats import RowShape
from rollcraft.train import TrainConfig, train_sft
from rollcraft.train._data import prepare_messages, prepare_tools, template_ready

pytest.importorskip("trl")


def trl_template(name: str) -> str:
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_model(root / "model", tokenizer_dir=save_tiny_tokenizer(root / "tok"))


def with_template(base: Path, folder: Path, template: str) -> Path:
    from transformers import AutoTokenizer

    shutil.copytree(base, folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = trl_template(template)
    tokenizer.save_pretrained(str(folder))
    return folder


def msg(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "tool_calls": None,
        "tool_call_id": None,
        "reasoning_content": None,
    } | extra


def call(call_id: str, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city})
    return {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": arguments}}


TOOLS = json.dumps([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])


def rows(calls_per_turn: int = 1) -> list[dict[str, Any]]:
    out = []
    for i in range(6):
        calls = [call(f"c{i}-{k}", f"City{k}") for k in range(calls_per_turn)]
        results = [msg("tool", f"sunny {k}", tool_call_id=c["id"]) for k, c in enumerate(calls)]
        turns = [msg("user", f"Weather {i}?"), msg("assistant", "", tool_calls=calls), *results]
        out.append({"messages": [*turns, msg("assistant", f"Sunny, {i}.")], "tools": TOOLS})
    out.append({"messages": [msg("user", "hi"), msg("assistant", "Hello.")], "tools": "[]"})
    return out


def write(path: Path, data: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path


def quick() -> TrainConfig:
    return TrainConfig(max_steps=2, batch_size=4, learning_rate=1e-3, logging_steps=1, max_length=2048)


def test_json_text_arguments_train_on_a_template_that_needs_mappings(base: Path, tmp_path: Path) -> None:
    model = with_template(base, tmp_path / "qwen36", "qwen3_6")  # fails on JSON-text arguments
    result = train_sft(write(tmp_path / "sft.jsonl", rows()), str(model), tmp_path / "out", config=quick())
    assert result.global_step == 2 and result.rows == 7


def test_a_row_the_template_refuses_stops_training_with_the_finding(base: Path, tmp_path: Path) -> None:
    model = with_template(base, tmp_path / "llama", "llama3_1")  # one tool call per turn
    data = write(tmp_path / "sft.jsonl", rows(calls_per_turn=2))
    with pytest.raises(ConfigError, match="template_limit: the template renders one tool call per turn"):
        train_sft(data, str(model), tmp_path / "out", config=quick())
    assert not (tmp_path / "out").exists()


def test_preparation_follows_the_shape() -> None:
    assert prepare_tools("[]") is None and prepare_tools([]) is None and prepare_tools(TOOLS)
    message = msg("assistant", "ok", tool_calls=[call("c", "Rome")], reasoning_content="think")
    as_text = prepare_messages([message], RowShape("string", reasoning="thinking"))[0]
    assert as_text == {
        "role": "assistant",
        "content": "ok",
        "tool_calls": [call("c", "Rome")],
        "thinking": "think",
    }
    as_object = prepare_messages(
        [{**message, "reasoning_content": None, "thinking": "t"}], RowShape("object")
    )[0]
    assert as_object["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}
    assert as_object["reasoning_content"] == "t" and "thinking" not in as_object


def test_empty_tools_go_in_as_none(base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.chat_template = trl_template("llama3_1")
    plain = [msg("user", "hi"), msg("assistant", "Hello.")]
    boilerplate = tokenizer.apply_chat_template(prepare_messages(plain), tools=[], tokenize=False)
    none = tokenizer.apply_chat_template(prepare_messages(plain), tools=None, tokenize=False)
    assert boilerplate != none  # Llama 3.1 writes tool instructions for []
    ready = template_ready(tokenizer, RowShape("object", "none", "inline"))
    assert ready.apply_chat_template(plain, tools=json.loads("[]"), tokenize=False) == none


def test_a_refused_row_stops_before_training_when_validate_did_not_render(base: Path) -> None:
    """A hub model: validate ran without the tokenizer; train renders every row first."""
    from transformers import AutoTokenizer

    from rollcraft.train._data import load_rows, shaped_for_training
    from rollcraft.train._trainers import _renders_or_stop

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.chat_template = trl_template("llama3_1")
    ready, probe = shaped_for_training(tokenizer, "sft", False)
    path = write(base.parent / "two-calls.jsonl", rows(calls_per_turn=2))
    with pytest.raises(
        ConfigError, match=r"row 1: template_limit: the template renders one tool call per turn"
    ):
        _renders_or_stop(ready, probe, load_rows(path, "sft"), str(path))
    _renders_or_stop(ready, probe, load_rows(write(base.parent / "one.jsonl", rows()), "sft"), "one.jsonl")
