"""Review sampling, review decisions and balancing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollcraft import ConfigError, InputError, Rollout, read_rollouts
from rollcraft.curate import (
    BalanceReport,
    Decision,
    ReviewReport,
    SampleReport,
    Strata,
    apply_review,
    balance,
    category_of,
    read_decisions,
    sample_for_review,
)
from rollcraft.filters import Drop


def record(reward: float, task_type: str, i: int) -> dict[str, Any]:
    return {
        "responses_create_params": {"input": f"question {i}"},
        "response": {"output": [{"type": "message", "role": "assistant", "content": f"answer {i}"}]},
        "reward": reward,
        "metadata": {"task_type": task_type, "level": i % 3},
    }


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """300 rollouts: rewards cycle 0.0 / 0.6 / 0.9, task types math (2/3) and code (1/3)."""
    rows = [record([0.0, 0.6, 0.9][i % 3], "math" if i % 3 else "code", i) for i in range(300)]
    path = tmp_path / "pool.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def ids(rollouts: Any) -> list[str]:
    return [r.rollout_id for r in rollouts]


def test_strata_bands_and_labels() -> None:
    strata = Strata()
    assert strata.labels == ["<0.5", "0.5-0.8", ">=0.8"]
    assert [strata.band(x) for x in (-1.0, 0.49, 0.5, 0.79, 0.8, 3.0)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ConfigError, match="sizes"):
        Strata((0.5,), (1, 2, 3))
    with pytest.raises(ConfigError, match="increasing"):
        Strata((0.8, 0.5), (1, 2, 3))


def test_sample_takes_the_tutorial_sizes_per_band(pool: Path) -> None:
    report = SampleReport()
    picked = list(sample_for_review([str(pool)], seed=0, by="none", report=report))
    bands = Counter(Strata().labels[Strata().band(r.reward)] for r in picked)
    assert bands == Counter({"<0.5": 10, "0.5-0.8": 20, ">=0.8": 20})
    assert report.read.rollouts == 300 and sum(report.chosen.values()) == 50


def test_sample_is_also_stratified_by_task_type(pool: Path) -> None:
    strata = Strata((0.5,), (6, 10))
    picked = list(sample_for_review([str(pool)], strata=strata, seed=0))
    by_type = Counter((r.reward >= 0.5, r.task_type) for r in picked)
    # <0.5 holds only code; >=0.5 holds only math (0.6 and 0.9 rewards): each band goes to what it has
    assert by_type == Counter({(False, "code"): 6, (True, "math"): 10})


def test_sample_shares_a_band_evenly_across_task_types(tmp_path: Path) -> None:
    rows = [record(0.0, "a", i) for i in range(50)] + [record(0.0, "b", 100 + i) for i in range(3)]
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    picked = list(sample_for_review([str(path)], strata=Strata((), (10,)), seed=5))
    assert Counter(r.task_type for r in picked) == Counter({"a": 7, "b": 3})


def test_the_slots_that_do_not_divide_evenly_go_to_seeded_random_categories(tmp_path: Path) -> None:
    rows = [record(0.0, kind, 100 * n + i) for n, kind in enumerate("abc") for i in range(20)]
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def extra(seed: int) -> str:
        picked = Counter(
            r.task_type for r in sample_for_review([str(path)], strata=Strata((), (10,)), seed=seed)
        )
        assert sorted(picked.values()) == [3, 3, 4]  # still even: 10 slots over 3 task types
        return next(kind for kind, n in picked.items() if n == 4)

    winners = [extra(seed) for seed in range(12)]
    assert winners == [extra(seed) for seed in range(12)]  # the same seed, the same choice
    assert set(winners) == {"a", "b", "c"}  # not always the first name in alphabetical order


def test_same_seed_same_sample_other_seed_other_sample(pool: Path) -> None:
    first = ids(sample_for_review([str(pool)], seed=7))
    assert first == ids(sample_for_review([str(pool)], seed=7))
    assert first != ids(sample_for_review([str(pool)], seed=8))


def test_sample_yields_in_input_order(pool: Path) -> None:
    lines = [r.line for r in sample_for_review([str(pool)], seed=1)]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)


def test_balance_is_a_seeded_random_choice_not_the_first_n(pool: Path) -> None:
    report = BalanceReport()
    kept = list(balance([str(pool)], max_per_category=10, seed=0, report=report))
    assert report.before == Counter({"math": 200, "code": 100})
    assert report.after == Counter({"math": 10, "code": 10})
    first_math = [
        r.line for r in read_rollouts([str(pool)]) if isinstance(r, Rollout) and r.task_type == "math"
    ]
    kept_math = [r.line for r in kept if r.task_type == "math"]
    assert kept_math != first_math[:10] and kept_math == sorted(kept_math)
    assert ids(kept) == ids(balance([str(pool)], max_per_category=10, seed=0))
    assert ids(kept) != ids(balance([str(pool)], max_per_category=10, seed=1))


def test_balance_by_a_record_field(pool: Path) -> None:
    report = BalanceReport()
    kept = list(balance([str(pool)], max_per_category=150, by="metadata.level", report=report))
    assert report.before == Counter({"0": 100, "1": 100, "2": 100}) and len(kept) == 300
    rollout = kept[0]
    assert category_of(rollout, "nope.x") == "(missing)" and category_of(rollout, "none") == "all"


def test_balance_by_a_field_nested_deeper_than_json_text_is_one_category(tmp_path: Path) -> None:
    deep = b"[" * 300 + b'"leaf"' + b"]" * 300  # read (an unused field), but orjson writes 254 levels
    lines = [orjson.dumps({**record(1.0, "math", i), "usage": {"x": i}}) for i in range(4)]
    lines[1::2] = [line.replace(b'"x":%d' % i, b'"x":' + deep) for i, line in enumerate(lines) if i % 2]
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    report = BalanceReport()
    kept = list(balance([str(path)], max_per_category=1, by="usage.x", report=report))
    assert report.before == Counter({"0": 1, "2": 1, "(too deeply nested)": 2}) and len(kept) == 3


def write_decisions(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path


def test_read_decisions_later_wins(tmp_path: Path) -> None:
    path = write_decisions(
        tmp_path / "d.jsonl",
        [
            {"rollout_id": "a", "decision": "reject", "note": "bad"},
            b"",
            {"rollout_id": "a", "decision": "accept"},
            {"id": "b", "decision": "reject"},
        ],
    )
    assert read_decisions(path) == {"a": Decision("a", "accept", ""), "b": Decision("b", "reject", "")}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"{oops", "d.jsonl:2: bad decision: not valid JSON"),
        ({"rollout_id": "x", "decision": "maybe"}, 'd.jsonl:2: bad decision: "decision" must be'),
        ({"decision": "accept"}, 'd.jsonl:2: bad decision: no "rollout_id"'),
        ([1], "d.jsonl:2: bad decision: not a JSON object"),
    ],
)
def test_a_malformed_decision_names_file_and_line(tmp_path: Path, row: Any, message: str) -> None:
    path = write_decisions(tmp_path / "d.jsonl", [{"rollout_id": "ok", "decision": "accept"}, row])
    with pytest.raises(InputError) as info:
        read_decisions(path)
    assert message in str(info.value)


def test_apply_review_drops_rejected_and_counts_unmatched(pool: Path) -> None:
    rollouts = [r for r in read_rollouts([str(pool)]) if isinstance(r, Rollout)]
    decisions = {
        rollouts[0].rollout_id: Decision(rollouts[0].rollout_id, "reject", "wrong answer"),
        rollouts[1].rollout_id: Decision(rollouts[1].rollout_id, "accept"),
        "0000000000000000": Decision("0000000000000000", "reject"),
    }
    report = ReviewReport()
    verdicts = list(apply_review(read_rollouts([str(pool)]), decisions, report=report))
    assert verdicts[0][1] == Drop("review", "wrong answer") and verdicts[1][1] is None
    assert (report.kept, report.rejected, report.accepted, report.undecided) == (299, 1, 1, 298)
    assert report.unmatched == ["0000000000000000"]
    strict = ReviewReport()
    kept = [r for r, d in apply_review(rollouts, decisions, drop_undecided=True, report=strict) if d is None]
    assert ids(kept) == [rollouts[1].rollout_id] and strict.dropped_undecided == 298


def test_read_decisions_takes_every_choice_the_review_page_writes(tmp_path: Path) -> None:
    rows = [
        {"rollout_id": i, "decision": c, "note": "", "reviewer": "ann", "time": "2025-01-01T12:00:00Z"}
        for i, c in (("a", "accept"), ("b", "reject"), ("c", "skip"))
    ]
    decisions = read_decisions(write_decisions(tmp_path / "d.jsonl", rows))
    assert {i: d.decision for i, d in decisions.items()} == {"a": "accept", "b": "reject", "c": "skip"}
    assert decisions["a"].reviewer == "ann" and decisions["a"].time == "2025-01-01T12:00:00Z"


def test_the_review_page_and_apply_review_share_one_decision_type() -> None:
    from rollcraft.review import DECISIONS as PAGE_DECISIONS
    from rollcraft.review import Decision as PageDecision
    from rollcraft.review import read_decisions as page_reader

    assert Decision is PageDecision and read_decisions is page_reader
    assert PAGE_DECISIONS == ("accept", "reject", "skip")


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = write_decisions(tmp_path / "d.jsonl", [{"rollout_id": "a", "decision": "reject"}])
    with path.open("ab") as handle:
        handle.write(b'{"rollout_id": "b", "deci')  # a server killed in the middle of a write
    warnings: list[str] = []
    assert list(read_decisions(path, warn=warnings.append)) == ["a"]
    assert warnings == [f"{path}:2: skipped a torn last line (a partial write without its newline)"]
    with path.open("ab") as handle:
        handle.write(b"\n")  # the same bytes as a whole line are an error, not a torn line
    with pytest.raises(InputError, match=r"d\.jsonl:2: bad decision: not valid JSON"):
        read_decisions(path)


def test_a_whole_last_line_without_its_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"rollout_id": "a", "decision": "reject"}')
    warnings: list[str] = []
    assert read_decisions(path, warn=warnings.append)["a"].decision == "reject" and not warnings


def test_a_skip_is_no_decision(pool: Path) -> None:
    rollouts = [r for r in read_rollouts([str(pool)]) if isinstance(r, Rollout)]
    first, second = rollouts[0].rollout_id, rollouts[1].rollout_id
    decisions = {first: Decision(first, "skip", "later"), second: Decision(second, "reject")}
    report = ReviewReport()
    verdicts = dict(
        (r.rollout_id, d) for r, d in apply_review(rollouts, decisions, drop_undecided=True, report=report)
    )
    assert verdicts[first] == Drop("undecided", "no review decision")
    assert (report.accepted, report.rejected, report.skipped, report.undecided) == (0, 1, 1, 299)
    assert report.unmatched == [] and report.to_dict()["skipped"] == 1


def test_the_pipelines_review_step_reads_what_the_review_page_writes(pool: Path, tmp_path: Path) -> None:
    from rollcraft.pipeline import run_pipeline

    rollouts = [r for r in read_rollouts([str(pool)]) if isinstance(r, Rollout)]
    rows = [
        {"rollout_id": r.rollout_id, "decision": c, "note": "n", "time": "2025-01-01T12:00:00Z"}
        for r, c in zip(rollouts, ["accept", "reject", "skip"], strict=False)
    ]
    decisions = write_decisions(tmp_path / "d.jsonl", rows)
    with decisions.open("ab") as handle:
        handle.write(b'{"rollout_id": "')  # a torn last line
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f'inputs: ["{pool}"]\noutput_dir: out\nwrite_filtered: true\nreview: {{decisions: d.jsonl}}\n'
    )
    manifest = orjson.loads((run_pipeline(config).folder / "manifest.json").read_bytes())
    assert manifest["counts"]["review"] == {"rejected": 1, "decisions_matched": 2}
