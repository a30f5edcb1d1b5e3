"""DPO pairs: crafted task groups spread over files, every pairing mode, every dialect, real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.formats import DIALECTS, DpoOptions, DpoReport, dpo_rows
from rollcraft.formats.dpo import PairCollector
from tests._chat_check import check_messages, parse_tools
from tests.conftest import EXAMPLES_DIR, REAL_DIR


def _record(
    task: str, reward: float, answer: str, *, call_id: str = "c", tool: bool = False
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if tool:
        output += [
            {"type": "function_call", "call_id": call_id, "name": "look", "arguments": '{"q": "x"}'},
            {"type": "function_call_output", "call_id": call_id, "output": "found"},
        ]
    output.append(
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}
    )
    return {
        "responses_create_params": {"input": f"question {task}"},
        "response": {"output": output},
        "reward": reward,
    }


def _write(path: Path, records: list[dict[str, Any]]) -> str:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return str(path)


@pytest.fixture
def spread(tmp_path: Path) -> list[str]:
    """Task A: rewards 1.0, 0.5, 0.0, 0.95 over three files; B: all tied; C: under margin; D: single."""
    return [
        _write(
            tmp_path / "one.jsonl",
            [_record("A", 1.0, "a1"), _record("B", 0.5, "b1"), _record("C", 0.50, "c1")],
        ),
        _write(
            tmp_path / "two.jsonl.gz",
            [_record("A", 0.0, "a0"), _record("B", 0.5, "b2"), _record("D", 1, "d")],
        ),
        _write(
            tmp_path / "three.jsonl",
            [_record("C", 0.45, "c2"), _record("A", 0.5, "a5"), _record("A", 0.95, "a9")],
        ),
    ]


def _pairs(paths: list[str], **options: Any) -> tuple[list[dict[str, Any]], DpoReport]:
    report = DpoReport()
    rollouts = (r for r in read_rollouts(paths) if isinstance(r, Rollout))
    rows = [json.loads(line) for line in dpo_rows(rollouts, DpoOptions(**options), report=report)]
    return rows, report


def _answers(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows]


def test_best_worst_pairs_across_files(spread: list[str]) -> None:
    rows, report = _pairs(spread)
    assert _answers(rows) == [("a1", "a0")]
    assert rows[0]["quality_difference"] == 1.0 and rows[0]["chosen_reward"] == 1.0
    assert report.to_dict() | {} == {
        "rollouts": 9,
        "excluded_rollouts": {},
        "tasks": 4,
        "tasks_with_two_or_more": 3,
        "pairs": 1,
        "skipped_tasks": {"all_tied": 1, "single_rollout": 1, "under_margin": 1},
        "skipped_pairs": {},
    }


def _app_task(app: str, index: int, reward: float, answer: str) -> dict[str, Any]:
    """NeMo Gym's vibench shape: one prompt for every app; the app and _ng_task_index differ."""
    return _record("build the app", reward, answer) | {"app": app, "_ng_task_index": index}


def test_one_prompt_of_two_tasks_never_pairs(tmp_path: Path) -> None:
    # The real case: vibench's example rollouts, "barber" (task 2) and "wedding" (task 3).
    run1 = _write(
        tmp_path / "run1.jsonl", [_app_task("barber", 2, 1.0, "barber ok"), _app_task("wedding", 3, 0.0, "w")]
    )
    rows, report = _pairs([run1], pairing="all")
    assert rows == [] and report.tasks == 2 and report.skipped_tasks == {"single_rollout": 2}
    # The same input row collected again in a second run is the same task: it pairs.
    run2 = _write(tmp_path / "run2.jsonl", [_app_task("barber", 2, 0.0, "barber bad")])
    rows, report = _pairs([run1, run2], pairing="all")
    assert _answers(rows) == [("barber ok", "barber bad")] and report.tasks == 2


