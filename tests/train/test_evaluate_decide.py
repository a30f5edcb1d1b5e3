"""``evaluate``'s comparisons that decide: flips and McNemar, Holm across candidates, ``--plan``,
and NeMo Gym's aggregate metrics beside a rollout file. Every expected number is worked by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import xxhash

from rollcraft.evaluate import (
    IMPROVED,
    NO_CHANGE,
    Score,
    compare,
    evaluate_files,
    evaluate_many,
    holm_bonferroni,
    mcnemar_exact,
    plan_run,
    task_correlation,
)

AGENT = "simple_agent"
#: z(0.975) and z(0.8), for the plan's expected numbers.
Z_975, Z_80 = 1.959963984540054, 0.8416212335729143
#: The two files and each one's rollout ids per task.
Paired = tuple[Path, Path, dict[str, list[str]], dict[str, list[str]]]


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def write_run(path: Path, tasks: Mapping[str, Sequence[float]], run: str) -> dict[str, list[str]]:
    """NeMo Gym rollouts (one line per reward), and each task's rollout ids (XXH3-64 of the line)."""
    lines: list[str] = []
    ids: dict[str, list[str]] = {}
    for index, (task, rewards) in enumerate(tasks.items()):
        for repeat, reward in enumerate(rewards):
            record = {
                "responses_create_params": {"input": [{"role": "user", "content": f"Solve {task}."}]},
                "response": {"output": [{"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": f"{run} answer {repeat}"}]}]},
                "reward": reward, "task_id": task, "agent_ref": {"name": AGENT},
                "_ng_task_index": index, "_ng_rollout_index": repeat,
            }  # fmt: skip
            line = json.dumps(record)
            lines.append(line)
            ids.setdefault(f"task_id:{AGENT}:{task}", []).append(xxhash.xxh3_64_hexdigest(line.encode()))
    path.write_text("\n".join(lines) + "\n")
    return ids


# a: fail->pass; b1..b6: pass->fail (b1 with 3 rollouts: 2/3 -> 1/3); c: both pass; d: both fail;
# e: a tie in the baseline (1 of 2), so not a flip; x: baseline only, not attempted by the candidate.
BASELINE = {"a": [0], "b1": [1, 1, 0], **{f"b{i}": [1] for i in range(2, 7)}, "c": [1], "d": [0],
            "e": [1, 0], "x": [1]}  # fmt: skip
CANDIDATE = {"a": [1], "b1": [0, 1, 0], **{f"b{i}": [0] for i in range(2, 7)}, "c": [1], "d": [0],
             "e": [1, 1]}  # fmt: skip


@pytest.fixture
def paired(tmp_path: Path) -> Paired:
    base, cand = tmp_path / "base.jsonl", tmp_path / "cand.jsonl"
    return base, cand, write_run(base, BASELINE, "base"), write_run(cand, CANDIDATE, "cand")


def key(task: str) -> str:
    return f"task_id:{AGENT}:{task}"


# ---------------------------------------------------------------- McNemar and the flips


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (1, 6, 0.125),  # 2 * (C(7,0) + C(7,1)) / 2^7 = 2 * 8 / 128
        (6, 1, 0.125),
        (0, 5, 0.0625),  # 2 / 32
        (2, 8, 0.109375),  # 2 * (1 + 10 + 45) / 1024
        (0, 0, 1.0),
        (4, 4, 1.0),  # capped at 1
        (0, 20, 2 / 2**20),
    ],
)
def test_mcnemar_exact_p_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == p


