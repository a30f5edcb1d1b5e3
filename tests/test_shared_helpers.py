"""One helper for each job that several modules do (issue #24): dialects, file digests,
dependency versions, tokenizer loading and YAML configs behave the same wherever they are used."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rollcraft._errors import ConfigError, InputError

ROW = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'


def test_validate_and_the_formatters_share_one_list_of_dialects() -> None:
    from rollcraft import formats, validate

    assert validate.DIALECTS is formats.DIALECTS
    assert validate.__all__.count("DIALECTS") == 1


def test_the_pipeline_and_train_hash_files_with_one_function(tmp_path: Path) -> None:
    import hashlib

    from rollcraft import _digest, pipeline, train

    data = tmp_path / "data.jsonl"
    data.write_bytes(bytes(range(256)) * (40 << 10))  # 10 MiB: more than one 4 MiB piece
    assert pipeline.sha256_file is train.data_sha256 is _digest.sha256_file
    assert _digest.sha256_file(data) == hashlib.sha256(data.read_bytes()).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert _digest.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_the_manifest_and_the_model_record_list_versions_with_one_function() -> None:
    from importlib import metadata

    from rollcraft import _versions, pipeline, train

    names = ("rollcraft", "no-such-distribution-here", "pydantic")
    kept = _versions.dependency_versions(names, missing=True)
    assert list(kept) == ["python", "rollcraft", "no-such-distribution-here", "pydantic"]
    assert kept["no-such-distribution-here"] is None and kept["pydantic"] == metadata.version("pydantic")
    assert "no-such-distribution-here" not in _versions.dependency_versions(names)
    # the model folder's record keeps its keys, null when not installed; the manifest only those installed
    record = _versions.dependency_versions(train._DEPENDENCIES, missing=True)
    assert list(record) == ["python", "rollcraft", *train._DEPENDENCIES[1:]]
    assert train._DEPENDENCIES[1:] == ("torch", "transformers", "trl", "datasets", "accelerate", "peft")
    assert None not in _versions.dependency_versions(pipeline._DEPENDENCIES).values()


def _not_a_tokenizer(tmp_path: Path) -> Path:
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text("{not json")
    return folder


def _tokenizer_error(call: Callable[[], object]) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


def test_filter_and_validate_refuse_a_tokenizer_they_cannot_load_with_one_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from rollcraft.filters import FilterConfig, build_steps
    from rollcraft.validate import validate_file

    data = tmp_path / "sft.jsonl"
    data.write_text(ROW)
    for folder, message in (
        (str(_not_a_tokenizer(tmp_path)), "cannot load a tokenizer (JSONDecodeError: "),
        (str(tmp_path / "missing"), "not a folder (a tokenizer is a local Hugging Face tokenizer folder)"),
        (str(data), "not a folder (a tokenizer is a local Hugging Face tokenizer folder)"),
    ):
        by_filter = _tokenizer_error(lambda f=folder: build_steps(FilterConfig(max_tokens=9, tokenizer=f)))
        by_validate = _tokenizer_error(lambda f=folder: validate_file(data, tokenizer=f))
        assert by_filter == by_validate
        assert by_filter.startswith(f"{folder}: {message}")


def test_train_refuses_a_tokenizer_it_cannot_load_as_filter_does(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from rollcraft.filters import FilterConfig, build_steps
    from rollcraft.train import TrainConfig, train_sft

    data = tmp_path / "sft.jsonl"
    data.write_text(ROW * 4)
    model = _not_a_tokenizer(tmp_path)
    quick = TrainConfig(max_steps=1, batch_size=1, validate_data=False)
    by_train = _tokenizer_error(lambda: train_sft(data, str(model), tmp_path / "out", config=quick))
    assert by_train == _tokenizer_error(lambda: build_steps(FilterConfig(max_tokens=9, tokenizer=str(model))))
    assert by_train.startswith(f"{model}: cannot load a tokenizer (")


def test_without_transformers_a_tokenizer_is_a_dependency_error_naming_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['transformers'] = None\n"  # as if rollcraft[train] were not installed
        "from rollcraft._errors import DependencyError\n"
        "from rollcraft.filters import FilterConfig, build_steps\n"
        "try:\n"
        f"    build_steps(FilterConfig(max_tokens=9, tokenizer={str(tmp_path)!r}))\n"
        "except DependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "loading a tokenizer needs transformers: pip install 'rollcraft[train]'\n"


def _config_error(call: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value)


def _three_loaders(path: Path) -> list[str]:
    from rollcraft.filters import FilterConfig
    from rollcraft.pipeline import load_pipeline_config
    from rollcraft.train import load_train_config

    return [
        _config_error(lambda: load_pipeline_config(path)),
        _config_error(lambda: FilterConfig.from_yaml(path)),
        _config_error(lambda: load_train_config(path)),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"sft:\n  format: [trl\n", ": not valid YAML (line 3): expected ',' or ']', but got '<stream end>'"),
        (b"# caf\xe9\n", ": not UTF-8 text (byte 0xe9 on line 1)"),
        (b"- a\n- b\n", ": the config must be a mapping of keys, not a list"),
    ],
)
def test_pipeline_filter_and_train_configs_are_read_by_one_loader(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert _three_loaders(path) == [f"{path}{message}"] * 3
    assert (
        _three_loaders(tmp_path / "nope.yaml")
        == [f"cannot read config {tmp_path / 'nope.yaml'}: No such file or directory"] * 3
    )


def test_train_and_filter_config_errors_name_file_key_and_line(tmp_path: Path) -> None:
    from rollcraft.filters import FilterConfig
    from rollcraft.train import load_train_config

    path = tmp_path / "config.yaml"
    path.write_text("filters:\n  max_turns: 4\n\n  min_reward: high\n")
    message = _config_error(lambda: FilterConfig.from_yaml(path))
    assert (
        message.startswith("min_reward (line 4): Input should be a valid number")
        and f"(in {path})" in message
    )
    path.write_text("epochs: 1\n\nbatch_size: 0\n")
    assert _config_error(lambda: load_train_config(path)) == (
        f"batch_size (line 3): Input should be greater than or equal to 1 (in {path})"
    )
    # a value given as an option is not on the file's line
    assert _config_error(lambda: load_train_config(path, batch_size=-1)) == (
        "batch_size: Input should be greater than or equal to 1 (in the options)"
    )
    assert load_train_config(path, batch_size=2).batch_size == 2


def test_a_set_value_that_is_not_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    command = ["train", "sft", "--set", "lora_r=[", "--data", "d", "--model", "m", "-o", str(tmp_path / "o")]
    done = subprocess.run([sys.executable, "-m", "rollcraft.cli", *command], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --set lora_r: '[' is not a valid YAML value: "
        "expected the node content, but found '<stream end>'"
    ]
