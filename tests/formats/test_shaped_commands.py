"""``--tokenizer`` (and ``--chat-template``) on sft, kto, dpo and a pipeline's ``tokenizer:``: rows
shaped for the model's chat template, the choice printed and recorded; ``--trajectory``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from rollcraft.pipeline import run_pipeline
from tests.conftest import REAL_DIR

pytest.importorskip("trl")
ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(200), vocab_size=300)


def _template(name: str) -> str:
    import trl

    return str(Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja")


def _calls(path: Path) -> list[object]:
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [c["function"]["arguments"] for r in rows for m in r["messages"] for c in m["tool_calls"] or []]


def test_sft_rows_take_the_templates_shape_and_say_so(tmp_path: Path, tok_dir: Path) -> None:
    plain, shaped, report = tmp_path / "plain.jsonl", tmp_path / "shaped.jsonl", tmp_path / "r.json"
    assert _cli("sft", str(REAL_DIR), "-o", str(plain)).returncode == 0
    result = _cli(
        "sft", str(REAL_DIR), "-o", str(shaped), "--report", str(report),
        "--tokenizer", str(tok_dir), "--chat-template", _template("qwen2_5"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Rows shaped for the chat template" in result.stdout and "arguments as object" in result.stdout
    assert all(isinstance(a, str) for a in _calls(plain)) and _calls(plain)
    assert all(isinstance(a, dict) for a in _calls(shaped)) and len(_calls(shaped)) == len(_calls(plain))
    assert json.loads(report.read_text())["row_shape"]["arguments"] == "object"
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{REAL_DIR}"]\noutput_dir: out\nsft: {{}}\nkto: {{}}\ndpo: {{pairing: all}}\n'
        f'tokenizer: "{tok_dir}"\nchat_template: "{_template("qwen2_5")}"\nvalidate: {{enabled: false}}\n'
    )
    result_run = run_pipeline(config)
    assert (result_run.folder / "sft.jsonl").read_bytes() == shaped.read_bytes()
    assert result_run.manifest["row_shape"]["arguments"] == "object"
    dpo = tmp_path / "dpo.jsonl"
    args = ["--tokenizer", str(tok_dir), "--chat-template", _template("qwen2_5")]
    assert _cli("dpo", str(REAL_DIR), "-o", str(dpo), "--pairing", "all", *args).returncode == 0
    assert (result_run.folder / "dpo.jsonl").read_bytes() == dpo.read_bytes()
    kto = tmp_path / "kto.jsonl"
    assert _cli("kto", str(REAL_DIR), "-o", str(kto), *args).returncode == 0
    assert (result_run.folder / "kto.jsonl").read_bytes() == kto.read_bytes()


def test_a_chat_template_without_a_tokenizer_is_a_usage_error(tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    result = _cli("sft", str(REAL_DIR), "-o", out, "--chat-template", _template("qwen3"))
    assert result.returncode == 2 and "--tokenizer" in result.stderr and "Traceback" not in result.stderr


def test_trajectory_branches_add_the_subagents_rows(tmp_path: Path) -> None:
    data = ROOT / "tests" / "read" / "data" / "claude_code_trajectory.jsonl"
    main, branches = tmp_path / "main.jsonl", tmp_path / "branches.jsonl"
    common = ["--include-failures", "--drop-flagged", "none"]
    assert _cli("sft", str(data), "-o", str(main), *common).returncode == 0
    result = _cli("sft", str(data), "-o", str(branches), "--trajectory", "branches", *common)
    assert result.returncode == 0, result.stderr
    assert "more rows from subagents and branches" in result.stdout
    n_main, n_branches = (len(p.read_bytes().splitlines()) for p in (main, branches))
    assert n_branches > n_main >= 1
    assert _cli("sft", str(data), "-o", str(main), "--trajectory", "sideways").returncode == 2
