"""``rollcraft sft`` and ``rollcraft dpo`` as a user runs them: filters, redaction, reports, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES_DIR, REAL_DIR


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("dialect", ["trl", "openai", "nemo-rl"])
def test_sft_and_dpo_on_the_real_files(tmp_path: Path, dialect: str) -> None:
    for kind in ("sft", "dpo"):
        out, report = tmp_path / f"{kind}.jsonl", tmp_path / f"{kind}.json"
        result = rollcraft(kind, str(REAL_DIR), "-o", str(out), "--format", dialect, "--report", str(report))
        assert result.returncode == 0, result.stderr
        assert "Read 485 lines: 405 rollouts + 80 quarantined" in result.stdout
        data = json.loads(report.read_text())
        filt = data["filter"]
        assert filt["kept"] + filt["dropped"] == filt["rollouts"] == 405
        rows = out.read_text().splitlines()
        assert len(rows) == (data["sft"]["rows"] if kind == "sft" else data["dpo"]["pairs"])
        valid = rollcraft("validate", str(out), "--format", dialect, "-q")
        assert valid.returncode == 0, valid.stdout + valid.stderr


def test_filter_flags_apply_before_formatting(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    result = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), "--min-reward", "1", "--require-tool-use")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["reward"] == 1.0 for r in rows)
    assert all(any(m["tool_calls"] for m in r["messages"]) for r in rows)


def test_redact_secrets_in_sft(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    result = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), "--redact-secrets")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "AIza" not in text and "jane.roe@example.org" not in text
    assert "<REDACTED:google_api_key>" in text and "<REDACTED:email>" in text
    assert "google_api_key" in result.stdout


def test_redacted_secrets_stay_out_of_dpo_pairs(tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    result = rollcraft("dpo", str(EXAMPLES_DIR), "-o", str(out), "--redact-secrets", "--pairing", "all")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "AIza" not in text and "jane.roe@example.org" not in text and "<REDACTED:" in text


def test_dpo_drop_mode_counts_the_dropped(tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    result = rollcraft("dpo", str(EXAMPLES_DIR), "-o", str(out), "--redact-secrets", "--on-secret", "drop")
    assert result.returncode == 0, result.stderr
    assert "redact_secrets" in result.stdout and "AIza" not in out.read_text()


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--format", "alpaca"], "--format"),
        (["--arguments", "object", "--format", "openai"], "--arguments"),
        (["--min-reward", "high"], "--min-reward"),
        (["--on-secret", "burn", "--redact-secrets"], "--on-secret"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], hint: str) -> None:
    out = tmp_path / "x.jsonl"
    result = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), *args)
    assert result.returncode == 2 and hint in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_input_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = rollcraft("dpo", str(tmp_path / "nope"), "-o", str(out))
    assert result.returncode == 2 and "no such file" in result.stderr and not out.exists()
