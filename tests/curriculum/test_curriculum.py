"""``rollcraft curriculum``: pass rates (failures included), the band, the per-type cap, repeats,
NeMo Gym input rows (materialized, from a profile's sample, rebuilt), and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rollcraft.curriculum import CurriculumConfig, build_curriculum, task_pass_rates

AGENT = {"type": "responses_api_agents", "name": "math_agent"}


def rcp(prompt: str) -> dict[str, Any]:
    """A ``responses_create_params`` as a result carries it: the API's defaults filled in as nulls."""
    return {"input": [{"role": "user", "content": prompt}], "tool_choice": None, "parallel_tool_calls": None}


def rollout(task: int, index: int, reward: float, *, agent: dict[str, str] = AGENT) -> dict[str, Any]:
    return {
        "responses_create_params": rcp(f"task {task} of {agent['name']}"),
        "response": {
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}
            ]
        },
        "reward": reward,
        "expected_answer": str(task),
        "agent_ref": agent,
        "_ng_task_index": task,
        "_ng_rollout_index": index,
    }


def input_row(task: int) -> dict[str, Any]:
    """The materialized input row of a task (what ``gym eval run`` wrote before collecting)."""
    return {
        "responses_create_params": {"input": [{"role": "user", "content": f"task {task} of math_agent"}]},
        "expected_answer": str(task),
        "agent_ref": AGENT,
        "_ng_task_index": task,
        "_ng_rollout_index": 0,
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


#: task index -> rewards of its rollouts
REWARDS = {
    0: [1, 1, 1, 1],  # 4/4, but a failed attempt (the failures sidecar) makes it 4/5 = 0.8: kept
    1: [0, 0, 0, 0],  # 0.0: too hard
    2: [1, 0, 1, 0],  # 0.5: kept
    3: [1] + [0] * 9,  # 0.1: kept (the bounds are inclusive)
    4: [1] * 9 + [0],  # 0.9: kept
    5: [1, 1, 1],  # 1.0: too easy
}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    rows = [rollout(task, i, r) for task, rewards in REWARDS.items() for i, r in enumerate(rewards)]
    path = write_jsonl(tmp_path / "run.jsonl", rows)
    failure = {**input_row(0), "_ng_rollout_index": 4, "_ng_failure_class": "agent_run_error"}
    write_jsonl(tmp_path / "run_failures.jsonl", [failure])
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def test_pass_rates_count_the_failed_attempts_beside_the_rollouts(run: Path) -> None:
    rates = task_pass_rates([str(run)])
    assert sorted(rates.values()) == [0.0, 0.1, 0.5, 0.8, 0.9, 1.0]
    curriculum = build_curriculum([str(run)])
    first = next(iter(curriculum.tasks.values()))
    assert (first.rollouts, first.successes, first.failed, first.rate) == (5, 4, 1, 0.8)


def test_keeps_the_band_with_the_materialized_rows(run: Path, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "run_materialized_inputs.jsonl", [input_row(t) for t in REWARDS])
    curriculum = build_curriculum([str(run)])
    out = tmp_path / "next.jsonl"
    assert curriculum.write(out) == 4
    strip = [{k: v for k, v in input_row(t).items() if not k.startswith("_ng_")} for t in (0, 2, 3, 4)]
    assert lines(out) == strip
    report = curriculum.report()
    assert report["outcomes"] == {"kept": 4, "too_easy": 1, "too_hard": 1, "over_cap": 0, "no_input_row": 0}
    assert report["rows_from"] == {"materialized_inputs": 4}
    assert report["histogram"]["0.1-0.2"] == 1 and report["histogram"]["0.9-1.0"] == 2
    assert report["per_type"] == {
        "math_agent": {"tasks": 6, "kept": 4, "too_easy": 1, "too_hard": 1, "over_cap": 0, "no_input_row": 0}
    }


def test_without_materialized_inputs_rows_are_rebuilt_from_the_rollout(run: Path, tmp_path: Path) -> None:
    curriculum = build_curriculum([str(run)], CurriculumConfig(low=0.5, high=0.5))
    out = tmp_path / "next.jsonl"
    curriculum.write(out)
    # no response, reward, _ng_* key; the result's null defaults gone (NeMo Gym refuses them)
    assert lines(out) == [
        {
            "responses_create_params": {"input": [{"role": "user", "content": "task 2 of math_agent"}]},
            "expected_answer": "2",
            "agent_ref": AGENT,
        }
    ]
    assert curriculum.report()["rows_from"] == {"rollout": 1}


def test_repeats_write_each_row_n_times_in_a_row(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "next.jsonl"
    assert build_curriculum([str(run)], CurriculumConfig(repeats=3)).write(out) == 12
    rows = out.read_text().splitlines()
    assert [rows[i] == rows[i + 1] == rows[i + 2] for i in range(0, 12, 3)] == [True] * 4
    assert len(set(rows)) == 4


def test_the_cap_is_a_seeded_choice_per_type_not_the_first_n(tmp_path: Path) -> None:
    other = {"type": "responses_api_agents", "name": "code_agent"}
    rows = [rollout(t, i, float(i % 2)) for t in range(8) for i in range(2)]
    rows += [rollout(t, i, float(i % 2), agent=other) for t in range(2) for i in range(2)]
    path = write_jsonl(tmp_path / "run.jsonl", rows)
    choices = []
    for seed in range(6):
        curriculum = build_curriculum([str(path)], CurriculumConfig(max_per_type=3, seed=seed))
        report = curriculum.report()
        assert report["per_type"]["math_agent"]["kept"] == 3
        assert report["per_type"]["math_agent"]["over_cap"] == 5
        assert report["per_type"]["code_agent"]["kept"] == 2
        choices.append(
            tuple(row["expected_answer"] for row in curriculum.rows.values() if row["agent_ref"] == AGENT)
        )
    first = build_curriculum([str(path)], CurriculumConfig(max_per_type=3, seed=0))
    assert tuple(r["expected_answer"] for r in first.rows.values() if r["agent_ref"] == AGENT) == choices[0]
    assert len(set(choices)) > 1  # the seed chooses
    assert any(choice != ("0", "1", "2") for choice in choices)


def profile_row(task: int, rewards: list[float], *, infos: bool) -> dict[str, Any]:
    """A reward-profiling line: with ``rollout_infos`` (NeMo Gym 0.7) or only the statistics."""
    row: dict[str, Any] = {
        "_ng_task_index": task,
        "mean/reward": sum(rewards) / len(rewards),
        "min/reward": min(rewards),
        "max/reward": max(rewards),
        "sample": {
            k: v for k, v in input_row(task).items() if k not in ("_ng_task_index", "_ng_rollout_index")
        },
        "num_rollouts": len(rewards),
    }
    if infos:
        row["rollout_infos"] = [
            {"rollout_id": f"{task}:{i}", "_ng_task_index": task, "_ng_rollout_index": i, "reward": r}
            for i, r in enumerate(rewards)
        ]
    return row


def test_a_reward_profile_gives_rates_and_its_samples_as_rows(tmp_path: Path) -> None:
    profile = write_jsonl(
        tmp_path / "old_reward_profiling.jsonl",
        [
            profile_row(0, [1, 0, 0, 0], infos=True),  # 0.25 from its rollouts
            profile_row(1, [0.5, 0.5], infos=True),  # partial rewards: 0.0 at the default threshold
            profile_row(2, [1, 0], infos=False),  # 0.5 from mean/reward
            profile_row(3, [1, 1], infos=False),  # min/reward reaches 1.0: 1.0
        ],
    )
    curriculum = build_curriculum([str(profile)])
    assert [(t.rate, t.rate_from) for t in curriculum.tasks.values()] == [
        (0.25, "profile_rollouts"),
        (0.0, "profile_rollouts"),
        (0.5, "profile_mean"),
        (1.0, "profile_mean"),
    ]
    out = tmp_path / "next.jsonl"
    curriculum.write(out)
    assert [row["expected_answer"] for row in lines(out)] == ["0", "2"]
    assert all(not any(k.startswith("_ng_") for k in row) for row in lines(out))
    assert curriculum.report()["rows_from"] == {"profile_sample": 2}


def test_a_profile_beside_rollouts_read_is_not_counted_twice(run: Path, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "run_reward_profiling.jsonl", [profile_row(9, [1, 0], infos=True)])
    curriculum = build_curriculum([str(tmp_path)])
    assert len(curriculum.tasks) == len(REWARDS)
    assert curriculum.report()["profiles"]["skipped_rollouts_read"] == [
        str(tmp_path / "run_reward_profiling.jsonl")
    ]


def test_a_profile_task_has_the_key_of_its_rollouts(run: Path, tmp_path: Path) -> None:
    profile = write_jsonl(tmp_path / "other_reward_profiling.jsonl", [profile_row(2, [1, 0], infos=True)])
    from_rollouts = task_pass_rates([str(run)])
    assert set(task_pass_rates([str(profile)])) <= set(from_rollouts)


def test_cli_writes_rows_and_a_report_accounting_for_every_task(run: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "next.jsonl", tmp_path / "report.json"
    result = rollcraft("curriculum", str(run), "-o", str(out), "--report", str(report), "--repeats", "2")
    assert result.returncode == 0, result.stderr
    assert "Tasks 6: kept 4 + too easy 1 + too hard 1 + over cap 0 + no input row 0" in result.stdout
    assert "Wrote 8 rows (4 tasks x 2)" in result.stdout
    data = json.loads(report.read_text())
    assert sum(data["outcomes"].values()) == data["tasks"] == len(data["task_list"]) == 6
    assert len(lines(out)) == data["rows_written"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pass-rate", "0.9:0.1"], "--pass-rate"),
        (["--pass-rate", "half"], "--pass-rate"),
        (["--repeats", "0"], "--repeats"),
        (["--max-per-type", "0"], "--max-per-type"),
    ],
)
def test_cli_bad_options_are_one_error_exit_2(
    run: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "next.jsonl"
    result = rollcraft("curriculum", str(run), "-o", str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_refuses_to_overwrite_an_input_and_reads_no_rows_as_tasks(run: Path, tmp_path: Path) -> None:
    before = run.read_bytes()
    result = rollcraft("curriculum", str(run), "-o", str(run))
    assert result.returncode == 2 and "is also an input" in result.stderr
    assert run.read_bytes() == before
    sft = write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    result = rollcraft("curriculum", str(sft), "-o", str(tmp_path / "next.jsonl"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "next.jsonl").exists()


def test_a_task_whose_every_attempt_failed_is_too_hard(run: Path, tmp_path: Path) -> None:
    failures = [{**input_row(7), "_ng_rollout_index": i, "_ng_failure_class": "timeout"} for i in range(2)]
    write_jsonl(tmp_path / "run_failures.jsonl", failures)
    report = build_curriculum([str(run)]).report()
    failed_only = [t for t in report["task_list"] if t["failed"] == 2]
    assert [(t["rollouts"], t["pass_rate"], t["outcome"]) for t in failed_only] == [(2, 0.0, "too_hard")]
    assert report["tasks"] == len(REWARDS) + 1


def test_a_task_in_the_band_without_an_input_row_is_counted(tmp_path: Path) -> None:
    tutorial = [{"output": [], "reward": r, "task_id": "t1", "metadata": {"task_type": "qa"}} for r in (1, 0)]
    curriculum = build_curriculum([str(write_jsonl(tmp_path / "tutorial.jsonl", tutorial))])
    assert curriculum.report()["outcomes"]["no_input_row"] == 1
    assert curriculum.rows == {}


def test_the_same_inputs_and_seed_give_the_same_bytes(run: Path, tmp_path: Path) -> None:
    config = CurriculumConfig(low=0.0, high=1.0, max_per_type=3, seed=5, repeats=2)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    build_curriculum([str(run)], config).write(first)
    build_curriculum([str(run)], config).write(second)
    assert first.read_bytes() == second.read_bytes() and len(lines(first)) == 6


def test_materialized_inputs_alone_are_no_tasks(tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "run_materialized_inputs.jsonl", [input_row(0)])
    result = rollcraft("curriculum", str(rows), "-o", str(tmp_path / "next.jsonl"))
    assert result.returncode == 2 and "give their rollouts X.jsonl" in result.stderr