def test_one_task_id_of_two_environments_never_pairs(tmp_path: Path) -> None:
    # The real case: NeMo Gym's workspace_bench and inverse_if example rollouts both have task_id 3.
    def task(agent: str, question: str, reward: float) -> dict[str, Any]:
        return _record(question, reward, question) | {"task_id": 3, "agent_ref": {"name": agent}}

    two = [task("bench_agent", "plan a week", 0.9), task("if_agent", "rhyme", 0.1)]
    rows, report = _pairs([_write(tmp_path / "a.jsonl", two)], pairing="all")
    assert rows == [] and report.tasks == 2
    one = [task("bench_agent", "a", 0.9), task("bench_agent", "b", 0.1)]
    rows, _ = _pairs([_write(tmp_path / "b.jsonl", one)])
    assert _answers(rows) == [("a", "b")] and rows[0]["task_key"] == "task_id:bench_agent:3"


def test_all_pairs_over_the_margin(spread: list[str]) -> None:
    rows, _ = _pairs(spread, pairing="all")
    assert sorted(_answers(rows)) == sorted(
        [("a1", "a5"), ("a1", "a0"), ("a9", "a5"), ("a9", "a0"), ("a5", "a0")]
    )
    assert all(r["chosen_reward"] - r["rejected_reward"] >= 0.1 for r in rows)


def test_top_k(spread: list[str]) -> None:
    rows, _ = _pairs(spread, pairing="top-k", k=1)
    assert _answers(rows) == [("a1", "a0")]
    rows, _ = _pairs(spread, pairing="top-k", k=2)
    assert sorted(_answers(rows)) == sorted([("a1", "a0"), ("a1", "a5"), ("a9", "a0"), ("a9", "a5")])


def test_margin_and_ties(spread: list[str]) -> None:
    rows, report = _pairs(spread, pairing="all", min_margin=0.0)
    assert ("c1", "c2") in _answers(rows)  # 0.50 vs 0.45 pairs once the margin allows it
    assert not any(a[0].startswith("b") for a in _answers(rows))  # ties never pair
    rows, report = _pairs(spread, min_margin=2.0)
    assert rows == [] and report.skipped_tasks["under_margin"] == 2


def test_same_input_same_bytes_whatever_the_file_order(spread: list[str]) -> None:
    first = list(
        dpo_rows((r for r in read_rollouts(spread) if isinstance(r, Rollout)), DpoOptions(pairing="all"))
    )
    again = list(
        dpo_rows((r for r in read_rollouts(spread) if isinstance(r, Rollout)), DpoOptions(pairing="all"))
    )
    assert first == again


def test_sides_that_differ_only_in_call_ids_are_never_paired(tmp_path: Path) -> None:
    records = [
        _record("T", 1.0, "same", call_id="x1", tool=True),
        _record("T", 0.0, "same", call_id="y2", tool=True),
    ]
    rows, report = _pairs([_write(tmp_path / "t.jsonl", records)])
    assert rows == [] and report.skipped_pairs["identical_sides"] == 1


@pytest.mark.parametrize("completion", ["full", "first-divergence"])
def test_sides_that_differ_only_in_reasoning_are_one_side_in_openai(tmp_path: Path, completion: str) -> None:
    records = [_record("T", 1.0, "same"), _record("T", 0.0, "same")]
    thought = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "think it through"}]}
    records[0]["response"]["output"].insert(0, thought)
    path = _write(tmp_path / "t.jsonl", records)
    rows, report = _pairs([path], dialect="openai", completion=completion)
    assert rows == [] and report.skipped_pairs["identical_sides"] == 1  # openai has no reasoning field
    rows, _ = _pairs([path], dialect="trl", completion=completion)
    assert len(rows) == 1 and rows[0]["chosen"][-1]["reasoning_content"] == "think it through"


def test_first_divergence_moves_the_shared_prefix_into_the_prompt(tmp_path: Path) -> None:
    records = [
        _record("T", 1.0, "right", call_id="a", tool=True),
        _record("T", 0.0, "wrong", call_id="b", tool=True),
    ]
    path = _write(tmp_path / "t.jsonl", records)
    for dialect in ("openai", "nemo-rl"):
        rows, _ = _pairs([path], dialect=dialect)
        row = rows[0]
        if dialect == "openai":
            context, good, bad = (
                row["input"]["messages"],
                row["preferred_output"],
                row["non_preferred_output"],
            )
            assert set(row) == {"input", "preferred_output", "non_preferred_output"}
        else:
            context = row["context"]
            good, bad = (c["completion"] for c in row["completions"])
            assert [c["rank"] for c in row["completions"]] == [0, 1]
        assert [m["role"] for m in context] == ["user", "assistant", "tool"]
        assert good == [{**good[0], "content": "right"}] and bad[0]["content"] == "wrong" and len(bad) == 1
    rows, _ = _pairs([path], dialect="trl")
    assert len(rows[0]["chosen"]) == 3 and rows[0]["prompt"] == [
        {
            "role": "user",
            "content": "question T",
            "tool_calls": None,
            "tool_call_id": None,
            "reasoning_content": None,
        }
    ]


