"""The reader: every line is one rollout or one quarantined line, on real and crafted files."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import zstandard

from rollcraft import InputError, Quarantined, ReadOptions, ReadReport, Rollout, read_rollouts
from rollcraft._io import RawLine
from rollcraft.read._reader import parse_line
from tests._expected_real import EXPECTED
from tests.conftest import real_files


def _read(paths: list[str], **options: object) -> tuple[list[Rollout], list[Quarantined], ReadReport]:
    report = ReadReport()
    items = list(read_rollouts(paths, options=ReadOptions(**options), report=report))  # type: ignore[arg-type]
    rollouts = [i for i in items if isinstance(i, Rollout)]
    quarantined = [i for i in items if isinstance(i, Quarantined)]
    return rollouts, quarantined, report


def _write(tmp_path: Path, name: str, records: list[object]) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n" for r in records))
    return path


def _nemo(reward: object = 1.0, output: object = None, **extra: object) -> dict[str, object]:
    out = (
        output
        if output is not None
        else [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}]
    )
    return {
        "responses_create_params": {"input": "hello"},
        "response": {"output": out},
        "reward": reward,
        **extra,
    }


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_each_real_file_has_its_expected_outcome(path: Path) -> None:
    rollouts, quarantined, report = _read([str(path)])
    lines, n_rollouts, reasons, tasks = EXPECTED[path.name]
    assert (report.lines, report.rollouts, dict(report.quarantined)) == (lines, n_rollouts, reasons)
    assert len({r.task_key for r in rollouts}) == tasks
    assert report.balanced and len(rollouts) + len(quarantined) == lines


def test_real_rollout_count_matches_an_independent_count(real_dir: Path) -> None:
    independent = 0
    for path in real_files():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            independent += "response" in record and isinstance(record.get("reward"), (int, float))
    rollouts, _, report = _read([str(real_dir)])
    assert len(rollouts) == independent == report.rollouts
    assert set(EXPECTED) == {p.name for p in real_files()}


def test_quarantine_reasons(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "odd.jsonl",
        [
            b"\n",
            b"{not json\n",
            b"[1, 2]\n",
            {"responses_create_params": {"input": "x"}, "_ng_task_index": 0},
            _nemo(_ng_failure_class="timeout"),
            {"mean/reward": 0.5, "max/reward": 1.0},
            _nemo(reward=None),
            _nemo(reward="high"),
            b'{"responses_create_params": {"input": "x"}, "response": {"output": []}, "reward": NaN}\n',
            {"something": "else"},
            _nemo(reward=True),
            {"responses_create_params": {"input": "x"}, "response": "oops", "reward": 1},
            _nemo(),
        ],
    )
    rollouts, quarantined, report = _read([str(path)])
    assert [q.reason for q in quarantined] == [
        "empty_line",
        "not_json",
        "not_object",
        "no_result",
        "failed_attempt",
        "metric_row",
        "bad_reward",
        "bad_reward",
        "not_json",
        "unknown_schema",
        "bad_reward",
        "malformed_record",
    ]
    assert [q.line for q in quarantined] == list(range(1, 13))
    assert all(q.source == str(path) for q in quarantined)
    assert len(rollouts) == 1 and rollouts[0].line == 13
    assert report.lines == 13 and report.balanced


def test_the_first_line_of_each_quarantine_reason_is_kept_as_an_example(tmp_path: Path) -> None:
    """One broken line after thousands of expected metric rows is still named: a report keeps the
    first 20 quarantined lines and the first of every other reason, also when reports add up."""
    metric = json.dumps({"mean/reward": 0.5, "agent_name": "a"})
    (tmp_path / "a.jsonl").write_text((metric + "\n") * 30 + '{"broken": \n')
    _, _, report = _read([str(tmp_path / "a.jsonl")])
    assert report.quarantined == {"metric_row": 30, "not_json": 1}
    reasons = [q.reason for q in report.quarantine_examples]
    assert reasons == ["metric_row"] * 20 + ["not_json"] and report.quarantine_examples[-1].line == 31
    merged = ReadReport() + report + report
    assert [q.reason for q in merged.quarantine_examples] == reasons


def test_missing_reward_is_bad_reward(tmp_path: Path) -> None:
    record = _nemo()
    del record["reward"]
    _, quarantined, _ = _read([str(_write(tmp_path, "a.jsonl", [record]))])
    assert quarantined[0].reason == "bad_reward"


def test_line_too_long_is_quarantined_without_reading_it_whole(tmp_path: Path) -> None:
    path = _write(tmp_path, "long.jsonl", [_nemo(), b'{"x": "' + b"a" * 5000 + b'"}\n', _nemo()])
    rollouts, quarantined, report = _read([str(path)], max_line_bytes=1000)
    assert [q.reason for q in quarantined] == ["line_too_long"]
    assert [r.line for r in rollouts] == [1, 3] and report.balanced


def test_deep_nesting_is_quarantined(tmp_path: Path) -> None:
    deep = b"[" * 2000 + b"]" * 2000
    _, quarantined, _ = _read([str(_write(tmp_path, "deep.jsonl", [deep + b"\n"]))])
    assert quarantined[0].reason == "too_deeply_nested"


def test_three_shapes_detected_per_record(tmp_path: Path) -> None:
    tutorial = {
        "output": [{"role": "assistant", "content": "4"}],
        "reward": 1.0,
        "success": True,
        "task_id": "t1",
        "metadata": {"task_type": "math"},
        "responses_create_params": {"input": [{"role": "user", "content": "2+2?"}]},
    }
    chat = {
        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
        "reward": 0,
    }
    rollouts, _, _ = _read([str(_write(tmp_path, "mixed.jsonl", [_nemo(), tutorial, chat]))])
    assert [r.shape for r in rollouts] == ["nemo-gym", "tutorial", "chat"]
    assert rollouts[1].task_key == "task_id:t1" and rollouts[1].task_type == "math"
    assert rollouts[1].conversation.prompt == [{"role": "user", "content": "2+2?"}]
    assert rollouts[2].conversation.completion == [{"role": "assistant", "content": "4"}]
    assert rollouts[1].task_key != rollouts[2].task_key


def test_forced_shape(tmp_path: Path) -> None:
    chat = {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "reward": 1,
    }
    path = str(_write(tmp_path, "c.jsonl", [chat, _nemo()]))
    rollouts, quarantined, _ = _read([path], shape="chat")
    assert len(rollouts) == 1 and quarantined[0].reason == "unknown_schema"


def test_same_prompt_same_task_key_across_files_and_processes(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.jsonl", [_nemo(reward=1.0, temperature=0.1)])
    b_record = _nemo(reward=0.0)
    b_record["responses_create_params"] = {"input": "hello", "temperature": 0.9, "seed": 3}
    b = _write(tmp_path, "b.jsonl", [b_record])
    rollouts, _, _ = _read([str(a), str(b)])
    assert rollouts[0].task_key == rollouts[1].task_key
    assert rollouts[0].rollout_id != rollouts[1].rollout_id
    code = (
        "import sys; from rollcraft import read_rollouts; "
        "print(*(r.task_key + ' ' + r.rollout_id for r in read_rollouts(sys.argv[1:])))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(a)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == f"{rollouts[0].task_key} {rollouts[0].rollout_id}\n"


def test_task_key_rules(tmp_path: Path) -> None:
    with_id = _nemo(task_id=17)
    no_prompt = _nemo(_ng_task_index=4, agent_ref={"name": "agent_x"})
    no_prompt["responses_create_params"] = {"input": []}
    custom = _nemo(metadata={"problem": "p9"})
    path = str(_write(tmp_path, "k.jsonl", [with_id, no_prompt, custom]))
    rollouts, _, _ = _read([path])
    assert rollouts[0].task_key == "task_id:17"
    assert rollouts[1].task_key == "index:agent_x:4"
    assert rollouts[2].task_key.startswith("prompt:")
    forced, quarantined, _ = _read([path], task_key="metadata.problem")
    assert [r.task_key for r in forced] == ["metadata.problem:p9"]
    assert [q.reason for q in quarantined] == ["malformed_record", "malformed_record"]


def _app_task(app: str, index: object, reward: float) -> dict[str, object]:
    """One rollout of NeMo Gym's vibench shape: one prompt for every app, the app a field of its own."""
    return _nemo(reward=reward, app=app, _ng_task_index=index, agent_ref={"name": "vibench_agent"})


