"""The opt-in PII kinds reach every place a user turns redaction on: ``--redact-pii`` on the
commands, ``redact: {pii: [...]}`` in a pipeline; the ``redact`` command runs the steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rollcraft.pipeline import run_pipeline

TEXT = "call +1 415 555 0134 from 10.2.3.4 about the invoice"


def _record(tmp_path: Path) -> Path:
    record = {
        "responses_create_params": {"input": [{"role": "user", "content": TEXT}]},
        "response": {
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}
            ]
        },
        "reward": 1.0,
    }
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def test_redact_pii_on_the_commands(tmp_path: Path) -> None:
    source = _record(tmp_path)
    for command in ("redact", "sft", "filter"):
        out = tmp_path / f"{command}.jsonl"
        extra = [] if command == "redact" else ["--redact-secrets"]
        result = _cli(command, str(source), "-o", str(out), *extra, "--redact-pii", "phone_number,ip_address")
        assert result.returncode == 0, result.stderr
        text = out.read_text()
        assert "<REDACTED:phone_number>" in text and "<REDACTED:ip_address>" in text, command
        plain = tmp_path / f"{command}.plain.jsonl"
        assert _cli(command, str(source), "-o", str(plain), *extra).returncode == 0
        assert "555 0134" in plain.read_text()  # opt-in: not without the flag
    refused = _cli("sft", str(source), "-o", str(tmp_path / "x.jsonl"), "--redact-pii", "phone_number")
    assert refused.returncode == 2 and "needs --redact-secrets" in refused.stderr
    unknown = _cli("redact", str(source), "-o", str(tmp_path / "y.jsonl"), "--redact-pii", "shoe_size")
    assert unknown.returncode == 2 and "shoe_size" in unknown.stderr and "Traceback" not in unknown.stderr


def test_redact_pii_in_a_pipeline(tmp_path: Path) -> None:
    source = _record(tmp_path)
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{source}"]\noutput_dir: out\nredact: {{pii: [phone_number]}}\nsft: {{}}\n'
        "validate: {enabled: false}\n"
    )
    result = run_pipeline(config)
    text = (result.folder / "sft.jsonl").read_text()
    assert "<REDACTED:phone_number>" in text and "10.2.3.4" in text
    assert result.manifest["config"]["redact"]["pii"] == ["phone_number"]
