"""``decontaminate``: training rollouts whose prompt matches an evaluation task's prompt are dropped,
exactly (whitespace and case aside) or by 13-gram overlap; through the CLI and the pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ConfigError, read_rollouts
from rollcraft.filters import FilterConfig, build_steps
from rollcraft.filters._contamination import MIN_OVERLAP, NGRAM, Decontaminate, EvalPrompts, prompt_text

ASSISTANT = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}
TEMPLATE = "Answer the question below. Think step by step and put the final answer on its own last line."
Q1 = (
    "A train leaves the station at nine in the morning travelling at sixty miles per hour while a second "
    "train leaves two hours later at ninety miles per hour; at what time does the second train catch up?"
)
Q2 = (
    "In a village of four hundred people every third person keeps chickens and every fifth person "
    "keeps goats; how many people keep both chickens and goats if the two groups overlap as evenly "
    "as possible?"
)
Q3 = (
    "A rectangular garden is twice as long as it is wide and its perimeter is ninety metres; a path "
    "one metre wide runs all around the outside of it, so what is the area of the path in square metres?"
)
Q_NEW = (
    "Three friends share a pizza cut into twelve slices and the first eats a quarter of it while the second "
    "eats a third of what is left; how many slices remain for the third friend to eat?"
)


def line(task: str, user: str | list[dict[str, Any]], system: str | None = None) -> str:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    record = {
        "task_id": task,
        "responses_create_params": {"input": messages},
        "response": {"output": [ASSISTANT]},
        "reward": 1.0,
    }
    return json.dumps(record)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{x}\n" for x in lines))
    return path


#: The evaluation tasks: e1 a bare question, e2 and e3 one template around their questions.
EVAL = [
    line("e1", Q1),
    line("e2", f"{TEMPLATE}\n\n{Q2}"),
    line("e3", f"{TEMPLATE}\n\n{Q3}"),
    line(
        "e4",
        [{"type": "input_image", "image_url": "data:x"}, {"type": "input_text", "text": "What is shown?"}],
    ),
]
#: Training rollouts, by what decontamination must do with them.
TRAIN = {
    "exact": line("t-exact", "  " + Q1.upper().replace(" ", "\n   ", 3) + "  "),
    "overlap": line("t-overlap", f"Here is a puzzle for you.\n{Q2} Reply with a number only."),
    "below": line("t-below", f"{TEMPLATE}\n\n{Q3[:110]} and how wide is the lawn?"),
    "template": line("t-template", f"{TEMPLATE}\n\n{Q_NEW}"),
    "clean": line("t-clean", Q_NEW),
    "system": line("t-system", "Hello there.", system=Q1),  # system text is not the prompt
    "image": line(
        "t-image",
        [{"type": "input_image", "image_url": "data:y"}, {"type": "input_text", "text": "What is shown?"}],
    ),
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "eval.jsonl", EVAL), write(tmp_path / "train.jsonl", list(TRAIN.values()))


def reasons(train: Path, eval_path: Path) -> dict[str, str | None]:
    step = Decontaminate(EvalPrompts.load([str(eval_path)]))
    rollouts = [r for r in read_rollouts([str(train)]) if hasattr(r, "task_key")]
    return {r.task_key.removeprefix("task_id:t-"): step.check(r) for r in rollouts}


def test_each_kind_of_match(files: tuple[Path, Path]) -> None:
    eval_path, train = files
    assert (NGRAM, MIN_OVERLAP) == (13, 0.8)
    assert reasons(train, eval_path) == {
        "exact": "exact prompt of eval task task_id:e1",
        "overlap": "13-gram overlap 100% with eval task task_id:e2",
        "below": None,  # 60% of e3's own 13-grams: below the threshold
        "template": None,  # the template is in two eval prompts: not evidence
        "clean": None,
        "system": None,
        "image": None,  # the text of an image prompt does not say which task it is
    }


def test_the_threshold_is_a_share_of_the_eval_tasks_own_words() -> None:
    words = [f"w{i}" for i in range(40)]
    prompts = EvalPrompts.of([("e", " ".join(words))])
    assert prompts.match(" ".join(words[:32])) == "13-gram overlap 80% with eval task e"  # 32 of 40 words
    assert prompts.match(" ".join(words[:31])) is None  # 78%
    assert prompts.match(" ".join(words[:12])) is None  # shorter than a shingle: only exact
    assert prompts.match("") is None and EvalPrompts.of([("e", "")]).match("") is None


def test_template_words_are_not_a_tasks_own() -> None:
    template = " ".join(f"t{i}" for i in range(30))
    questions = {name: " ".join(f"{name}{i}" for i in range(15)) for name in ("a", "b")}
    prompts = EvalPrompts.of([(name, f"{template} {q}") for name, q in questions.items()])
    assert prompts.match(questions["a"]) == "13-gram overlap 100% with eval task a"  # no template
    assert prompts.match(f"{template} {questions['b'][:30]}") is None  # template + 10 of b's 15 words: 67%
    assert prompts.match(f"{template} " + " ".join(f"c{i}" for i in range(15))) is None


def test_the_prompt_is_the_user_turns(files: tuple[Path, Path]) -> None:
    _, train = files
    system = next(
        r for r in read_rollouts([str(train)]) if hasattr(r, "task_key") and r.task_key.endswith("system")
    )
    assert prompt_text(system) == "Hello there."


def test_config_key_flag_and_paths(tmp_path: Path) -> None:
    assert FilterConfig(decontaminate="a.jsonl, b.jsonl").decontaminate == ["a.jsonl", "b.jsonl"]
    assert FilterConfig(decontaminate="none").decontaminate == []
    assert "decontaminate" not in FilterConfig().model_dump()  # off: a run's manifest is unchanged
    source = str(tmp_path / "conf" / "pipeline.yaml")
    config = FilterConfig.from_mapping({"decontaminate": ["eval.jsonl", "/abs/e.jsonl"]}, source=source)
    assert config.decontaminate == [str(tmp_path / "conf" / "eval.jsonl"), "/abs/e.jsonl"]
    with pytest.raises(ConfigError, match="no rollouts to decontaminate against"):
        build_steps(FilterConfig(decontaminate=[str(write(tmp_path / "bad.jsonl", ["not json"]))]))


def rollcraft(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def task_ids(path: Path) -> list[str]:
    return [json.loads(x)["task_id"] for x in path.read_text().splitlines()]


def test_filter_cli_drops_and_reports(files: tuple[Path, Path], tmp_path: Path) -> None:
    eval_path, train = files
    out, rejects, report = tmp_path / "kept.jsonl", tmp_path / "rejects.jsonl", tmp_path / "report.json"
    result = rollcraft(
        "filter", str(train), "--decontaminate", str(eval_path), "-o", str(out),
        "--rejects", str(rejects), "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert task_ids(out) == ["t-below", "t-template", "t-clean", "t-system", "t-image"]
    dropped = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [(d["dropped_by"], d["reason"]) for d in dropped] == [
        ("decontaminate", "exact prompt of eval task task_id:e1"),
        ("decontaminate", "13-gram overlap 100% with eval task task_id:e2"),
    ]
    step = json.loads(report.read_text())["steps"][-1]
    assert step == {"filter": "decontaminate", "dropped": 2, "alone": 2, "example": dropped[0]["reason"]}
    assert "decontaminate" in result.stdout
    missing = rollcraft("filter", str(train), "--decontaminate", str(tmp_path / "nope.jsonl"), "-o", str(out))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_sft_dpo_and_kto_take_the_flag(files: tuple[Path, Path], tmp_path: Path) -> None:
    eval_path, train = files
    sft = rollcraft("sft", str(train), "--decontaminate", str(eval_path), "-o", str(tmp_path / "sft.jsonl"))
    assert sft.returncode == 0, sft.stderr
    assert len((tmp_path / "sft.jsonl").read_text().splitlines()) == 5
    for command in ("dpo", "kto"):  # every filtering command has the flag
        assert "--decontaminate" in rollcraft(command, "--help").stdout
    kto = rollcraft("kto", str(train), "--decontaminate", str(eval_path), "-o", str(tmp_path / "kto.jsonl"))
    assert kto.returncode == 0, kto.stderr
    assert len((tmp_path / "kto.jsonl").read_text().splitlines()) == 5


def test_pipeline_paths_are_relative_to_the_config(files: tuple[Path, Path], tmp_path: Path) -> None:
    eval_path, train = files
    folder = tmp_path / "project"
    folder.mkdir()
    eval_path.rename(folder / "eval.jsonl")
    (folder / "pipeline.yaml").write_text(
        f"inputs: [{train}]\nfilters:\n  decontaminate: [eval.jsonl]\nwrite_filtered: true\n"
        "validate:\n  enabled: false\n"
    )
    result = rollcraft("run", str(folder / "pipeline.yaml"), cwd=tmp_path)  # not the config's folder
    assert result.returncode == 0, result.stderr
    kept = next((folder / "training" / "v1").glob("filtered*.jsonl"))
    assert task_ids(kept) == ["t-below", "t-template", "t-clean", "t-system", "t-image"]