def test_one_prompt_of_two_tasks_is_two_task_keys(tmp_path: Path) -> None:
    # vibench: "barber" and "wedding" share the prompt text; _ng_task_index 2 and 3 tell them apart.
    run1 = _write(tmp_path, "run1.jsonl", [_app_task("barber", 2, 1.0), _app_task("wedding", 3, 0.0)])
    no_index = _nemo(agent_ref={"name": "vibench_agent"})
    run2 = _write(tmp_path, "run2.jsonl", [_app_task("barber", 2, 0.0), no_index])
    rollouts, _, _ = _read([str(run1), str(run2)])
    barber, wedding, barber_again, plain = (r.task_key for r in rollouts)
    assert barber != wedding and barber.startswith("prompt:") and barber.endswith("#2")
    assert barber_again == barber  # the same input row in another run: the same task
    assert plain == barber.split("#")[0]  # no _ng_task_index: the prompt digest alone
    assert len({barber, wedding, plain}) == 3


@pytest.mark.parametrize("index", [0, 7, "row-7", 2**40, 2.0, [1]])
def test_the_fast_and_general_paths_key_a_task_index_alike(index: object) -> None:
    line = orjson.dumps(_app_task("barber", index, 1.0))
    raw = RawLine("x.jsonl", 1, 0, line)
    fast, general = parse_line(raw, ReadOptions()), parse_line(raw, ReadOptions(), fast=False)
    assert isinstance(fast, Rollout) and isinstance(general, Rollout)
    assert fast.task_key == general.task_key and fast.task_key.startswith("prompt:")


