"""validate --tokenizer and real chat templates: each template finding provoked by a crafted row
through a real TRL-bundled template (or a small template written here), on a tiny local tokenizer."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft.validate import ValidationReport, validate_file
from tests.conftest import FIXTURES

pytest.importorskip("trl")

FIX = FIXTURES / "validate"
Row = dict[str, Any]


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(200), vocab_size=300)


def trl_template(name: str) -> Path:
    import trl

    return Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"


def rows(name: str = "sft_trl_clean.jsonl") -> list[Row]:
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines()]


def check(tmp_path: Path, tok: Path, data: list[Row], template: str | Path) -> ValidationReport:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    chat = template if isinstance(template, Path) else trl_template(template)
    return validate_file(path, tokenizer=tok, chat_template=chat, roundtrip=False)


def codes(report: ValidationReport, severity: str | None = None) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in report.findings if severity in (None, f.severity)}


def two_calls(row: Row) -> Row:
    """Row 1 of the clean SFT file (one weather call) with a second call in the same turn."""
    row = copy.deepcopy(row)
    call = row["messages"][2]["tool_calls"][0]
    second = {**call, "id": "call_w2", "function": {**call["function"], "arguments": '{"city": "Split"}'}}
    row["messages"][2]["tool_calls"].append(second)
    result = {**row["messages"][3], "tool_call_id": "call_w2"}
    row["messages"].insert(4, result)
    return row


def test_the_report_carries_the_probed_template(tmp_path: Path, tok: Path) -> None:
    report = check(tmp_path, tok, rows(), "qwen3")
    assert report.stats["template"]["arguments"] == "string"
    assert report.stats["template"]["reasoning"] == "reasoning_content"
    assert report.ok and codes(report) == set()


def test_a_limit_of_the_template_is_named_with_its_message(tmp_path: Path, tok: Path) -> None:
    data = rows()
    data[0] = two_calls(data[0])
    report = check(tmp_path, tok, data, "llama3_1")
    several = {
        i + 1 for i, r in enumerate(data) if any(len(m["tool_calls"] or []) > 1 for m in r["messages"])
    }
    limit = [f for f in report.findings if f.code == "template_limit"]
    assert 1 in several and {f.row for f in limit} == several and "one tool call per turn" in limit[0].message
    assert "only supports single tool-calls" in limit[0].message  # the template's own words
    assert {r for c, r in codes(report, "error")} == several


def test_gpt_oss_drops_the_second_call_of_a_turn(tmp_path: Path, tok: Path) -> None:
    data = rows()
    data[0] = two_calls(data[0])
    report = check(tmp_path, tok, data, "gptoss")
    assert ("template_drops_calls", 1) in codes(report, "warning") and report.ok


def test_empty_tools_boilerplate(tmp_path: Path, tok: Path) -> None:
    data = rows()
    plain = next(i for i, r in enumerate(data) if not any(m["tool_calls"] for m in r["messages"]))
    data[plain]["tools"] = "[]"
    report = check(tmp_path, tok, data, "llama3_1")
    assert ("empty_tools_boilerplate", plain + 1) in codes(report)
    assert check(tmp_path, tok, data, "qwen3").findings == []  # Qwen renders [] as none


def test_phi3_drops_calls_results_and_tool_definitions(tmp_path: Path, tok: Path) -> None:
    data = rows()
    report = check(tmp_path, tok, data, "phi3")
    with_calls = {i + 1 for i, r in enumerate(data) if any(m["tool_calls"] for m in r["messages"])}
    assert {r for c, r in codes(report) if c == "template_drops_calls"} == with_calls
    assert {r for c, r in codes(report) if c == "template_drops_results"} == with_calls
    assert {c for c, _ in codes(report)} >= {"template_drops_tools"}
    assert report.ok  # what a template leaves out by design is a warning


def test_reasoning_the_template_does_not_read(tmp_path: Path, tok: Path) -> None:
    data = rows()
    data[2]["messages"][-1]["reasoning_content"] = "First I recall the conventional commit style guide"
    assert ("template_drops_reasoning", 3) in codes(check(tmp_path, tok, data, "qwen2_5"))
    assert ("template_drops_reasoning", 3) not in codes(check(tmp_path, tok, data, "qwen3"))


def test_double_encoding_of_rows_as_written(tmp_path: Path, tok: Path) -> None:
    data = rows()
    report = check(tmp_path, tok, data, "qwen2_5")  # prints string arguments through tojson
    with_calls = {i + 1 for i, r in enumerate(data) if any(m["tool_calls"] for m in r["messages"])}
    found = [f for f in report.findings if f.code == "double_encoded_arguments"]
    assert {f.row for f in found} == with_calls and "as written" in found[0].message
    objects = copy.deepcopy(data)
    for row in objects:
        for message in row["messages"]:
            for call in message["tool_calls"] or []:
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    assert "double_encoded_arguments" not in {c for c, _ in codes(check(tmp_path, tok, objects, "qwen2_5"))}
    assert "double_encoded_arguments" not in {c for c, _ in codes(check(tmp_path, tok, data, "qwen3"))}


def test_rows_train_renders_are_not_template_errors(tmp_path: Path, tok: Path) -> None:
    # Nemotron 3 fails on JSON-text arguments; train (and so validate) hands it mappings
    report = check(tmp_path, tok, rows(), "nemotron_3_nano")
    assert report.ok and not {c for c, _ in codes(report)} & {"template_error", "template_limit"}


def test_dpo_prompt_that_is_not_a_prefix(tmp_path: Path, tok: Path) -> None:
    # DeepSeek-R1's generation prompt opens <think>, which prompt+chosen does not have there
    report = check(tmp_path, tok, rows("dpo_trl_clean.jsonl"), "deepseek_r1_distill")
    assert {c for c, _ in codes(report)} >= {"prompt_not_prefix"}
    assert "prompt_not_prefix" not in {
        c for c, _ in codes(check(tmp_path, tok, rows("dpo_trl_clean.jsonl"), "qwen3"))
    }


def _template(tmp_path: Path, assistant: str) -> Path:
    path = tmp_path / "t.jinja"
    path.write_text(
        "{% for m in messages %}{% if m.role == 'assistant' %}" + assistant + "{% else %}"
        "{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}"
    )
    return path


def test_answer_not_rendered(tmp_path: Path, tok: Path) -> None:
    report = check(tmp_path, tok, rows(), _template(tmp_path, "assistant:\n"))
    assert {r for c, r in codes(report, "error") if c == "answer_not_rendered"} == set(range(1, 7))


def test_assistant_masks(tmp_path: Path, tok: Path) -> None:
    empty = _template(tmp_path, "{% generation %}{% endgeneration %}assistant: {{ m.content }}\n")
    report = check(tmp_path, tok, rows(), empty)
    assert {r for c, r in codes(report, "error") if c == "no_assistant_mask"} == set(range(1, 7))
    partial = _template(
        tmp_path, "assistant: {% generation %}{{ m.content[:3] }}{% endgeneration %}{{ m.content[3:] }}\n"
    )
    report = check(tmp_path, tok, rows(), partial)
    masks = {c for c, _ in codes(report)} & {"answer_mask_partial", "no_assistant_mask"}
    assert masks == {"answer_mask_partial"} and report.ok
    whole = _template(tmp_path, "assistant: {% generation %}{{ m.content }}\n{% endgeneration %}")
    assert not {c for c, _ in codes(check(tmp_path, tok, rows(), whole))} & masks


def test_cli_names_the_template_and_the_limit(tmp_path: Path, tok: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    args = ["validate", str(data), "--tokenizer", str(tok), "--chat-template", str(trl_template("llama3_1"))]
    done = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args, "--no-roundtrip", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 1, done.stderr
    assert "arguments object; no tools as none; reasoning inline; limits one_call_per_turn" in done.stdout
    assert "template_limit" in done.stdout and "Traceback" not in done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stats"]["template"]["limits"] == ["one_call_per_turn"]
    assert report["counts"] == {"template_limit": 1, "double_encoded_arguments": 3}


def test_a_float_the_json_loader_rounds_is_named_not_a_broken_row(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    data = rows()
    for row in data:
        for message in row["messages"]:
            for call in message["tool_calls"] or []:
                call["function"]["arguments"] = {
                    **json.loads(call["function"]["arguments"]),
                    "x": 3.1622776601683795,
                }
    path = tmp_path / "objects.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    report = validate_file(path)
    found = [f for f in report.findings if f.code == "roundtrip_rounded_float"]
    assert found and report.ok and "3.1622776601683795 -> 3.1622776602" in found[0].message
    assert "roundtrip_changed" not in report.counts
