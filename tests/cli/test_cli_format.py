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


def test_sft_keeps_only_successful_rollouts_and_says_how_many_it_left_out(tmp_path: Path) -> None:
    out, report = tmp_path / "sft.jsonl", tmp_path / "sft.json"
    result = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "Left out 37 unsuccessful rollouts; pass --include-failures to keep them" in result.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 35 and {r["reward"] for r in rows} == {1.0}  # 35 of the 72 examples succeed
    assert json.loads(report.read_text())["sft"] == {
        "rows": 35,
        "skipped": {"not_success": 37},
        "reasoning_lost": 0,
    }
    every = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), "--include-failures")
    assert every.returncode == 0, every.stderr
    assert "Left out" not in every.stdout and "Wrote 72 SFT rows" in every.stdout
    assert min(json.loads(line)["reward"] for line in out.read_text().splitlines()) == 0.0


def test_openai_sft_says_how_many_rows_lost_reasoning_and_think_keeps_it(tmp_path: Path) -> None:
    out, report = tmp_path / "sft.jsonl", tmp_path / "sft.json"
    lost = (
        "44 rows had reasoning that the openai format cannot carry; "
        "--reasoning think inlines it as <think>...</think>"
    )
    for reasoning, expected in (("separate", 44), ("think", 0)):
        args = ["--format", "openai", "--reasoning", reasoning, "--report", str(report)]
        result = rollcraft("sft", str(REAL_DIR), "-o", str(out), *args)
        assert result.returncode == 0, result.stderr
        assert (lost in result.stdout) == (expected > 0)
        assert json.loads(report.read_text())["sft"]["reasoning_lost"] == expected
    assert out.read_text().count("<think>") > 44  # the 44, and the rows that had it inline already
    nemo = rollcraft("sft", str(REAL_DIR), "-o", str(out), "--format", "nemo-rl", "--report", str(report))
    assert nemo.returncode == 0 and "cannot carry" not in nemo.stdout
    with_reasoning = [
        line
        for line in out.read_text().splitlines()
        if any(m["reasoning_content"] for m in json.loads(line)["messages"])
    ]
    assert len(with_reasoning) == 44


def test_openai_dpo_says_how_many_kept_rollouts_have_reasoning_it_cannot_carry(tmp_path: Path) -> None:
    from rollcraft import Rollout, read_rollouts

    kept = tmp_path / "kept.jsonl"
    assert rollcraft("filter", str(REAL_DIR), "-o", str(kept)).returncode == 0
    with_reasoning = sum(
        any(m.get("reasoning_content") for m in r.conversation.messages)
        for r in read_rollouts([str(kept)])
        if isinstance(r, Rollout)
    )
    assert with_reasoning == 85
    out, report = tmp_path / "dpo.jsonl", tmp_path / "dpo.json"
    for reasoning, expected in (("separate", with_reasoning), ("think", 0)):
        args = ["--format", "openai", "--reasoning", reasoning, "--report", str(report)]
        result = rollcraft("dpo", str(REAL_DIR), "-o", str(out), *args)
        assert result.returncode == 0, result.stderr
        line = f"{with_reasoning} kept rollouts have reasoning that the openai format cannot carry"
        assert (line in result.stdout) == (expected > 0)
        assert json.loads(report.read_text())["dpo"]["reasoning_lost_rollouts"] == expected


def test_redact_secrets_in_sft(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    # the examples' secrets sit in rollouts that did not succeed
    result = rollcraft("sft", str(EXAMPLES_DIR), "-o", str(out), "--redact-secrets", "--include-failures")
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
