"""``rollcraft demo --gym``: the tutorial's loop with the real NeMo Gym, and its pieces.

The loop itself runs when a NeMo Gym virtualenv is found: ``ROLLCRAFT_GYM_VENV`` (or
``--gym-venv``), else the one ``scripts/gym_venv.sh`` builds in the user's cache. It takes 3-6
minutes on 2 busy CPU cores (``slow``). The other tests need no NeMo Gym.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rollcraft import ReadReport, Rollout, read_rollouts
from rollcraft.demo.gym import find_gym_venv
from rollcraft.demo.weather import make_tasks, script_record, task_city

GYM_VENV = find_gym_venv()
needs_gym = pytest.mark.skipif(
    GYM_VENV is None,
    reason="no NeMo Gym virtualenv: set ROLLCRAFT_GYM_VENV, or build one with scripts/gym_venv.sh",
)
MARKER = "ROLLCRAFT_DEMO_RUN="


def _demo(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rollcraft.cli", "demo", "--gym", "-o", str(out), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def left_over(out: Path) -> list[str]:
    """The processes the demo into ``out`` started that still run (its marker in their environment)."""
    needle = f"{MARKER}{out.resolve()}:".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            continue
    return found


def test_tasks_are_split_by_city_and_scripted_rollouts_read_as_nemo_gym_records(tmp_path: Path) -> None:
    train, heldout = make_tasks(200, seed=0, split="train"), make_tasks(100, seed=0, split="heldout")
    assert train == make_tasks(200, seed=0, split="train")
    assert not {task_city(t) for t in train} & {task_city(t) for t in heldout}
    rng = random.Random(0)
    path = tmp_path / "scripted.jsonl"
    rows = [script_record(t, use_tool=i % 2 == 0, rng=rng) for i, t in enumerate(train[:10])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = ReadReport()
    rollouts = [r for r in read_rollouts([str(path)], report=report) if isinstance(r, Rollout)]
    assert report.lines == report.rollouts == 10 and not report.quarantined
    assert [r.success for r in rollouts] == [True, False] * 5
    assert [r.n_tool_calls for r in rollouts] == [1, 0] * 5


def test_the_demo_model_sees_the_same_prompt_served_as_trained(tmp_path: Path) -> None:
    """A prompt rendered from a gym request (as rollcraft serve does) and from an SFT row of its
    rollout (as training does) agree, tool schema and call arguments included."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from rollcraft.demo.gym_loop import _chat_template
    from rollcraft.formats import sft_rows
    from rollcraft.serve._request import build_messages, parse_tools
    from rollcraft.tiny import save_tiny_tokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(save_tiny_tokenizer(tmp_path / "tok"))
    tokenizer.chat_template = _chat_template()
    task = make_tasks(1, seed=0, split="heldout")[0]
    record = script_record(task, use_tool=True, rng=random.Random(0))
    (tmp_path / "r.jsonl").write_text(json.dumps(record) + "\n")
    rollout = next(r for r in read_rollouts([str(tmp_path / "r.jsonl")]) if isinstance(r, Rollout))
    row = json.loads(next(iter(sft_rows([rollout]))))
    trained = str(
        tokenizer.apply_chat_template(row["messages"], tools=json.loads(row["tools"]), tokenize=False)
    )
    # the second model call of a rollout: the request holds the call and its output
    params = record["responses_create_params"]
    served_items = params["input"] + record["response"]["output"][:2]
    served = str(
        tokenizer.apply_chat_template(
            build_messages(served_items),
            tools=parse_tools(params)[0],
            tokenize=False,
            add_generation_prompt=True,
        )
    )
    assert trained.startswith(served)


def test_a_venv_without_nemo_gym_is_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*_demo(tmp_path / "out"), "--gym-venv", str(tmp_path)], capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 2
    assert "no NeMo Gym there" in done.stderr and "Traceback" not in done.stderr


@needs_gym
@pytest.mark.slow
def test_demo_gym_loop_improves_heldout_success_and_leaves_no_process(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    out = tmp_path / "demo"
    command = [*_demo(out, "--size", "small", "--seed", "0"), "--gym-venv", str(GYM_VENV)]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not left_over(out), "processes the demo started outlived it"

    report = json.loads((out / "report.json").read_text())
    base, trained, diff = report["baseline"], report["candidate"], report["difference"]
    assert trained["success_rate"] > base["success_rate"] + 0.15
    assert diff["success_rate"] == pytest.approx(trained["success_rate"] - base["success_rate"])
    assert diff["ci95"][0] > 0 and diff["verdict"] == "improved"
    assert set(report["timings_s"]) >= {"pretrain", "collect-base", "curate", "train", "heldout-sft"}
    assert "improved" in done.stdout and (out / "report.html").read_text().lower().startswith(
        "<!doctype html>"
    )

    # gym's own rollouts, every line read by rollcraft; 24 held-out and 40 training tasks x 4
    counts = {"train-base": 160, "heldout-base": 96, "heldout-sft": 96}
    for name, lines in counts.items():
        read = ReadReport()
        rollouts = [r for r in read_rollouts([str(out / "rollouts" / f"{name}.jsonl")], report=read)]
        assert read.lines == read.rollouts == len(rollouts) == lines and not read.quarantined
    sft = (next((out / "data" / "curated").glob("v*")) / "sft.jsonl").read_text().splitlines()
    assert len(sft) == report["counts"]["sft_rows"] > 0


@needs_gym
@pytest.mark.slow
def test_ctrl_c_during_gym_stops_every_process(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    out = tmp_path / "demo"
    command = [*_demo(out, "--size", "small"), "--gym-venv", str(GYM_VENV)]
    demo = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 600
        while len(left_over(out)) < 3 and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)  # until the model server, gym and its first helpers run
        assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode != 0
    assert not left_over(out), "processes the demo started outlived Ctrl-C"
