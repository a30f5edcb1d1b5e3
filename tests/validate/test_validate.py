"""rollcraft validate: every finding code provoked by a crafted row, clean files clean, reports, CLI."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollcraft import validate as v
from rollcraft.validate import CODES, ValidationReport, validate_file
from tests.conftest import FIXTURES

FIX = FIXTURES / "validate"
CLEAN = sorted(FIX.glob("*_clean.jsonl"))
Row = dict[str, Any]


def load(name: str) -> list[Row]:
    return [json.loads(line) for line in (FIX / name).read_text(encoding="utf-8").splitlines()]


def write(tmp_path: Path, rows: list[Row | str], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def where(report: ValidationReport) -> set[tuple[str, int | None]]:
    return {(f.code, f.row) for f in report.findings}


# ---------------------------------------------------------------------------------------------
# Clean files


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.stem)
def test_clean_files_have_no_findings(path: Path) -> None:
    report = validate_file(path)
    assert report.findings == [], [str(f) for f in report.findings]
    kind, dialect = path.stem.split("_", 1)[0], path.stem.split("_", 1)[1].removesuffix("_clean")
    assert (report.kind, report.dialect) == (kind, dialect.replace("_", "-"))
    assert report.ok and report.rows == 6


# ---------------------------------------------------------------------------------------------
# Each code provoked at a known row. A case: (code, clean file, row index to break, how).


def _set(path: str, value: Any) -> Callable[[Row], Row | str]:
    """A mutation setting ``path`` ("messages.1.content") to ``value``; ``...`` deletes it."""

    def mutate(row: Row) -> Row:
        *parents, last = path.split(".")
        node: Any = row
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        key_or_index: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key_or_index]
        else:
            node[key_or_index] = copy.deepcopy(value)
        return row

    return mutate


def _drop_tool_result(row: Row) -> Row:
    row["messages"] = [m for m in row["messages"] if m["role"] != "tool"]
    return row


def _same_id(row: Row) -> Row:
    row["messages"][2]["tool_calls"][1]["id"] = row["messages"][2]["tool_calls"][0]["id"]
    return row


def _rejected_is_chosen(row: Row) -> Row:
    row["rejected"] = copy.deepcopy(row["chosen"])
    for m in row["rejected"]:
        for call in m["tool_calls"] or []:
            call["id"] += "_other"
        if m["tool_call_id"]:
            m["tool_call_id"] += "_other"
    return row


def _long_answer(row: Row) -> Row:
    row["messages"][-1]["content"] = "word " * 5000
    return row


SFT, DPO = "sft_trl_clean.jsonl", "dpo_trl_clean.jsonl"
OAI_SFT, OAI_DPO, NRL_SFT, NRL_DPO = (
    "sft_openai_clean.jsonl",
    "dpo_openai_clean.jsonl",
    "sft_nemo_rl_clean.jsonl",
    "dpo_nemo_rl_clean.jsonl",
)
ASSISTANT_TWO = [{"role": "assistant", "content": "One."}, {"role": "assistant", "content": "Two."}]

CASES: list[tuple[str, str, int, Callable[[Row], Row | str]]] = [
    ("not_json", SFT, 2, lambda r: '{"messages": [}'),
    ("not_object", SFT, 2, lambda r: "[1, 2, 3]"),
    ("missing_key", SFT, 2, _set("messages", ...)),
    ("missing_key", SFT, 1, _set("messages.3.tool_call_id", ...)),
    ("wrong_type", SFT, 2, _set("messages.1.content", 5)),
    ("wrong_type", SFT, 2, _set("reward", "high")),
    ("wrong_type", OAI_SFT, 1, _set("messages.2.tool_calls.0.function.arguments", {"a": 1})),
    ("invalid_arguments", NRL_SFT, 1, _set("messages.2.tool_calls.0.function.arguments", '{"a": 1')),
    ("wrong_type", OAI_SFT, 2, _set("messages.2.weight", 2)),
    ("empty_messages", SFT, 2, _set("messages", [])),
    ("unknown_role", SFT, 2, _set("messages.1.role", "narrator")),
    ("invalid_tool", SFT, 2, _set("tools", json.dumps([{"name": "flat"}]))),
    ("invalid_tool", SFT, 2, _set("tools", "[not json")),
    ("invalid_arguments", SFT, 1, _set("messages.2.tool_calls.0.function.arguments", '{"a": 17,')),
    ("invalid_arguments", OAI_SFT, 1, _set("messages.2.tool_calls.0.function.arguments", "[17, 25]")),
    ("duplicate_tool_call_id", SFT, 3, _same_id),
    ("orphan_tool_result", SFT, 1, _set("messages.3.tool_call_id", "call_nowhere")),
    ("orphan_tool_result", OAI_SFT, 3, _set("messages.4.tool_call_id", "call_w2")),
    ("unanswered_tool_call", SFT, 1, _drop_tool_result),
    ("last_not_assistant", SFT, 1, lambda r: {**r, "messages": r["messages"][:-1]}),
    ("last_not_assistant", NRL_SFT, 2, lambda r: {**r, "messages": r["messages"][:2]}),
    ("developer_role", SFT, 2, _set("messages.0.role", "developer")),
    ("unexpected_key", OAI_SFT, 2, _set("reward", 1.0)),
    ("unknown_tool", SFT, 1, _set("messages.2.tool_calls.0.function.name", "multiply")),
    ("final_tool_call", SFT, 1, lambda r: {**r, "messages": r["messages"][:3]}),
    ("near_empty_answer", SFT, 2, _set("messages.2.content", " ... ")),
    ("near_empty_answer", SFT, 2, _set("messages.2.content", "<think>hmm</think>")),
    ("duplicate_row", SFT, 2, lambda r: {**load(SFT)[0], "rollout_id": "another"}),
    ("extreme_length", SFT, 2, _long_answer),
    ("reward_out_of_range", SFT, 2, _set("reward", 1.5)),
    ("reward_out_of_range", DPO, 2, _set("rejected_reward", -0.5)),
    ("empty_prompt", DPO, 2, _set("prompt", [])),
    ("empty_completion", DPO, 2, _set("chosen", [])),
    ("empty_completion", OAI_DPO, 2, _set("non_preferred_output.0.content", "")),
    ("identical_pair", DPO, 3, _rejected_is_chosen),
    (
        "identical_pair",
        NRL_DPO,
        2,
        _set("completions.1.completion", [{"role": "assistant", "content": "x"}] * 1),
    ),
    ("non_positive_margin", DPO, 2, _set("quality_difference", 0.0)),
    (
        "non_positive_margin",
        DPO,
        2,
        lambda r: (
            {k: x for k, x in r.items() if k != "quality_difference"}
            | {"chosen_reward": 0.2, "rejected_reward": 0.6}
        ),
    ),
    (
        "last_not_assistant",
        DPO,
        2,
        _set(
            "rejected",
            [
                {
                    "role": "user",
                    "content": "hm?",
                    "tool_calls": None,
                    "tool_call_id": None,
                    "reasoning_content": None,
                }
            ],
        ),
    ),
    ("multi_message_completion", OAI_DPO, 2, _set("preferred_output", ASSISTANT_TWO)),
    ("multi_message_completion", NRL_DPO, 2, _set("completions.0.completion", ASSISTANT_TWO)),
    ("bad_completions", NRL_DPO, 2, _set("completions.1.rank", 0)),
    ("bad_completions", NRL_DPO, 2, lambda r: {**r, "completions": r["completions"][:1]}),
    ("unanswered_tool_call", DPO, 1, lambda r: {**r, "chosen": r["chosen"][:1] + r["chosen"][-1:]}),
    ("missing_key", OAI_DPO, 2, _set("input", ...)),
]


def _case_id(case: tuple[str, str, int, Any]) -> str:
    return f"{case[0]}-{case[1].removesuffix('_clean.jsonl')}-row{case[2] + 1}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_each_defect_is_found_at_its_row(tmp_path: Path, case: tuple[str, str, int, Any]) -> None:
    code, name, index, mutate = case
    rows: list[Row | str] = list(load(name))
    if code == "identical_pair" and name == NRL_DPO:
        rows[index] = _nemo_identical(rows[index])  # type: ignore[arg-type]
    else:
        rows[index] = mutate(rows[index])  # type: ignore[arg-type]
    report = validate_file(write(tmp_path, rows), roundtrip=False)
    assert (code, index + 1) in where(report), [str(f) for f in report.findings]
    assert {f.row for f in report.findings} == {index + 1}, "findings leaked to other rows"
    assert (report.errors > 0) == (CODES[code][0] == "error")


def _nemo_identical(row: Row) -> Row:
    row["completions"][1]["completion"] = copy.deepcopy(row["completions"][0]["completion"])
    return row


def test_every_code_has_a_case_or_a_dedicated_test() -> None:
    dedicated = {
        "empty_file",
        "roundtrip_changed",
        "roundtrip_failed",
        "roundtrip_unavailable",
        "blank_line",
        "dominant_task_type",
        "template_error",
        "answer_truncated",
        # the chat-template findings: tests/validate/test_validate_templates.py
        "template_limit",
        "answer_not_rendered",
        "no_assistant_mask",
        "double_encoded_arguments",
        "template_drops_calls",
        "template_drops_results",
        "template_drops_tools",
        "template_drops_reasoning",
        "empty_tools_boilerplate",
        "prompt_not_prefix",
        "answer_mask_partial",
        "roundtrip_rounded_float",
        # KTO and prompt-completion SFT rows: tests/validate/test_validate_kto_turns.py
        "invalid_label",
        "prompt_required",
        "single_label",
        "reasoning_in_prompt",
    }
    assert set(CODES) == {c[0] for c in CASES} | dedicated


def test_codes_table_is_stable() -> None:
    assert all(sev in ("error", "warning") for sev, _ in CODES.values())
    assert CODES["not_json"][0] == "error" and CODES["duplicate_row"][0] == "warning"


# ---------------------------------------------------------------------------------------------
# File-level findings


def test_empty_file(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, []), kind="sft")
    assert where(report) == {("empty_file", None)} and not report.ok


def test_blank_line(tmp_path: Path) -> None:
    rows: list[Row | str] = list(load(SFT))
    rows.insert(2, "")
    report = validate_file(write(tmp_path, rows), roundtrip=False)
    assert where(report) == {("blank_line", 3)} and report.ok and report.rows == 6


def test_dominant_task_type(tmp_path: Path) -> None:
    base = load(SFT)
    rows: list[Row | str] = []
    for i in range(10):
        row = copy.deepcopy(base[i % 6])
        row["task_type"] = "math" if i else "chat"
        row["messages"][1]["content"] += f" (take {i})"
        rows.append(row)
    report = validate_file(write(tmp_path, rows), roundtrip=False)
    assert where(report) == {("dominant_task_type", None)}
    assert report.stats["tasks"]["largest_share"] == 0.9


def test_detection_needs_kind_when_rows_say_nothing(tmp_path: Path) -> None:
    from rollcraft._errors import ConfigError

    with pytest.raises(ConfigError):
        validate_file(write(tmp_path, [{"text": "hello"}]), dialect="trl")
    report = validate_file(write(tmp_path, [{"text": "hello"}]), kind="dpo", roundtrip=False)
    assert ("missing_key", 1) in where(report)


# ---------------------------------------------------------------------------------------------
# The datasets round trip


def test_roundtrip_change_is_reported(tmp_path: Path) -> None:
    rows: list[Row | str] = list(load(SFT))
    rows[2]["messages"][1]["content"] = [{"type": "text", "text": "a list content"}]  # type: ignore[index]
    report = validate_file(write(tmp_path, rows))
    codes = {c for c, _ in where(report)}
    # datasets 5 re-decodes the strings "42" and '{"temp_c": ...}' of other rows as JSON; older
    # versions refuse the mixed column: either way the file must not go to training.
    assert codes & {"roundtrip_changed", "roundtrip_failed"} and not report.ok
    if "roundtrip_changed" in codes:
        assert ("roundtrip_changed", 2) in where(report)


def test_roundtrip_comparison_tolerates_null_keys_only_where_harmless(tmp_path: Path) -> None:
    path = write(tmp_path, load(SFT)[:2])
    loaded = load(SFT)[:2]
    loaded[0]["messages"][0]["weight"] = None  # a null added to a message: harmless
    loaded[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"a": 17, "b": 25, "city": None}
    sink = v._Findings(100)
    v._compare_loaded(str(path), loaded, sink)
    assert [(f.code, f.row) for f in sink.items] == [("roundtrip_changed", 2)]
    assert "changes from" in sink.items[0].message


@pytest.mark.parametrize("name", [SFT, DPO])
def test_loaded_rows_are_the_rows_iterating_the_dataset_gives(tmp_path: Path, name: str) -> None:
    datasets = pytest.importorskip("datasets")
    rows = load(name) * 200  # 1,200 rows: two record batches of the Arrow cache
    path = write(tmp_path, rows)
    loaded = v._load_json_dataset(datasets, str(path), str(tmp_path / "cache"))
    assert loaded.cache_files  # read from the Arrow cache, batch by batch
    assert list(v._loaded_rows(loaded)) == list(loaded)
    assert len(list(v._loaded_rows(loaded))) == len(rows)


def test_loaded_rows_iterate_a_dataset_whose_cache_is_not_an_arrow_stream(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = write(tmp_path, load(SFT))

    class Loaded(list[Row]):
        cache_files = ({"filename": str(path)},)  # JSON lines, not Arrow
        features = "any"

    rows = Loaded(load(SFT))
    assert list(v._loaded_rows(rows)) == load(SFT)


def test_roundtrip_failed(tmp_path: Path) -> None:
    rows: list[Row | str] = list(load(SFT))
    rows[3] = json.dumps(rows[3]).replace('"reward": ', '"reward": 0.25, "reward": ')  # pyarrow refuses
    report = validate_file(write(tmp_path, rows))
    assert where(report) == {("roundtrip_failed", None)} and not report.ok


def test_roundtrip_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    report = validate_file(FIX / SFT)
    assert where(report) == {("roundtrip_unavailable", None)} and report.ok


def test_openai_dialect_skips_roundtrip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert validate_file(FIX / OAI_SFT).findings == []


# ---------------------------------------------------------------------------------------------
# Statistics and the JSON report


def test_stats_sft() -> None:
    stats = validate_file(FIX / SFT).stats
    assert stats["length_unit"] == "chars" and stats["lengths"]["tokens"] is None
    assert stats["reward"]["count"] == 6 and stats["reward"]["min"] == 0.5 and stats["reward"]["max"] == 1.0
    assert sum(stats["reward"]["histogram"]["counts"]) == 6
    assert stats["lengths"]["tool_calls"]["max"] == 2 and stats["lengths"]["messages"]["min"] == 3
    assert stats["tool_use_rate"] == pytest.approx(4 / 6, abs=1e-6)
    assert stats["tasks"]["counts"] == {"weather": 2, "math": 2, "chat": 2}
    assert stats["tasks"]["normalized_entropy"] == pytest.approx(1.0)


def test_stats_dpo_margin() -> None:
    stats = validate_file(FIX / DPO).stats
    assert stats["margin"]["mean"] == 1.0 and stats["chosen_reward"]["count"] == 6
    assert stats["tasks"]["distinct"] == 6


def test_json_report_layout(tmp_path: Path) -> None:
    rows: list[Row | str] = list(load(SFT))
    rows[1] = "nope"
    data = json.loads(validate_file(write(tmp_path, rows), roundtrip=False).to_json())
    assert {"kind", "dialect", "rows", "errors", "warnings", "findings", "stats"} <= data.keys()
    assert data["findings"] == [
        {"code": "not_json", "severity": "error", "row": 2, "message": data["findings"][0]["message"]}
    ]
    assert (data["kind"], data["dialect"], data["rows"], data["errors"], data["warnings"]) == (
        "sft",
        "trl",
        6,
        1,
        0,
    )


def test_findings_are_capped_but_counted(tmp_path: Path) -> None:
    path = write(tmp_path, ["x"] * 12)
    report = validate_file(path, kind="sft", max_findings_per_code=5)
    assert len(report.findings) == 5 and report.errors == 12
    assert report.to_dict()["findings_omitted"] == 7


def test_summarize_quantiles() -> None:
    summary = v.summarize([0.0, 1.0, 2.0, 3.0, 4.0], bins=4)
    assert summary is not None
    assert (summary["p50"], summary["p25"], summary["mean"]) == (2.0, 1.0, 2.0)
    assert summary["histogram"]["counts"] == [1, 1, 1, 2]
    assert v.summarize([]) is None


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    rows: list[Row | str] = list(load(DPO))
    rows[2]["chosen"][-1]["content"] = "<script>alert(1)</script>"  # type: ignore[index]
    rows[2]["quality_difference"] = -1  # type: ignore[index]
    page = validate_file(write(tmp_path, rows)).to_html()
    assert "Content-Security-Policy" in page and "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") >= 5 and "Margin" in page and "Rows per task type" in page
    assert 'href="#row-3"' in page and 'id="row-3"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


# ---------------------------------------------------------------------------------------------
# Tokenizer checks (a tiny tokenizer built here; nothing from the hub)


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(300), vocab_size=400)


@pytest.mark.parametrize(
    "name", [SFT, DPO, OAI_SFT, NRL_SFT, NRL_DPO], ids=lambda n: n.removesuffix(".jsonl")
)
def test_tokenizer_lengths(tiny_tokenizer: Path, name: str) -> None:
    report = validate_file(FIX / name, tokenizer=tiny_tokenizer, max_seq_len=4096, roundtrip=False)
    assert report.findings == [], [str(f) for f in report.findings]
    assert report.stats["length_unit"] == "tokens" and report.stats["lengths"]["tokens"]["count"] == 6
    assert report.stats["lengths"]["tokens"]["min"] > 20


def test_answer_truncated(tiny_tokenizer: Path) -> None:
    report = validate_file(FIX / SFT, tokenizer=tiny_tokenizer, roundtrip=False)
    tokens = sorted(report.series["length"])
    limit = int(tokens[-2]) + 1  # only the longest row is over the limit
    report = validate_file(FIX / SFT, tokenizer=tiny_tokenizer, max_seq_len=limit, roundtrip=False)
    assert [f.code for f in report.findings] == ["answer_truncated"]
    assert "the final assistant turn" in report.findings[0].message


def test_template_error(tiny_tokenizer: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text(
        "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tool role') }}{% endif %}"
        "{{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    report = validate_file(FIX / SFT, tokenizer=tiny_tokenizer, chat_template=template, roundtrip=False)
    rows_with_tool_results = {1, 2, 4, 5}
    errors = {(f.code, f.row) for f in report.findings if f.severity == "error"}
    # the probe finds the template has no tool role: the refusal is named as the template's limit
    assert errors == {("template_limit", r) for r in rows_with_tool_results}
    assert report.findings[0].message.endswith("(TemplateError: no tool role)")


def test_tokenizer_folder_errors(tmp_path: Path) -> None:
    from rollcraft._errors import InputError

    with pytest.raises(InputError):
        validate_file(FIX / SFT, tokenizer=tmp_path / "missing")


# ---------------------------------------------------------------------------------------------
# The command line: exit 0 / 1 / 2


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from rollcraft import cli

    monkeypatch.setattr(sys, "argv", ["rollcraft", "validate", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_clean_exit_0_with_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    assert run_cli(monkeypatch, str(FIX / DPO), "--json", str(out_json), "--html", str(out_html)) == 0
    data = json.loads(out_json.read_text())
    assert (data["kind"], data["dialect"], data["errors"]) == ("dpo", "trl", 0)
    assert "<svg" in out_html.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_cli_errors_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, ["not json", *load(SFT)[1:]])
    assert run_cli(monkeypatch, str(path), "--no-roundtrip") == 1
    assert "not_json" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["missing.jsonl"],
        [str(FIX / SFT), "--kind", "ppo"],
        [str(FIX / SFT), "--max-seq-len", "0"],
        [str(FIX / SFT), "--max-seq-len", "10"],
        [str(FIX / SFT), "--format", "alpaca"],
    ],
)
def test_cli_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    assert run_cli(monkeypatch, *args) == 2


def test_import_is_light() -> None:
    import subprocess

    heavy = "{'torch', 'transformers', 'datasets', 'jinja2'}"
    code = (
        f"import sys, rollcraft.validate, rollcraft.cli._validate; print(sorted({heavy} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Outputs of rollcraft's own sft/dpo commands on the shared real files


def _real_outputs(tmp_path: Path, real_dir: Path, command: str, dialect: str) -> Path:
    from typer.testing import CliRunner

    from rollcraft.cli import app

    names = {c.name for c in app.registered_commands}
    if command not in names:
        pytest.skip(f"`rollcraft {command}` is not there yet")
    out = tmp_path / f"{command}_{dialect}.jsonl"
    # TODO(lead): adjust the flags to the final `sft` / `dpo` command line if they differ.
    result = CliRunner().invoke(app, [command, str(real_dir), "--format", dialect, "-o", str(out)])
    if result.exit_code == 2 or not out.exists():
        pytest.skip(f"`rollcraft {command}` flags differ: {result.output[-300:]}")
    return out


@pytest.mark.parametrize("command", ["sft", "dpo"])
@pytest.mark.parametrize("dialect", ["trl", "openai", "nemo-rl"])
def test_real_outputs_validate_without_errors(
    tmp_path: Path, real_dir: Path, command: str, dialect: str
) -> None:
    out = _real_outputs(tmp_path, real_dir, command, dialect)
    report = validate_file(out, kind=command, dialect=dialect)
    errors = [str(f) for f in report.findings if f.severity == "error"]
    assert not errors, errors[:10]