def test_stdin_like_sources_are_spooled(tmp_path: Path, spread: list[str]) -> None:
    rows, _ = _pairs([spread[1]], min_margin=0.0)  # a gzip file cannot be seeked by offset
    assert rows == []  # A has one rollout there, B is tied
    rows, _ = _pairs(spread)
    assert rows[0]["rejected"][-1]["content"] == "a0"  # read back from the gzip file


@pytest.mark.parametrize("dialect", DIALECTS)
def test_real_files_every_dialect(dialect: str) -> None:
    rows, report = _pairs([str(REAL_DIR)], dialect=dialect, pairing="all")
    assert report.pairs == len(rows) > 0
    for row in rows:
        if dialect == "trl":
            check_messages([*row["prompt"], *row["chosen"]])
            check_messages([*row["prompt"], *row["rejected"]])
            assert row["chosen_reward"] - row["rejected_reward"] >= 0.1
            parse_tools(row["tools"])
        elif dialect == "openai":
            assert len(row["preferred_output"]) == len(row["non_preferred_output"]) == 1
            assert row["preferred_output"] != row["non_preferred_output"]
        else:
            assert [len(c["completion"]) for c in row["completions"]] == [1, 1]


def test_real_pairs_never_join_two_task_indexes() -> None:
    # vlm_eval_kit's five OCR images share one prompt text; each is its own task.
    index = {
        r.rollout_id: orjson.loads(r.raw).get("_ng_task_index")
        for r in read_rollouts([str(REAL_DIR)])
        if isinstance(r, Rollout)
    }
    rows, _ = _pairs([str(REAL_DIR)], pairing="all")
    assert rows and all(index[r["chosen_id"]] == index[r["rejected_id"]] for r in rows)


def _collect_with_sft_rows(
    paths: list[str], folder: Path, *, every_row: bool = False, **options: Any
) -> tuple[list[bytes], int]:
    """trl pairs read back from trl SFT rows (written here as a pipeline writes them), and how
    many of them were spliced from the rows' bytes. Unless ``every_row``, a quarter of the
    rollouts get no SFT row (their sides are read back from the input)."""
    from rollcraft.formats import dpo as dpo_module
    from rollcraft.formats import sft_row, sft_skip_reason

    collector = PairCollector(DpoOptions(**options))
    sft_file = folder / "sft.jsonl"
    assert collector.read_sft_rows(sft_file)
    with sft_file.open("wb") as handle:
        for rollout in read_rollouts(paths):
            if not isinstance(rollout, Rollout):
                continue
            offset = None
            if sft_skip_reason(rollout) is None and (every_row or rollout.line % 4):
                offset = handle.tell()
                handle.write(orjson.dumps(sft_row(rollout, "trl"), option=orjson.OPT_APPEND_NEWLINE))
            collector.add(rollout, sft_offset=offset)
    spliced = 0
    original = dpo_module._spliced

    def counting(*args: Any) -> bytes | None:
        nonlocal spliced
        line = original(*args)
        spliced += line is not None
        return line

    dpo_module._spliced = counting  # counts calls; the real function does the work
    try:
        rows = list(collector.rows())
    finally:
        dpo_module._spliced = original
    return rows, spliced


@pytest.mark.parametrize("pairing", ["best-worst", "all"])
def test_pairs_spliced_from_sft_rows_are_the_encoded_pairs(tmp_path: Path, pairing: str) -> None:
    """Pair rows cut and joined from SFT rows' bytes equal the pairs decoded and encoded again."""
    paths = [str(REAL_DIR), str(EXAMPLES_DIR)]
    rows, spliced = _collect_with_sft_rows(paths, tmp_path, pairing=pairing)
    expected = list(
        dpo_rows((r for r in read_rollouts(paths) if isinstance(r, Rollout)), DpoOptions(pairing=pairing))
    )
    assert rows == expected
    assert 0 < spliced < len(rows)  # both paths ran: some sides have no SFT row


