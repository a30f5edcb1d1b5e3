"""The command line's entry point: each command loads only its own module; ``--version``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from rollcraft import cli


def test_commands_table_names_what_each_module_registers() -> None:
    from importlib import import_module

    for module in set(cli.COMMANDS.values()):
        app = typer.Typer()
        import_module(module).register(app)
        names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
        assert names == {name for name, owner in cli.COMMANDS.items() if owner == module}, module


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from rollcraft.cli import register_commands; register_commands(['run', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('rollcraft.cli.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['rollcraft.cli._common', 'rollcraft.cli._pipeline']"


def test_help_and_unknown_words_get_every_command() -> None:
    for args in ([], ["--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True
        )
        assert "run" in result.stdout and "validate" in result.stdout and "train" in result.stdout
    typo = subprocess.run([sys.executable, "-m", "rollcraft.cli", "vaildate"], capture_output=True, text=True)
    assert typo.returncode == 2 and "Did you mean 'validate'" in typo.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("rollcraft ")


# ---------------------------------------------------------------- inputs of no rollout

_CHAT = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
#: Files people hand to rollcraft by mistake, and the words that must name each.
WRONG_SHAPES: dict[str, tuple[list[dict[str, object]], str]] = {
    "sft": ([{"messages": _CHAT}], "looks like SFT rows (messages, no reward)"),
    "trl_dpo": ([{"prompt": _CHAT[:1], "chosen": _CHAT[1:], "rejected": _CHAT[1:]}], "looks like DPO pairs"),
    "openai_dpo": (
        [
            {
                "input": {"messages": _CHAT[:1]},
                "preferred_output": _CHAT[1:],
                "non_preferred_output": _CHAT[1:],
            }
        ],
        "looks like OpenAI preference (DPO) rows",
    ),
    "nemo_rl_dpo": ([{"context": _CHAT[:1], "completions": []}], "looks like NeMo RL DPO rows"),
    "inputs": (
        [{"responses_create_params": {"input": "2+2?"}, "_ng_task_index": 0}],
        "looks like NeMo Gym input rows",
    ),
    "empty": ([], "it is empty (0 lines)"),
}
READS = "rollcraft reads rollouts: records with responses_create_params, response and reward"


def _shape_file(folder: Path, shape: str) -> Path:
    path = folder / f"{shape}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in WRONG_SHAPES[shape][0]))
    return path


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("shape", sorted(WRONG_SHAPES))
def test_a_file_of_no_rollouts_is_named_and_exits_2(tmp_path: Path, shape: str) -> None:
    path = _shape_file(tmp_path, shape)
    done = _run("dpo", str(path), "-o", str(tmp_path / "pairs.jsonl"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert WRONG_SHAPES[shape][1] in done.stderr and READS in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "pairs.jsonl").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["inspect"],
        ["inspect", "--json"],
        ["filter", "-o", "{out}"],
        ["filter", "--dry-run"],
        ["sft", "-o", "{out}"],
        ["sample", "-o", "{out}"],
        ["balance", "--max-per-category", "2", "-o", "{out}"],
        ["redact", "-o", "{out}"],
        ["redact", "--json", "-o", "{out}"],
        ["apply-review", "--decisions", "{decisions}", "-o", "{out}"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_command_that_reads_rollouts_names_a_wrong_file(tmp_path: Path, command: list[str]) -> None:
    path = _shape_file(tmp_path, "sft")
    decisions = tmp_path / "decisions.jsonl"
    decisions.write_text("")
    args = [a.format(out=tmp_path / "out.jsonl", decisions=decisions) for a in command]
    done = _run(args[0], str(path), *args[1:])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path} looks like SFT rows (messages, no reward)" in done.stderr and READS in done.stderr
    assert "Read 1 lines: 0 rollouts + 1 quarantined (no_result 1)" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()  # every command checks before its output is kept
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_run_on_inputs_of_no_rollout_makes_no_version(tmp_path: Path) -> None:
    _shape_file(tmp_path, "trl_dpo")
    (tmp_path / "p.yaml").write_text("inputs: [trl_dpo.jsonl]\noutput_dir: out\nsft: {format: trl}\n")
    done = _run("run", "p.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "looks like DPO pairs" in done.stderr and READS in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_run_lists_the_first_quarantined_lines_and_how_many_more(tmp_path: Path) -> None:
    rollout = {
        "responses_create_params": {"input": "2+2?"},
        "response": {"output": [{"type": "message", "role": "assistant", "content": "4"}]},
        "reward": 1.0,
    }
    rows = [*WRONG_SHAPES["inputs"][0] * 7, rollout]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.yaml").write_text("inputs: [in.jsonl]\noutput_dir: out\nsft: {format: trl}\n")
    done = _run("run", "p.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Read 8 lines: 1 rollouts + 7 quarantined (no_result 7)" in done.stdout
    assert (
        done.stdout.count(": no_result (") == 5
        and "... and 2 more (manifest.json lists the first 20 and the first of each reason)" in done.stdout
    )


def test_redact_names_each_quarantined_line(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES_DIR

    lines = (EXAMPLES_DIR / "tool_agents_rollouts.jsonl").read_text().splitlines()[:3]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([lines[0], lines[1][:40], lines[2]]) + "\n")
    done = _run("redact", str(source), "-o", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    assert f"{source}:2: not_json" in done.stdout and "2 rollouts + 1 quarantined" in done.stdout


def test_a_run_that_fails_validation_names_the_error_codes(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES_DIR

    config = tmp_path / "run.yaml"
    source = EXAMPLES_DIR / "tool_agents_rollouts.jsonl"
    config.write_text(f'inputs: ["{source}"]\noutput_dir: out\nfilters: {{min_reward: 2}}\nsft: {{}}\n')
    done = _run("run", str(config))
    assert done.returncode == 1, done.stderr
    assert "validation found 1 errors (sft.jsonl: empty_file 1)" in done.stdout
