"""``rollcraft serve`` as a user runs it: it starts, answers and stops on Ctrl-C; a folder that is
not a model, or a port in use, is one error line and exit status 2."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True, timeout=120
    )


def one_error_line(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_that_is_not_a_model_is_one_line(tmp_path: Path) -> None:
    one_error_line(rollcraft("serve", str(tmp_path / "missing")), "no such model folder")
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    one_error_line(rollcraft("serve", str(tmp_path / "weights.gguf")), "not a folder")
    one_error_line(rollcraft("serve", str(tmp_path)), "not a Hugging Face model folder (no config.json)")
    (tmp_path / "adapter_config.json").write_text("{}")
    one_error_line(rollcraft("serve", str(tmp_path)), "a LoRA adapter, not a model")


def test_a_tokenizer_without_a_chat_template_is_one_line(model_dir: Path, tmp_path: Path) -> None:
    bare = shutil.copytree(model_dir, tmp_path / "bare")
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    one_error_line(rollcraft("serve", str(bare)), "the tokenizer has no chat template")


def test_a_port_in_use_is_one_line(model_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        one_error_line(
            rollcraft("serve", str(model_dir), "--port", str(port)), f"cannot listen on 127.0.0.1:{port}"
        )


def test_serve_starts_answers_and_stops_on_ctrl_c(model_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rollcraft.cli", "serve", str(model_dir), "--port", "0", "--model-name", "m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"Serving {model_dir} as 'm' on "), lines
        base = lines[1].removeprefix("OpenAI base URL: ").strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        assert httpx.get(f"{base}/models", timeout=30).json()["data"][0]["id"] == "m"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        answer = httpx.post(f"{base}/chat/completions", json=body, timeout=30).json()
        assert answer["choices"][0]["message"]["role"] == "assistant"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("rollcraft serve did not stop on SIGINT")
    assert process.returncode in (0, 130), process.stderr.read() if process.stderr else ""