def test_facts(tmp_path: Path) -> None:
    records = [
        _nemo(reward=1, is_correct=False, category="cat", reward_components={"a": 0.5, "b": "x"}),
        _nemo(reward=0.5, agent_ref={"name": "ag"}, mask_sample=True, _ng_rollout_index=2),
        _nemo(reward=1.0, metadata={"task_type": "tt"}, verification_skipped=True),
    ]
    rollouts, _, _ = _read([str(_write(tmp_path, "f.jsonl", records))], success_threshold=0.5)
    first, second, third = rollouts
    assert (first.reward, first.success, first.task_type, first.reward_components) == (
        1.0,
        False,
        "cat",
        {"a": 0.5},
    )
    assert (second.success, second.task_type, second.rollout_index) == (True, "ag", 2)
    assert "mask_sample" in second.flags and "verification_skipped" in third.flags
    assert third.task_type == "tt" and isinstance(first.reward, float)
    assert first.raw == orjson.dumps(records[0])


def test_default_success_threshold_is_full_reward(tmp_path: Path) -> None:
    rollouts, _, _ = _read([str(_write(tmp_path, "s.jsonl", [_nemo(reward=0.99), _nemo(reward=1.0)]))])
    assert [r.success for r in rollouts] == [False, True]


def test_compressed_inputs_folders_and_globs(tmp_path: Path) -> None:
    data = orjson.dumps(_nemo()) + b"\n" + orjson.dumps(_nemo(reward=0.0)) + b"\n"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "d" / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    (tmp_path / "d" / "notes.txt").write_text("ignored")
    rollouts, _, report = _read([str(tmp_path / "d")])
    assert report.lines == 4 and len(rollouts) == 4
    assert rollouts[1].offset == len(orjson.dumps(_nemo())) + 1
    globbed, _, _ = _read([str(tmp_path / "d" / "*.zst")])
    assert len(globbed) == 2


def test_stdin(tmp_path: Path) -> None:
    data = orjson.dumps(_nemo()) + b"\n\n"
    code = "from rollcraft import read_rollouts; print([type(r).__name__ for r in read_rollouts(['-'])])"
    result = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert result.stdout.decode().strip() == "['Rollout', 'Quarantined']"


@pytest.mark.parametrize("bad", ["missing.jsonl", "nothing-*.jsonl"])
def test_missing_inputs_are_clear_errors(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError, match=r"missing|nothing"):
        list(read_rollouts([str(tmp_path / bad)]))


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InputError, match=r"bad\.jsonl\.gz"):
        list(read_rollouts([str(path)]))
