"""``evaluate``: the planted improvement and regression are found, and no difference where there is none."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rollcraft import ConfigError, InputError
from rollcraft.evaluate import (
    IMPROVED,
    NO_CHANGE,
    REGRESSED,
    Score,
    bootstrap_ci,
    compare,
    evaluate_files,
    pass_at_k,
    permutation_p_value,
    render_html,
)
from tests import conftest

FIXTURES = conftest.FIXTURES / "evaluate"
BASELINE = str(FIXTURES / "baseline.jsonl")
RESULT_KEYS = {"baseline", "candidate", "difference", "ci95", "p_value", "verdict"}


def rollcraft(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True)


def verdicts(path: str) -> dict[str, str]:
    comparison = evaluate_files(BASELINE, str(FIXTURES / path), bootstrap_samples=2000, permutations=2000)
    found = {f"overall/{m}": r.verdict for m, r in comparison.overall.items()}
    for task_type, metrics in comparison.by_task_type.items():
        found.update({f"{task_type}/{m}": r.verdict for m, r in metrics.items()})
    return found


# ---------------------------------------------------------------- the statistics


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_permutation_test_is_exact_for_few_tasks() -> None:
    rng = random.Random(0)
    assert permutation_p_value([1.0] * 5, permutations=10, rng=rng) == pytest.approx(2 / 32)
    assert permutation_p_value([1.0, -1.0], permutations=10, rng=rng) == 1.0
    assert permutation_p_value([0.0] * 9, permutations=10, rng=rng) == 1.0


def test_monte_carlo_p_value_and_bootstrap_are_seeded() -> None:
    diffs = [random.Random(i).choice([-1.0, 0.0, 1.0, 1.0]) for i in range(60)]
    first = permutation_p_value(diffs, permutations=500, rng=random.Random(3))
    assert first == permutation_p_value(diffs, permutations=500, rng=random.Random(3))
    lo, hi = bootstrap_ci(diffs, samples=500, rng=random.Random(3))
    assert lo < sum(diffs) / len(diffs) < hi
    assert (lo, hi) == bootstrap_ci(diffs, samples=500, rng=random.Random(3))


def test_compare_pairs_by_task_and_reports_the_unpaired() -> None:
    base = [Score(f"t{i}", "a", 0.0, False) for i in range(25)] + [Score("gone", "a", 1.0, True)]
    cand = [Score(f"t{i}", "a", 1.0, True) for i in range(25)] + [Score("new", "a", 1.0, True)]
    result = compare(base, cand, bootstrap_samples=300, permutations=300)
    assert result.paired_tasks == 25
    assert (result.only_in_baseline, result.only_in_candidate) == (["gone"], ["new"])
    assert result.overall["success_rate"].verdict == IMPROVED
    assert result.overall["success_rate"].ci95 == (1.0, 1.0)
    assert "pass_at_k" not in result.overall  # one rollout per task


# ---------------------------------------------------------------- the crafted files


def test_planted_improvement_is_found_where_it_was_planted() -> None:
    found = verdicts("improved.jsonl")
    assert found["overall/success_rate"] == found["overall/mean_reward"] == IMPROVED
    assert found["math/success_rate"] == found["math/mean_reward"] == IMPROVED
    assert {found[f"code/{m}"] for m in ("success_rate", "mean_reward", "pass_at_k")} == {NO_CHANGE}


def test_planted_regression_is_found_where_it_was_planted() -> None:
    found = verdicts("regressed.jsonl")
    assert found["overall/success_rate"] == found["math/pass_at_k"] == REGRESSED
    assert found["code/success_rate"] == NO_CHANGE


@pytest.mark.parametrize("name", ["same.jsonl", "noise.jsonl"])
def test_no_difference_where_there_is_none(name: str) -> None:
    assert set(verdicts(name).values()) == {NO_CHANGE}


def test_identical_outcomes_give_zero_difference_and_p_one() -> None:
    result = evaluate_files(BASELINE, str(FIXTURES / "same.jsonl"), bootstrap_samples=200, permutations=200)
    r = result.overall["success_rate"]
    assert (r.difference, r.ci95, r.p_value) == (0.0, (0.0, 0.0), 1.0)
    assert result.settings["k"] == 3


# ---------------------------------------------------------------- the command


def test_cli_json_html_and_exit_status(tmp_path: Path) -> None:
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    done = rollcraft(
        "evaluate", BASELINE, str(FIXTURES / "improved.jsonl"), "--json", str(report), "--html", str(page)
    )
    assert done.returncode == 0, done.stderr
    assert "improved" in done.stdout and "only in the candidate file" in done.stdout
    assert "baseline: Read 123 lines: 123 rollouts + 0 quarantined" in done.stdout
    assert "candidate: Read 126 lines: 126 rollouts + 0 quarantined" in done.stdout
    data = json.loads(report.read_text())
    assert set(data["overall"]) == {"mean_reward", "success_rate", "pass_at_k"}
    for metrics in [data["overall"], *data["by_task_type"].values()]:
        for result in metrics.values():
            assert RESULT_KEYS <= set(result)
            assert result["verdict"] in (IMPROVED, REGRESSED, NO_CHANGE)
            assert len(result["ci95"]) == 2
    assert set(data["by_task_type"]) == {"math", "code"}
    assert data["only_in_candidate"] == ["task_id:fixture_agent:new-1", "task_id:fixture_agent:new-2"]
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 6


def test_cli_fail_on_regression() -> None:
    regressed = str(FIXTURES / "regressed.jsonl")
    assert rollcraft("evaluate", BASELINE, regressed, "--samples", "500").returncode == 0
    failed = rollcraft("evaluate", BASELINE, regressed, "--samples", "500", "--fail-on-regression")
    assert failed.returncode == 1 and "regressed" in failed.stderr
    improved = str(FIXTURES / "improved.jsonl")
    assert (
        rollcraft("evaluate", BASELINE, improved, "--samples", "500", "--fail-on-regression").returncode == 0
    )


def test_files_without_common_tasks_are_one_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text((FIXTURES / "baseline.jsonl").read_text().replace('"task_id": "', '"task_id": "x'))
    done = rollcraft("evaluate", BASELINE, str(other))
    assert done.returncode == 2 and "share no task" in done.stderr and "Traceback" not in done.stderr


def test_a_file_of_no_rollouts_is_named_not_compared(tmp_path: Path) -> None:
    sft = tmp_path / "sft.jsonl"
    sft.write_text(
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    with pytest.raises(
        InputError, match=r"no rollouts in the candidate \(.*sft.jsonl\): .*looks like SFT rows"
    ):
        evaluate_files(BASELINE, str(sft))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = rollcraft("evaluate", str(empty), BASELINE)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no rollouts in the baseline" in done.stderr and "empty (0 lines)" in done.stderr


def test_a_bad_k_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="k: must be at least 1"):
        compare([Score("t", "a", 1.0, True)], [Score("t", "a", 1.0, True)], k=0)


def test_render_html_is_self_contained() -> None:
    result = evaluate_files(
        BASELINE, str(FIXTURES / "regressed.jsonl"), bootstrap_samples=200, permutations=200
    )
    html = render_html(result)
    assert "regressed" in html and "<script" not in html
