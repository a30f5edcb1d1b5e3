"""Filter steps, config and reports: each rule pinned by its exact drop reason."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollcraft import ConfigError, InputError, ReadOptions, Rollout, parse_line, read_rollouts
from rollcraft._io import RawLine
from rollcraft.filters import (
    DEFAULT_DROP_FLAGS,
    Dedupe,
    Drop,
    DropFlagged,
    FilterConfig,
    FilterReport,
    MaxAssistantTurns,
    MaxChars,
    MaxReward,
    MaxTokens,
    MaxTurns,
    MinAssistantTurns,
    MinReward,
    MinTaskSuccessRate,
    MinTurns,
    RequireToolUsage,
    SuccessOnly,
    TaskStats,
    build_steps,
    judge,
    run_filters,
)
from rollcraft.steps import filter_paths

ASSISTANT = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
CALL = {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a": 1}'}
RESULT = {"type": "function_call_output", "call_id": "c1", "output": "2"}


def record(reward: float = 1.0, output: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "responses_create_params": {"input": "hello"},
        "response": {"output": output if output is not None else [ASSISTANT]},
        "reward": reward,
        **extra,
    }


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from rollcraft.tiny import save_tiny_tokenizer, synthetic_corpus

    return save_tiny_tokenizer(tmp_path_factory.mktemp("tok"), corpus=synthetic_corpus(300), vocab_size=400)


def rollout(reward: float = 1.0, output: list[Any] | None = None, **extra: Any) -> Rollout:
    item = parse_line(RawLine("t.jsonl", 1, 0, orjson.dumps(record(reward, output, **extra))), ReadOptions())
    assert isinstance(item, Rollout)
    return item


@pytest.mark.parametrize(
    ("step", "kept", "dropped", "reason"),
    [
        (MinReward(0.7), rollout(0.7), rollout(0.5), "reward 0.5 < 0.7"),
        (MaxReward(0.5), rollout(0.5), rollout(0.7), "reward 0.7 > 0.5"),
        (SuccessOnly(), rollout(1.0), rollout(0.5), "not a success (reward 0.5)"),
        (MinTurns(3), rollout(output=[CALL, RESULT, ASSISTANT]), rollout(), "1 turns < 3"),
        (MaxTurns(1), rollout(), rollout(output=[CALL, RESULT, ASSISTANT]), "3 turns > 1"),
        (MinAssistantTurns(2), rollout(output=[CALL, RESULT, ASSISTANT]), rollout(), "1 assistant turns < 2"),
        (MaxAssistantTurns(1), rollout(), rollout(output=[CALL, RESULT, ASSISTANT]), "2 assistant turns > 1"),
        (RequireToolUsage(), rollout(output=[CALL, RESULT, ASSISTANT]), rollout(), "no tool call"),
        (MaxChars(7), rollout(), rollout(output=[ASSISTANT, ASSISTANT]), "10 chars > 7"),
        (
            DropFlagged(frozenset(DEFAULT_DROP_FLAGS)),
            rollout(),
            rollout(mask_sample=True, verification_skipped=True),
            "flagged mask_sample, verification_skipped",
        ),
        (
            DropFlagged(frozenset({"unpaired_tool_call"})),
            rollout(),
            rollout(output=[CALL]),
            "flagged unpaired_tool_call",
        ),
    ],
)
def test_each_step_keeps_or_names_its_reason(step: Any, kept: Rollout, dropped: Rollout, reason: str) -> None:
    assert step.check(kept) is None
    assert step.check(dropped) == reason


def test_truncated_generation_is_dropped_by_default() -> None:
    cut = record(response={"output": [ASSISTANT], "incomplete_details": {"reason": "max_output_tokens"}})
    item = parse_line(RawLine("t", 1, 0, orjson.dumps(cut)), ReadOptions())
    assert isinstance(item, Rollout)
    (step,) = build_steps(FilterConfig())
    assert step.check(item) == "flagged truncated"


def test_dedupe_keeps_the_first_and_ignores_tool_call_ids() -> None:
    step = Dedupe()
    first = rollout(output=[CALL, RESULT, ASSISTANT])
    other_ids = [{**CALL, "call_id": "zz"}, {**RESULT, "call_id": "zz"}, ASSISTANT]
    assert step.check(first) is None
    assert step.check(rollout(0.5, output=other_ids)) == f"duplicate of {first.rollout_id}"
    assert step.check(rollout(output=[ASSISTANT, ASSISTANT])) is None


def test_dedupe_drops_exact_duplicate_lines() -> None:
    step = Dedupe()
    assert step.check(rollout()) is None
    assert step.check(rollout()) == f"duplicate of {rollout().rollout_id}"


def test_task_success_rate_uses_every_rollout_of_the_task() -> None:
    items = [rollout(1.0, task_id="a"), rollout(0.0, task_id="a"), rollout(0.0, task_id="b")]
    step = MinTaskSuccessRate(0.5, TaskStats.collect(items))
    assert [step.check(r) for r in items] == [None, None, "task success rate 0/1 = 0 < 0.5"]
    assert MinTaskSuccessRate(0.6, TaskStats.collect(items)).check(items[0]) == (
        "task success rate 1/2 = 0.5 < 0.6"
    )


def test_task_stats_add() -> None:
    a = TaskStats.collect([rollout(1.0, task_id="x")])
    b = TaskStats.collect([rollout(0.0, task_id="x")])
    assert (a + b).rate("task_id:x") == 0.5


def test_max_tokens_counts_the_chat_template(tiny_tokenizer: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer))
    item = rollout(output=[CALL, RESULT, ASSISTANT])
    text = tok.apply_chat_template(item.conversation.messages, tools=None, tokenize=False)
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    assert MaxTokens(n, str(tiny_tokenizer)).check(item) is None
    assert MaxTokens(n - 1, str(tiny_tokenizer)).check(item) == f"{n} tokens > {n - 1}"


def test_max_tokens_needs_a_tokenizer_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tokenizer"):
        FilterConfig(max_tokens=10)
    with pytest.raises(InputError, match="nope: not a folder"):
        build_steps(FilterConfig(max_tokens=10, tokenizer=str(tmp_path / "nope")))


# ----------------------------------------------------------------------------------------------
# Config


def test_step_order_is_the_config_order(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("dedupe: true\nmax_turns: 4\nmin_reward: 0.5\n")
    config = FilterConfig.from_yaml(path)
    assert [s.name for s in build_steps(config)] == ["dedupe", "max_turns", "min_reward", "drop_flagged"]
    assert [s.name for s in build_steps(FilterConfig(min_reward=0.5, dedupe=True))] == [
        "min_reward",
        "dedupe",
        "drop_flagged",
    ]


def test_flags_override_the_yaml_and_keep_its_order(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("filters:\n  max_turns: 4\n  min_reward: 0.5\n")
    config = FilterConfig.from_yaml(path).merged({"min_reward": 0.9, "require_tool_usage": True})
    assert config.min_reward == 0.9 and config.max_turns == 4
    assert [s.name for s in build_steps(config)][:3] == ["max_turns", "min_reward", "require_tool_usage"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_turns: 2\nmin_reward: high\n", "min_reward (line 2): Input should be a valid number"),
        ("dedupe: true\n\nmax_turnz: 3\n", "max_turnz (line 3): unknown filter key"),
        ("success_only: 1\n", "success_only (line 1): Input should be a valid boolean"),
        ("min_success_rate: 1.5\n", "min_success_rate (line 1): Input should be less than or equal to 1"),
        ("drop_flagged: [truncated, cutoff]\n", "drop_flagged (line 1): unknown flag cutoff"),
        ("max_tokens: 100\n", "tokenizer (line 1): max_tokens needs tokenizer"),
        ("- min_reward\n", "must be a mapping"),
        ("min_reward: [\n", "not valid YAML"),
    ],
)
def test_a_broken_config_names_the_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        FilterConfig.from_yaml(path)
    assert message in str(info.value)


def test_drop_flagged_empty_disables_and_comma_text_splits() -> None:
    assert [s.name for s in build_steps(FilterConfig(drop_flagged=[]))] == []
    assert FilterConfig(drop_flagged="truncated, mask_sample").drop_flagged == ["truncated", "mask_sample"]
    assert FilterConfig(drop_flagged="none").drop_flagged == []


# ----------------------------------------------------------------------------------------------
# Running and reporting


def test_first_match_attribution_and_alone_counts() -> None:
    items = [rollout(0.0, output=[CALL]), rollout(0.0), rollout(1.0, output=[CALL]), rollout(1.0)]
    report = FilterReport()
    steps = [MinReward(0.5), DropFlagged(frozenset({"unpaired_tool_call"}))]
    verdicts = [drop for _, drop in judge(items, steps, report)]
    assert verdicts == [
        Drop("min_reward", "reward 0 < 0.5"),
        Drop("min_reward", "reward 0 < 0.5"),
        Drop("drop_flagged", "flagged unpaired_tool_call"),
        None,
    ]
    assert report.dropped == Counter({"min_reward": 2, "drop_flagged": 1})
    assert report.alone == Counter({"min_reward": 2, "drop_flagged": 2})
    assert report.kept == 1 and report.balanced


def test_dedupe_after_a_threshold_keeps_the_first_survivor() -> None:
    items = [rollout(0.0), rollout(1.0, extra_field=1), rollout(1.0, extra_field=2)]
    report = FilterReport()
    kept = list(run_filters(items, [MinReward(0.5), Dedupe()], report))
    assert kept == [items[1]]
    assert report.dropped == Counter({"min_reward": 1, "dedupe": 1}) and report.alone["dedupe"] == 2


def test_dedupe_and_its_twin_share_one_memory_and_one_key_per_rollout(monkeypatch: Any) -> None:
    """The "alone" twin counts as a fresh step would, the same rollout object judged twice is
    two rollouts, and each rollout's conversation key is computed once for both."""
    import rollcraft.filters._dedupe as dedupe

    calls: list[int] = []
    real_key = dedupe.conversation_key
    monkeypatch.setattr(dedupe, "conversation_key", lambda c: calls.append(1) or real_key(c))
    same = rollout(1.0, extra_field=1)
    items = [rollout(0.0), same, rollout(1.0, extra_field=2), same, rollout(0.0, extra_field=3)]
    report = FilterReport()
    kept = list(run_filters(items, [MinReward(0.5), Dedupe()], report))
    assert kept == [same]
    assert report.dropped == Counter({"min_reward": 2, "dedupe": 2})
    assert report.alone == Counter({"min_reward": 2, "dedupe": 4})  # all but the first are copies
    assert len(calls) == len(items)