def test_sides_with_the_same_last_message_are_not_spliced(tmp_path: Path) -> None:
    """Same final answer, other call ids: only the decoded messages can tell (here: identical)."""
    records = [
        _record("T", 1.0, "same", call_id="x1", tool=True),
        _record("T", 0.5, "same", call_id="y2", tool=True),
        _record("U", 1.0, "yes", call_id="x1", tool=True),
        _record("U", 0.5, "no", call_id="y2", tool=True),
    ]
    path = _write(tmp_path / "t.jsonl", records)
    rows, spliced = _collect_with_sft_rows([path], tmp_path, every_row=True)
    assert spliced == 1 and len(rows) == 1 and json.loads(rows[0])["task_key"].startswith("prompt:")
    assert json.loads(rows[0])["chosen"][-1]["content"] == "yes"


def test_splices_most_says_whether_pairs_need_no_decode(tmp_path: Path) -> None:
    """The local engine forks a pool for pairs only when they must be decoded again."""
    from rollcraft.formats.dpo import Candidate, PlannedPair, sft_locator

    row = Candidate(1.0, "a", sft_locator(1, 0))
    line = Candidate(0.0, "b", (str(tmp_path / "in.jsonl"), 0))
    rows_only = [PlannedPair("t", row, row)] * 10
    mixed = rows_only[:8] + [PlannedPair("u", row, line)] * 2
    full, divergence = PairCollector(DpoOptions()), PairCollector(DpoOptions(completion="first-divergence"))
    assert not full.splices_most(rows_only)  # no rows to read yet
    for collector in (full, divergence):
        collector.read_sft_rows(tmp_path / "sft.jsonl")
    assert full.splices_most(rows_only) and not full.splices_most(mixed)
    assert not divergence.splices_most(rows_only)


def test_texts_that_look_like_the_row_layout_do_not_fool_the_splicing(tmp_path: Path) -> None:
    """Texts holding the very byte sequences the rows are cut at (escaped inside JSON strings)."""
    tricky = ',{"role":"user"}],"tools":"x","reward":1,{"role":'
    records = [
        _record("T", 1.0, "good " + tricky, call_id="a", tool=True),
        _record("T", 0.0, "bad " + tricky + "\\u2028 é \\n", call_id="b", tool=True),
        _record(tricky, 1.0, tricky),
        _record(tricky, 0.0, "no"),
    ]
    records[0]["responses_create_params"]["instructions"] = tricky
    records[1]["responses_create_params"]["instructions"] = tricky
    path = _write(tmp_path / "t.jsonl", records)
    rows, spliced = _collect_with_sft_rows([path], tmp_path, every_row=True, pairing="all")
    expected = list(
        dpo_rows((r for r in read_rollouts([path]) if isinstance(r, Rollout)), DpoOptions(pairing="all"))
    )
    assert rows == expected and spliced == len(rows) == 2


@pytest.mark.parametrize("length", [0, 1, 100, (1 << 14) - 1, 1 << 14, (1 << 14) + 1, 3 * (1 << 14), 200_000])
def test_lines_are_read_back_whole_at_any_length(tmp_path: Path, length: int) -> None:
    from rollcraft.formats.dpo import LineStore

    body = bytes(48 + i % 70 for i in range(length))  # printable, no newline
    lines = [b"first", body, body + b"\r", body + b"\r\r", b"x" * 5, body]  # CRLF; no newline at the end
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"\n".join(lines))
    store = LineStore()
    offset = 0
    try:
        for line in lines:
            assert store.fetch((str(path), offset)) == line.rstrip(b"\r")  # as the reader cuts it
            offset += len(line) + 1
    finally:
        store.close()