def test_paired_files_give_the_exact_flips_and_p(paired: Paired) -> None:
    base, cand, base_ids, cand_ids = paired
    binary = evaluate_files(str(base), str(cand), bootstrap_samples=200, permutations=200).paired_binary
    assert binary is not None
    counts = (binary.tasks, binary.fail_to_pass, binary.pass_to_fail, binary.both_pass, binary.both_fail)
    assert counts == (10, 1, 6, 1, 1) and binary.tied == 1
    assert binary.mcnemar_p == 0.125
    assert [(f.direction, f.task) for f in binary.flips] == [
        *(("pass_to_fail", key(f"b{i}")) for i in range(1, 7)),
        ("fail_to_pass", key("a")),
    ]
    b1 = binary.flips[0]
    assert (b1.baseline.passed, b1.baseline.rollouts) == (2, 3)
    assert (b1.candidate.passed, b1.candidate.rollouts) == (1, 3)
    for flip in binary.flips:
        assert list(flip.baseline.rollout_ids) == base_ids[flip.task]
        assert list(flip.candidate.rollout_ids) == cand_ids[flip.task]


def test_cli_json_and_text_carry_the_paired_binary(paired: Paired, tmp_path: Path) -> None:
    base, cand, base_ids, cand_ids = paired
    report = tmp_path / "r.json"
    done = rollcraft("evaluate", str(base), str(cand), "--samples", "200", "--json", str(report))
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text())["paired_binary"]
    assert {k: data[k] for k in ("tasks", "fail_to_pass", "pass_to_fail", "mcnemar_p")} == {
        "tasks": 10, "fail_to_pass": 1, "pass_to_fail": 6, "mcnemar_p": 0.125,
    }  # fmt: skip
    assert (data["both_pass"], data["both_fail"], data["tied"]) == (1, 1, 1)
    assert data["flips"][-1] == {
        "task": key("a"),
        "task_type": AGENT,
        "direction": "fail_to_pass",
        "baseline": {"passed": 0, "rollouts": 1, "rollout_ids": base_ids[key("a")]},
        "candidate": {"passed": 1, "rollouts": 1, "rollout_ids": cand_ids[key("a")]},
    }
    counts = "fail->pass 1, pass->fail 6, both pass 1, both fail 1, tied 1; McNemar exact p = 0.125"
    assert counts in done.stdout
    assert f"fail->pass  {key('a')}  baseline 0/1 [{base_ids[key('a')][0]}]" in done.stdout


def test_a_task_solved_by_most_rollouts_and_ties() -> None:
    base = [Score("t", "x", r, r == 1.0, f"b{i}") for i, r in enumerate([1.0, 1.0, 0.0])]
    cand = [Score("t", "x", r, r == 1.0, f"c{i}") for i, r in enumerate([1.0, 0.0, 0.0, 1.0])]
    binary = compare(base, cand, bootstrap_samples=100, permutations=100).paired_binary
    assert binary is not None and (binary.tied, binary.both_pass, binary.flips) == (1, 0, [])
    cand = cand[:3]  # 1 of 3: fails
    binary = compare(base, cand, bootstrap_samples=100, permutations=100).paired_binary
    assert binary is not None and [f.direction for f in binary.flips] == ["pass_to_fail"]
    assert binary.flips[0].candidate.rollout_ids == ("c0", "c1", "c2")


def test_rewards_that_are_not_all_0_or_1_give_no_paired_binary(tmp_path: Path) -> None:
    base, cand = tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_run(base, {"a": [1.0, 0.5], "b": [0.0]}, "base")
    write_run(cand, {"a": [1.0, 1.0], "b": [1.0]}, "cand")
    report = tmp_path / "r.json"
    done = rollcraft("evaluate", str(base), str(cand), "--samples", "100", "--json", str(report))
    assert done.returncode == 0, done.stderr
    data = json.loads(report.read_text())
    assert "paired_binary" not in data and "Paired binary" not in done.stdout
    assert "p_adjusted" not in data["overall"]["mean_reward"] and "correction" not in data["settings"]


# ---------------------------------------------------------------- several candidates, Holm