def test_reports_add() -> None:
    a, b = FilterReport(), FilterReport()
    list(judge([rollout(0.0)], [MinReward(0.5)], a))
    list(judge([rollout(1.0), rollout(0.1)], [MinReward(0.5), SuccessOnly()], b))
    total = a + b
    assert (total.kept, total.dropped["min_reward"], total.read.lines) == (1, 2, 3)
    assert total.steps == ["min_reward", "success_only"] and total.balanced
    assert total.to_dict()["steps"][0] == {
        "filter": "min_reward",
        "dropped": 2,
        "alone": 2,
        "example": "reward 0 < 0.5",
    }


def test_real_files_add_up_with_default_filters(real_dir: Path) -> None:
    report = FilterReport()
    verdicts = list(filter_paths([str(real_dir)], FilterConfig(dedupe=True), report=report))
    kept = sum(drop is None for _, drop in verdicts)
    assert report.balanced and kept == report.kept
    assert (
        report.kept + sum(report.dropped.values()) + sum(report.read.quarantined.values())
        == report.read.lines
    )
    assert report.dropped["drop_flagged"] > 0 and report.dropped["dedupe"] > 0


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_reward_thresholds_match_an_independent_computation(real_dir: Path, threshold: float) -> None:
    expected = []
    for path in sorted(real_dir.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            rec = json.loads(line)
            reward = rec.get("reward")
            is_rollout = "response" in rec and isinstance(reward, (int, float)) and "mean/reward" not in rec
            if is_rollout and not isinstance(reward, bool) and reward >= threshold:
                expected.append(line)
    config = FilterConfig(min_reward=threshold, drop_flagged=[])
    kept = [r.raw for r, drop in filter_paths([str(real_dir)], config) if drop is None]
    assert kept == expected


def test_task_level_filter_with_a_task_split_over_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(
        orjson.dumps(record(1.0, task_id="t1")) + b"\n" + orjson.dumps(record(0.0, task_id="t2")) + b"\n"
    )
    (tmp_path / "b.jsonl").write_bytes(
        orjson.dumps(record(0.0, task_id="t1")) + b"\n" + orjson.dumps(record(1.0, task_id="t2", x=1)) + b"\n"
    )
    config = FilterConfig(min_success_rate=0.5)
    kept = [(r.source[-7:], r.line) for r, d in filter_paths([str(tmp_path)], config) if d is None]
    assert kept == [("a.jsonl", 1), ("a.jsonl", 2), ("b.jsonl", 1), ("b.jsonl", 2)]
    config = FilterConfig(min_success_rate=0.75)
    drops = [d for _, d in filter_paths([str(tmp_path)], config)]
    assert drops[0] == Drop("min_success_rate", "task success rate 1/2 = 0.5 < 0.75")


def test_read_report_counts_quarantined_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"{bad\n" + orjson.dumps(record()) + b"\n")
    report = FilterReport()
    list(run_filters(read_rollouts([str(path)]), [], report))
    assert (report.read.lines, report.kept, dict(report.read.quarantined)) == (2, 1, {"not_json": 1})
    assert report.summary_line() == "Kept 1/1 rollouts (100.0%)"
