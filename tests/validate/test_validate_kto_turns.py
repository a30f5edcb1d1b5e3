"""validate on KTO rows and on ``sft --expand turns`` rows: detection, row checks, label counts and
weights, rendering as train renders, and which template drops the reasoning of earlier turns."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollcraft import ConfigError, Rollout, read_rollouts
from rollcraft.formats import KtoFormat, kto_weights
from rollcraft.formats.sft import turn_rows
from rollcraft.pipeline import run_pipeline
from rollcraft.validate import ValidationReport, stat_lines, validate_file
from tests.conftest import EXAMPLES_DIR, REAL_DIR

Row = dict[str, Any]


@pytest.fixture(scope="module")
def rollouts() -> list[Rollout]:
    return [r for r in read_rollouts([str(REAL_DIR)]) if isinstance(r, Rollout)]


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(200), vocab_size=300)


def trl_template(name: str) -> Path:
    import trl

    return Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"


def write(tmp_path: Path, rows: list[Row], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def where(report: ValidationReport) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in report.findings}


# ---------------------------------------------------------------------------------------------
# KTO rows


def test_a_kto_file_of_real_rollouts_is_detected_checked_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "kto.jsonl"
    made = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "kto", str(REAL_DIR), "-o", str(path), "--max-turns", "400"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    report = validate_file(path)
    assert (report.kind, report.dialect, report.rows) == ("kto", "trl", len(rows))
    desirable = sum(r["label"] for r in rows)
    assert report.stats["labels"] == kto_weights(desirable, len(rows) - desirable)
    # TRL's trainers fail on an empty prompt: kto leaves those rollouts out, so the file is clean
    assert all(r["prompt"] for r in rows) and "prompt_required" not in report.counts
    assert report.errors == 0 and "roundtrip_changed" not in report.counts
    from typer.testing import CliRunner

    from rollcraft.cli import app

    assert CliRunner().invoke(app, ["validate", str(path), "--kind", "kto", "-q"]).exit_code == 0
    refused = CliRunner().invoke(app, ["validate", str(path), "--kind", "kto", "--format", "openai"])
    assert isinstance(refused.exception, ConfigError) and "trl dialect only" in str(refused.exception)
    assert ("KTO labels", f"KTO: {desirable} desirable, {len(rows) - desirable} undesirable") in [
        (label, value.split(";")[0]) for label, value in stat_lines(report)
    ]


def _kto_row(rollouts: list[Rollout]) -> Row:
    """The shortest real KTO row with tools, a prompt and a tool result in the completion."""
    fmt = KtoFormat()
    candidates = [fmt.row(r) for r in rollouts if r.conversation.tools and r.conversation.prompt]
    answered = [row for row in candidates if any(m["role"] == "tool" for m in row["completion"])]
    return min(answered, key=lambda row: len(orjson.dumps(row)))


def _broken(row: Row, how: str) -> Row:
    row = copy.deepcopy(row)
    if how == "label_text":
        row["label"] = "yes"
    elif how == "no_label":
        del row["label"]
    elif how == "empty_completion":
        row["completion"] = []
    elif how == "ends_with_tool":
        while row["completion"][-1]["role"] != "tool":
            row["completion"].pop()
    elif how == "tools_text":
        row["tools"] = "[{not json"
    elif how == "empty_prompt":
        row["prompt"] = []
    elif how == "call_without_id_key":
        call = next(m for m in row["completion"] if m.get("tool_calls"))["tool_calls"][0]
        call["function"]["arguments"] = "[1, 2]"
    return row


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("label_text", "invalid_label"),
        ("no_label", "missing_key"),
        ("empty_completion", "empty_completion"),
        ("ends_with_tool", "last_not_assistant"),
        ("tools_text", "invalid_tool"),
        ("empty_prompt", "prompt_required"),
        ("call_without_id_key", "invalid_arguments"),
    ],
)
def test_each_broken_kto_row_gets_its_code(
    tmp_path: Path, rollouts: list[Rollout], how: str, code: str
) -> None:
    row = _kto_row(rollouts)
    report = validate_file(write(tmp_path, [row, _broken(row, how)]), roundtrip=False)
    assert report.kind == "kto"
    assert (code, 2) in where(report) and not {n for _, n in where(report)} & {1}
    assert not report.ok


def test_a_kto_file_of_one_label_is_warned(tmp_path: Path, rollouts: list[Rollout]) -> None:
    row = _kto_row(rollouts)
    other = copy.deepcopy(row) | {"rollout_id": "other"}
    other["prompt"][-1]["content"] += " (again)"
    report = validate_file(write(tmp_path, [row | {"label": True}, other | {"label": True}]), roundtrip=False)
    assert ("single_label", None) in where(report) and report.ok
    mixed = validate_file(write(tmp_path, [row | {"label": True}, other | {"label": False}]), roundtrip=False)
    assert "single_label" not in mixed.counts and mixed.stats["labels"]["balanced"]


def test_kto_rows_are_rendered_as_train_renders_them(
    tmp_path: Path, rollouts: list[Rollout], tok: Path
) -> None:
    path = write(tmp_path, [_kto_row(rollouts)])
    report = validate_file(path, tokenizer=tok, chat_template=trl_template("qwen3"), roundtrip=False)
    assert report.ok and report.stats["length_unit"] == "tokens" and report.stats["template"]
    # DeepSeek-R1's generation prompt opens <think>: KTO tokenizes the prompt alone, as DPO does
    r1 = validate_file(
        path, tokenizer=tok, chat_template=trl_template("deepseek_r1_distill"), roundtrip=False
    )
    assert ("prompt_not_prefix", 1) in where(r1)


# ---------------------------------------------------------------------------------------------
# Rows of ``sft --expand turns``


def _reasoning_rollouts(rollouts: list[Rollout], *, users: bool) -> list[Rollout]:
    """Multi-turn rollouts with reasoning (and a user message in the completion, or none)."""
    return [
        r
        for r in rollouts
        if r.n_assistant_turns > 1
        and r.conversation.prompt
        and any(m.get("reasoning_content") for m in r.conversation.completion)
        and users == any(m["role"] == "user" for m in r.conversation.completion)
    ]


def test_per_turn_rows_are_checked_as_prompt_completion_sft_rows(
    tmp_path: Path, rollouts: list[Rollout]
) -> None:
    picked = sorted(_reasoning_rollouts(rollouts, users=False), key=lambda r: r.n_assistant_turns)[:4]
    rows = [row for r in picked for row in turn_rows(r)]
    report = validate_file(write(tmp_path, rows))
    assert (report.kind, report.dialect, report.stats["turn_rows"]) == ("sft", "trl", len(rows))
    assert report.ok and "reasoning_in_prompt" not in report.counts
    at = next(i for i, r in enumerate(rows) if r["turn"] == 1)
    kept = copy.deepcopy(rows[at])
    earlier = next(m for m in reversed(kept["prompt"]) if m["role"] == "assistant")
    earlier["reasoning_content"] = "First I think about the earlier step carefully"
    bad_turn = copy.deepcopy(rows[at]) | {"turn": "one"}
    broken = validate_file(write(tmp_path, [rows[0], kept, bad_turn]), roundtrip=False)
    assert ("reasoning_in_prompt", 2) in where(broken) and ("wrong_type", 3) in where(broken)


def _drops_by_qwen3(rows: list[Row]) -> list[int]:
    """Rows (1-based) whose previous turn a Qwen3-style template drops the reasoning of: a user
    message comes after it (Qwen3 renders reasoning only after the last user message)."""
    found = []
    for number, row in enumerate(rows, 1):
        roles = [m["role"] for m in row["prompt"]]
        last_assistant = (
            max(i for i, role in enumerate(roles) if role == "assistant") if row["turn"] else None
        )
        if last_assistant is not None and "user" in roles[last_assistant:]:
            found.append(number)
    return found


def test_validate_says_which_template_drops_the_reasoning_of_earlier_turns(
    tmp_path: Path, rollouts: list[Rollout], tok: Path
) -> None:
    # the smallest reasoning rollout with a user message between turns, and one with tool results
    picked = [min(_reasoning_rollouts(rollouts, users=u), key=lambda r: r.n_chars) for u in (True, False)]
    rows = [row for r in picked for row in turn_rows(r)]
    path = write(tmp_path, rows)
    later = sum(1 for r in rows if r["turn"])
    expected = _drops_by_qwen3(rows)
    assert 0 < len(expected) < later
    report = validate_file(path, tokenizer=tok, chat_template=trl_template("qwen3"), roundtrip=False)
    turns = report.stats["earlier_turn_reasoning"]
    assert turns == {
        "template": "qwen3.jinja",
        "checked": later,
        "dropped": len(expected),
        "dropped_rows": expected,
    }
    line = dict(stat_lines(report))["earlier-turn reasoning"]
    assert line == (
        f"template qwen3.jinja drops earlier-turn reasoning in {len(expected)} of {later} later turns: "
        "per-turn rows keep it where it is rendered"
    )
    # TRL's training variant of Qwen3 keeps every turn's reasoning; Qwen 2.5 renders none at all
    keeps = validate_file(path, tokenizer=tok, chat_template=trl_template("qwen3_training"), roundtrip=False)
    assert keeps.stats["earlier_turn_reasoning"]["dropped"] == 0
    none = validate_file(path, tokenizer=tok, chat_template=trl_template("qwen2_5"), roundtrip=False)
    assert "earlier_turn_reasoning" not in none.stats and "template_drops_reasoning" in none.counts
    from typer.testing import CliRunner

    from rollcraft.cli import app

    args = ["validate", str(path), "--tokenizer", str(tok), "--chat-template", str(trl_template("qwen3"))]
    shown = CliRunner().invoke(app, [*args, "--no-roundtrip"])
    assert shown.exit_code == 0, shown.output
    assert "drops earlier-turn reasoning" in " ".join(shown.output.split())


def test_the_pipeline_validates_per_turn_and_kto_rows(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"inputs: [{EXAMPLES_DIR}]\noutput_dir: out\nsft: {{expand: turns}}\nkto: {{}}\n")
    result = run_pipeline(config)
    for kind in ("sft", "kto"):
        report = json.loads((result.folder / f"validation_{kind}.json").read_text())
        assert report["kind"] == kind and report["errors"] == 0, report["findings"][:3]
    sft = json.loads((result.folder / "validation_sft.json").read_text())
    assert sft["stats"]["turn_rows"] == sft["rows"]
    assert json.loads((result.folder / "validation_kto.json").read_text())["stats"]["labels"]["desirable"]