def test_holm_bonferroni_on_known_p_values() -> None:
    # sorted 0.01, 0.03, 0.04, 0.5: x4 = 0.04, x3 = 0.09, x2 = 0.08 -> 0.09 (monotone), x1 = 0.5
    assert holm_bonferroni([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm_bonferroni([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    assert holm_bonferroni([0.9, 0.8]) == [1.0, 1.0]
    assert holm_bonferroni([]) == []


def test_several_candidates_are_holm_adjusted(tmp_path: Path) -> None:
    # 6 of 10 tasks go 0 -> 1, the rest stay: the exact sign-flip p is 2 / 2^6 = 0.03125
    base, one, two = tmp_path / "base.jsonl", tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_run(base, {f"t{i}": [0] for i in range(10)}, "base")
    write_run(one, {f"t{i}": [int(i < 6)] for i in range(10)}, "one")
    write_run(two, {f"t{i}": [int(i >= 4)] for i in range(10)}, "two")
    alone = evaluate_files(str(base), str(one), bootstrap_samples=500, permutations=500)
    assert alone.overall["success_rate"].p_value == 0.03125
    assert alone.overall["success_rate"].verdict == IMPROVED
    assert alone.overall["success_rate"].p_adjusted is None
    both = evaluate_many(str(base), [str(one), str(two)], bootstrap_samples=500, permutations=500)
    for result in both:
        r = result.overall["success_rate"]
        assert (r.p_value, r.p_adjusted, r.verdict) == (0.03125, 0.0625, NO_CHANGE)
        assert result.paired_binary is not None
        assert (result.paired_binary.mcnemar_p, result.paired_binary.mcnemar_p_adjusted) == (0.03125, 0.0625)
        assert result.settings["correction"] == "holm"
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    files = [str(base), str(one), str(two)]
    done = rollcraft("evaluate", *files, "--samples", "500", "--json", str(report), "--html", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert (
        html.count("<h2>Candidate ") == 2
        and "p (Holm)" in html
        and "McNemar exact p = 0.0312 (Holm 0.0625)" in html
    )
    data = json.loads(report.read_text())
    assert data["candidates"] == [str(one), str(two)] and data["correction"] == "holm"
    assert [c["overall"]["success_rate"]["p_adjusted"] for c in data["comparisons"]] == [0.0625, 0.0625]
    assert [c["paired_binary"]["mcnemar_p_adjusted"] for c in data["comparisons"]] == [0.0625, 0.0625]
    assert "p (Holm)" in done.stdout and "candidate 2: Read 10 lines" in done.stdout


# ---------------------------------------------------------------- --plan


# success per task: a 1,1  b 0,0  c 1,0  d 1,0 -> task means 1, 0, .5, .5 (variance 1/6);
# within: (0 + 0 + .5 + .5) / 4 = 0.25; between: 1/6 - 0.25 * mean(1/2) = 1/24
PLAN_TASKS = {"a": [1, 1], "b": [0, 0], "c": [1, 0], "d": [1, 0]}


def expected_tasks(repeats: int, rho: float, detect: float = 0.1) -> int:
    variance = 2 * (1 - rho) / 24 + 2 * 0.25 / repeats
    return math.ceil((Z_975 + Z_80) ** 2 * variance / detect**2)


def test_plan_numbers_on_a_crafted_variance(tmp_path: Path) -> None:
    base = tmp_path / "base.jsonl"
    write_run(base, PLAN_TASKS, "base")
    report = tmp_path / "plan.json"
    done = rollcraft("evaluate", str(base), "--plan", "--detect", "0.1", "--json", str(report))
    assert done.returncode == 0, done.stderr
    plan = json.loads(report.read_text())["plan"]
    assert plan["within_task_variance"] == pytest.approx(0.25)
    assert plan["between_task_variance"] == pytest.approx(1 / 24)
    assert [(r["repeats"], r["tasks"]) for r in plan["rows"][:3]] == [(1, 458), (2, 262), (4, 164)]
    assert [r["tasks"] for r in plan["rows"]] == [expected_tasks(r, 0.0) for r in (1, 2, 4, 8, 16, 32)]
    assert plan["rows"][1]["rollouts"] == 2 * 262
    assert plan["min_tasks"] == math.ceil((Z_975 + Z_80) ** 2 * (2 / 24) / 0.01) == 66
    se = math.sqrt((2 / 24 + 2 * 0.25 / 2) / 4)
    assert plan["baseline_power"] == pytest.approx(0.5 * (1 + math.erf((0.1 / se - Z_975) / math.sqrt(2))))
    assert "458" in done.stdout and "tasks x 2 repeats" in done.stdout
    half = plan_run([Score(f"{t}", "x", v, v == 1, "") for t, vs in PLAN_TASKS.items() for v in vs],
                    detect=0.1, correlation=0.5)  # fmt: skip
    assert [r.tasks for r in half.rows] == [expected_tasks(r, 0.5) for r in (1, 2, 4, 8, 16, 32)]


def test_plan_correlation_from_a_pilot_and_bad_knobs(tmp_path: Path) -> None:
    same = [Score(t, "x", v, v == 1) for t, vs in {"a": [1, 1], "b": [0, 0]}.items() for v in vs]
    flipped = [Score(t, "x", v, v == 1) for t, vs in {"a": [0, 0], "b": [1, 1]}.items() for v in vs]
    assert task_correlation(same, same) == 1.0 and task_correlation(same, flipped) == 0.0
    base, pilot = tmp_path / "base.jsonl", tmp_path / "pilot.jsonl"
    write_run(base, {"a": [1, 1], "b": [0, 0]}, "base")
    write_run(pilot, {"a": [1, 1], "b": [0, 0]}, "pilot")
    done = rollcraft("evaluate", str(base), str(pilot), "--plan", "--json", "-")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["correlation"] == 1.0 and plan["correlation_source"] == f"measured on {pilot}"
    assert plan["min_tasks"] == 0
    bad = rollcraft("evaluate", str(base), "--plan", "--power", "1.5")
    assert bad.returncode == 2 and "power: must be between 0 and 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    two = rollcraft("evaluate", str(base), str(pilot), str(pilot), "--plan")
    assert two.returncode == 2 and "at most one CANDIDATE" in two.stderr
    one_each = tmp_path / "single.jsonl"
    write_run(one_each, {"a": [1], "b": [0]}, "one")
    thin = rollcraft("evaluate", str(one_each), "--plan")
    assert thin.returncode == 2 and "a task with 2 or more rollouts" in thin.stderr
    assert rollcraft("evaluate", str(base)).returncode == 2


# ---------------------------------------------------------------- NeMo Gym's aggregate metrics

#: The shape `ng_collect_rollouts` writes beside `X.jsonl` (trimmed from Gym's blackjack example).
AGGREGATE = [
    {
        "agent_ref": {"name": AGENT},
        "agent_metrics": {"mean/reward": 0.2, "max/reward": 1.0, "std/reward": 1.0954451150103324},
        "key_metrics": {"mean/reward": 0.2, "mean/total_tokens": 165.0},
        "group_level_metrics": [{"_ng_task_index": 0, "mean/reward": 0.2}],
    }
]


def test_aggregate_metrics_beside_a_rollout_file_are_read(paired: Paired) -> None:
    base, cand, _, _ = paired
    sibling = base.with_name("base_aggregate_metrics.json")
    sibling.write_text(json.dumps(AGGREGATE, indent=2))
    done = rollcraft("evaluate", str(base), str(cand), "--samples", "100", "--json", "-")
    assert done.returncode == 0, done.stderr
    inputs = json.loads(done.stdout)["inputs"]
    assert inputs["baseline"]["aggregate_metrics"] == {
        "path": str(sibling),
        "agents": {
            AGENT: {
                "key_metrics": {"mean/reward": 0.2, "mean/total_tokens": 165.0},
                "agent_metrics": AGGREGATE[0]["agent_metrics"],
                "tasks": 1,
            }
        },
    }
    assert "aggregate_metrics" not in inputs["candidate"]
    line = f"baseline: NeMo Gym aggregate metrics ({sibling}), agent {AGENT}: "
    line += "mean/reward 0.2, mean/total_tokens 165"
    assert line in done.stderr
    sibling.write_text('{"not": "a list"}')
    text = rollcraft("evaluate", str(base), str(cand), "--samples", "100")
    assert text.returncode == 0
    assert f"{sibling}: not read as NeMo Gym aggregate metrics (expected a JSON list" in text.stdout
