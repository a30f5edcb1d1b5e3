"""``rollcraft.train``: configs, data preparation, and SFT/DPO/LoRA runs on a tiny local model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ConfigError, DependencyError, InputError, OutputError
from rollcraft.train import (
    MANIFEST_NAME,
    TrainConfig,
    data_sha256,
    load_rows,
    load_train_config,
    prepare_messages,
    prepare_row,
    train_dpo,
    train_sft,
)

TOOLS = [
    {
        "type": "function",
        "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}},
    },
    {"type": "function", "function": {"name": "weather", "description": "Weather.", "parameters": {}}},
]


def msg(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "tool_calls": None,
        "tool_call_id": None,
        "reasoning_content": None,
    } | extra


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"c-{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def tool_turns(name: str, arguments: dict[str, Any], result: str) -> list[dict[str, Any]]:
    return [
        msg("assistant", "", tool_calls=[call(name, arguments)]),
        msg("tool", result, tool_call_id=f"c-{name}"),
        msg("assistant", f"It is {result}."),
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    import torch

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    return save_tiny_model(root / "model", tokenizer_dir=save_tiny_tokenizer(root / "tok"))


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = []
    for i in range(12):
        if i % 2:
            turns = tool_turns("add", {"a": i, "b": 2}, str(i + 2))
        else:
            turns = tool_turns("weather", {"city": "Zagreb"}, "sunny")
        rows.append(
            {"messages": [msg("user", f"Question {i}?"), *turns], "tools": json.dumps(TOOLS), "reward": 1.0}
        )
    return write_jsonl(tmp_path_factory.mktemp("data") / "sft.jsonl", rows)


@pytest.fixture(scope="module")
def dpo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {
            "prompt": [msg("user", f"What is {i} + 2?")],
            "chosen": tool_turns("add", {"a": i, "b": 2}, str(i + 2)),
            "rejected": [msg("assistant", str(i + 5))],
            "tools": json.dumps(TOOLS),
            "quality_difference": 1.0,
            "task_key": f"t{i}",
        }
        for i in range(12)
    ]
    return write_jsonl(tmp_path_factory.mktemp("data") / "dpo.jsonl", rows)


def quick(**extra: Any) -> TrainConfig:
    return TrainConfig(
        max_steps=3, batch_size=4, learning_rate=1e-3, logging_steps=1, max_length=256, **extra
    )


# ---------------------------------------------------------------- preparing rows


def test_prepare_row_parses_json_text_and_drops_nulls() -> None:
    row = {"messages": [msg("user", "hi"), *tool_turns("add", {"a": 1}, "1")], "tools": json.dumps(TOOLS)}
    prepared = prepare_row(row)
    assert prepared["tools"] == TOOLS
    assert prepared["messages"][0] == {"role": "user", "content": "hi"}
    assert prepared["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert prepared["messages"][2] == {"role": "tool", "content": "1", "tool_call_id": "c-add"}
    assert row["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'  # input untouched


def test_prepare_messages_keeps_arguments_that_are_not_json() -> None:
    broken = {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    assert prepare_messages([msg("assistant", "", tool_calls=[broken])])[0]["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": "{oops",
    }


def test_rows_survive_datasets_without_merged_argument_keys(sft_file: Path) -> None:
    pytest.importorskip("datasets")
    from datasets import Dataset

    rows = load_rows(sft_file, "sft")
    back = prepare_row(Dataset.from_list(rows)[1])
    assert back["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"a": 1, "b": 2}
    assert back["tools"] == TOOLS


def test_load_rows_rejects_rows_of_the_wrong_kind(tmp_path: Path, dpo_file: Path) -> None:
    with pytest.raises(InputError, match=r"dpo\.jsonl:1: 'messages' must be"):
        load_rows(dpo_file, "sft")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\nnot json\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not JSON"):
        load_rows(bad, "sft")


def test_load_rows_turns_dict_arguments_into_text_and_drops_an_empty_tools_column(tmp_path: Path) -> None:
    row = {
        "messages": [
            msg("user", "q"),
            msg("assistant", "", tool_calls=[{"function": {"name": "f", "arguments": {"a": 1}}}]),
        ]
    }
    rows = load_rows(write_jsonl(tmp_path / "d.jsonl", [row]), "sft")
    assert rows[0]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    assert "tools" not in rows[0]


# ---------------------------------------------------------------- configuration


def test_yaml_config_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 0.001\nepochs: 2\nlora: true\nloss_type: [sigmoid, sft]\n")
    config = load_train_config(path, epochs=3.0, lora=None, method="dpo")
    assert (config.learning_rate, config.epochs, config.lora, config.loss_type) == (
        0.001,
        3.0,
        True,
        ["sigmoid", "sft"],
    )
    assert load_train_config(None, method="dpo").resolved_learning_rate == 1e-6


def test_config_mistakes_name_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 1\nlearning_rte: 0.1\n")
    with pytest.raises(ConfigError, match=r"learning_rte \(line 2\)"):
        load_train_config(path)
    path.write_text("batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"batch_size \(line 1\)"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="data"):
        train_sft_missing_data()


def train_sft_missing_data() -> None:
    from rollcraft.train import train

    train(TrainConfig(model="m", output_dir="o"))


def test_missing_extra_is_a_dependency_error(
    monkeypatch: pytest.MonkeyPatch, sft_file: Path, tmp_path: Path
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a)
    )
    with pytest.raises(DependencyError, match=r"rollcraft\[train\]"):
        train_sft(sft_file, "model", tmp_path / "out")


def test_importing_the_modules_does_not_import_torch() -> None:
    modules = "rollcraft.train, rollcraft.evaluate, rollcraft.cli._train, rollcraft.demo, rollcraft.cli"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------- training runs


def generate(folder: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Question 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    return str(tokenizer.decode(out[0]))


def test_sft_trains_writes_its_folder_and_reloads(tiny_model: Path, sft_file: Path, tmp_path: Path) -> None:
    logs: list[dict[str, Any]] = []
    result = train_sft(sft_file, str(tiny_model), tmp_path / "sft", config=quick(), on_log=logs.append)
    assert result.global_step == 3 and result.rows == 12 and result.train_loss is not None
    assert [e["step"] for e in logs if "loss" in e] == [1, 2, 3]
    manifest = json.loads((tmp_path / "sft" / MANIFEST_NAME).read_text())
    assert manifest["data"]["sha256"] == data_sha256(sft_file)
    assert manifest["config"]["assistant_only_loss"] is True  # the template marks the assistant's tokens
    assert manifest["config"]["learning_rate"] == 1e-3 and manifest["versions"]["trl"]
    assert (tmp_path / "sft" / "train_config.yaml").is_file()
    assert len((tmp_path / "sft" / "training_log.jsonl").read_text().splitlines()) == 4
    assert not (tmp_path / "sft.partial").exists()
    assert generate(tmp_path / "sft").startswith("<|im_start|>user")


def test_dpo_trains_with_sigmoid_and_sft_loss_and_reloads(
    tiny_model: Path, dpo_file: Path, tmp_path: Path
) -> None:
    config = quick(method="dpo", beta=0.5, loss_type=["sigmoid", "sft"])
    result = train_dpo(dpo_file, str(tiny_model), tmp_path / "dpo", config=config)
    assert result.global_step == 3
    manifest = json.loads((tmp_path / "dpo" / MANIFEST_NAME).read_text())
    assert manifest["method"] == "dpo" and manifest["config"]["loss_type"] == ["sigmoid", "sft"]
    assert any("rewards/accuracies" in e for e in manifest["log_history"])
    generate(tmp_path / "dpo")


def test_lora_is_merged_into_a_plain_model(tiny_model: Path, sft_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    train_sft(sft_file, str(tiny_model), tmp_path / "lora", config=quick(lora=True, lora_r=4))
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    generate(tmp_path / "lora")


def test_validation_runs_first_and_stops_on_errors(tiny_model: Path, tmp_path: Path) -> None:
    rows = [{"messages": [msg("user", "q"), msg("assistant", "a"), msg("user", "dangling")]}] * 3
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ConfigError, match="last_not_assistant"):
        train_sft(data, str(tiny_model), tmp_path / "out", config=quick())
    assert not (tmp_path / "out").exists()


def test_an_existing_model_folder_is_kept_unless_overwrite(
    tiny_model: Path, sft_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "weights.bin").write_text("precious")
    with pytest.raises(OutputError, match="--overwrite"):
        train_sft(sft_file, str(tiny_model), tmp_path / "kept", config=quick())
    assert (tmp_path / "kept" / "weights.bin").read_text() == "precious"


def test_cli_train_sft_with_yaml_and_flags(tiny_model: Path, sft_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("max_steps: 50\nbatch_size: 4\nlearning_rate: 0.001\nmax_length: 256\n")
    out = tmp_path / "cli-sft"
    args = ["train", "sft", "--data", str(sft_file), "--model", str(tiny_model), "-o", str(out)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rollcraft.cli",
            *args,
            "--config",
            str(config),
            "--max-steps",
            "2",
            "--set",
            "logging_steps=1",
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sft: 2 steps on 12 rows" in done.stdout
    assert json.loads((out / MANIFEST_NAME).read_text())["config"]["max_steps"] == 2


def test_cli_reports_a_missing_model_in_one_line(sft_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    args = [
        "train",
        "dpo",
        "--data",
        str(sft_file),
        "--model",
        str(tmp_path / "nope"),
        "-o",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args, "--no-validate"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "nope" in done.stderr


@pytest.mark.parametrize(
    ("args", "config", "missing"),
    [
        ([], None, "Missing option '--data' / '--model' / '--output'."),
        (["--data", "d.jsonl", "-o", "out"], None, "Missing option '--model'."),
        (["--max-steps", "1"], "data: d.jsonl\noutput_dir: out\n", "Missing option '--model' (or its key in"),
    ],
)
def test_cli_train_without_data_or_model_is_a_usage_error(
    tmp_path: Path, args: list[str], config: str | None, missing: str
) -> None:
    if config is not None:
        (tmp_path / "train.yaml").write_text(config)
        args = [*args, "--config", str(tmp_path / "train.yaml")]
    for method in ("sft", "dpo"):
        done = subprocess.run(
            [sys.executable, "-m", "rollcraft.cli", "train", method, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"train {method} [OPTIONS]" in done.stderr and missing in done.stderr
        assert "training" not in done.stderr  # nothing started