def test_add_checked_is_add_with_the_reason_given(spread: list[str]) -> None:
    from rollcraft.formats import sft_skip_reason

    plain, checked = PairCollector(DpoOptions()), PairCollector(DpoOptions())
    for rollout in read_rollouts([*spread, str(REAL_DIR)]):
        if isinstance(rollout, Rollout):
            plain.add(rollout)
            checked.add_checked(rollout, sft_skip_reason(rollout))
    assert checked.report.excluded and checked.report == plain.report
    assert checked.groups == plain.groups
    assert b"".join(dpo_rows_of(checked)) == b"".join(dpo_rows_of(plain))


def dpo_rows_of(collector: PairCollector) -> list[bytes]:
    return [line for _, line in collector.encode(collector.plan(), DpoReport())]


def _candidates(count: int, tasks: int, *, odd_ids: bool) -> list[tuple[str, Any]]:
    """Candidates spread over tasks: ties, -0.0, big offsets, marks and files as sources."""
    import random

    from xxhash import xxh3_64_hexdigest

    from rollcraft.formats.dpo import Candidate, sft_locator

    rng = random.Random(7)
    odd = ["ABCDEF0123456789", "0x123456789abcde", "1234_6789abcdef0", " 123456789abcdef", "short", ""]
    made = []
    for number in range(count):
        rollout_id = xxh3_64_hexdigest(str(number).encode())
        if odd_ids and number % 7 == 0:
            rollout_id = odd[number % len(odd)] + ("" if number % 2 else str(number))
        reward = rng.choice([0.0, -0.0, 0.5, 1.0, rng.random()])
        in_file = (f"in{number % 2}.jsonl", 2**40 + number)
        locator = sft_locator(number % 3, number * 997) if number % 4 else in_file
        made.append((f"task:{rng.randrange(tasks)}", Candidate(reward, rollout_id, locator)))
    return made


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
@pytest.mark.parametrize("odd_ids", [False, True])
@pytest.mark.parametrize("pairing", ["best-worst", "all", "top-k"])
def test_packed_candidates_plan_the_pairs_of_candidate_lists(
    odd_ids: bool, pairing: str, spill: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector packs its candidates (28 bytes each) and makes them again when it plans: the
    same pairs, in the same order, and the same counts as ``plan_pairs`` over ``Candidate`` lists.
    Spilled (sorted runs on disk, merged when planning; the plan on disk too) or not."""
    from collections import defaultdict

    from rollcraft.formats import dpo, plan_pairs
    from rollcraft.formats.dpo import Candidate, task_keys_of

    if spill:  # a run every 20-odd candidates: about 130 runs, tasks split across many of them
        monkeypatch.setattr(dpo, "SPILL_BYTES", 4096)
    options = DpoOptions(pairing=pairing, k=2, min_margin=0.1)  # type: ignore[arg-type]
    collector = PairCollector(options)
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for task_key, candidate in _candidates(3000, 400, odd_ids=odd_ids):
        collector.add_candidate(task_key, candidate)
        groups[task_key].append(candidate)
    assert collector._candidates.spilled is spill
    assert collector.groups == groups
    report = DpoReport()
    expected = plan_pairs(groups, options, report)
    plan = collector.plan()
    assert list(plan) == expected and len(plan) == len(expected) > 100
    assert collector.report == report and report.skipped_tasks["all_tied"] > 0
    assert [plan[i] for i in (0, 5, -1)] == [expected[0], expected[5], expected[-1]]
    assert list(plan[10:50]) == expected[10:50]
    assert list(task_keys_of(plan[10:50])) == [pair.task_key for pair in expected[10:50]]
    assert len(collector.plan()) == 0  # the candidates went to the plan


def test_candidates_take_a_few_dozen_bytes_each() -> None:
    """What grows with the number of rollouts in a DPO run: under 100 bytes per candidate, its
    task's entry included. As Python objects (a named tuple, its float, id string and locator
    tuple) candidates took about 250 bytes each: 200 MB at 1 GB of 2 KB rollouts."""
    import tracemalloc

    from xxhash import xxh3_64_hexdigest

    from rollcraft.formats.dpo import Candidate, sft_locator

    count = 100_000
    task_keys = [f"prompt:{xxh3_64_hexdigest(str(i % 25_000).encode())}" for i in range(count)]
    collector = PairCollector(DpoOptions())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number, task_key in enumerate(task_keys):  # made here, as the pass makes them per rollout
            rollout_id = xxh3_64_hexdigest(number.to_bytes(8, "little"))
            reward = number / count
            collector.add_candidate(task_key, Candidate(reward, rollout_id, sft_locator(2, number * 4099)))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100 * count, f"{grown / count:.0f} bytes per candidate"


def test_spilled_candidates_keep_memory_bounded() -> None:
    """Past its budget the table goes to disk: memory no longer grows with the number of
    candidates (100,000 of them, 25,000 tasks, in a 512 KB budget), nor does the plan's, which is
    on disk too; the pairs come back as they were planned."""
    import tracemalloc

    from xxhash import xxh3_64_hexdigest

    from rollcraft.formats.dpo import Candidate, _Candidates, sft_locator

    count, tasks = 100_000, 25_000
    table = _Candidates(budget=1 << 19)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(count):
            task_key = f"prompt:{xxh3_64_hexdigest(str(number % tasks).encode())}"
            rollout_id = xxh3_64_hexdigest(number.to_bytes(8, "little"))
            table.add(task_key, (number // tasks) / 4, rollout_id, sft_locator(2, number * 4099))
        added = tracemalloc.get_traced_memory()[1] - before
        report = DpoReport()
        plan = table.plan(DpoOptions(), report)
        planned = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert table.spilled is False  # the runs went to the plan
    # in memory: 16 MB and more; here the budget, and buffers of a few MB (2 MiB to write the plan)
    assert added < 3 << 20 and planned < 6 << 20, (added, planned)
    assert len(plan) == report.pairs + len(plan) - report.pairs == tasks  # one pair a task
    first, last = plan[0], plan[-1]
    assert first.task_key < last.task_key and list(plan.task_keys[:2]) == [p.task_key for p in plan[:2]]
    for pair in (first, last):
        assert isinstance(pair.chosen, Candidate) and pair.chosen.reward == 0.75
        assert pair.rejected.reward == 0.0 and pair.chosen.locator == sft_locator(2, pair.chosen.locator[1])


def test_the_spill_budget_counts_the_task_keys() -> None:
    """Long task keys (``task_id:`` of long ids) are counted at their length: a table of 2,000-
    character keys spills at its budget too, not at ten times it."""
    import tracemalloc

    from rollcraft.formats.dpo import Candidate, _Candidates

    budget = 1 << 20
    table = _Candidates(budget=budget)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(8_000):  # 8,000 tasks of 2 KB keys: 16 MB if they stayed
            task_key = f"task_id:{number:06d}" + "x" * 2_000  # made here, as the reader makes them
            table.add(task_key, 1.0, f"{number:016x}", ("in.jsonl", number))
        grown = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert table.spilled and grown < 3 * budget, grown  # the budget, and a run's 1 MiB write buffer
    assert len(table.groups()) == 8_000 and Candidate(1.0, f"{7:016x}", ("in.jsonl", 7)) in [
        c for cs in table.groups().values() for c in cs
    ]


def test_a_temporary_folder_that_cannot_take_the_spill_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from rollcraft import OutputError
    from rollcraft.formats.dpo import _Candidates

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # no such folder
    table = _Candidates(budget=1024)
    with pytest.raises(OutputError, match=r"gone: cannot write the DPO candidates .*set TMPDIR"):
        for number in range(100):
            table.add(f"task:{number}", 1.0, f"{number:016x}", ("in.jsonl", number))


def test_a_spill_that_fails_half_written_is_the_same_clear_error(tmp_path: Path) -> None:
    """A run cut off by a full disk (here a 64 KiB file-size limit: the kernel refuses the
    write, File too large) is the same one-line error as a folder that cannot take it at all."""
    import subprocess
    import sys

    script = """
import resource, tempfile
from rollcraft import OutputError
from rollcraft.formats.dpo import _Candidates
tempfile.tempdir = {folder!r}
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))
table = _Candidates(budget=4 << 20)
try:
    for number in range(40_000):
        table.add(f"task:{{number}}", 1.0, f"{{number:016x}}", ("in.jsonl", number))
except OutputError as exc:
    print("OutputError:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script.format(folder=str(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "OutputError:" in done.stdout and "cannot write the DPO candidates" in done.stdout, done.stdout
    assert "File too large" in done.stdout
