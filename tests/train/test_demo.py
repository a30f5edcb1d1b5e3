"""The closed loop at its reduced size: training on verified rollouts must really help on held-out tasks.

The loop takes about 2 minutes on 2 CPU cores (most of it pre-training the base model); it is
marked ``slow`` so it can be deselected locally (``-m "not slow"``). CI runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft.demo import make_tasks, verify
from rollcraft.demo.generate import parse_turn


def test_tasks_are_seeded_split_and_verified_by_exact_match() -> None:
    train = make_tasks(50, seed=0, split="train")
    heldout = make_tasks(50, seed=0, split="heldout")
    assert train == make_tasks(50, seed=0, split="train")
    assert not {t.question for t in train} & {t.question for t in heldout}
    assert {t.task_type for t in train} == {"add", "multiply"}
    task = train[0]
    assert verify(task, f" {task.answer}\n") == 1.0
    assert verify(task, f"about {task.answer}") == 0.0


def test_parse_turn_reads_tool_calls_and_keeps_junk_as_text() -> None:
    turn = parse_turn('<tool_call>{"name": "multiply", "arguments": {"a": 3, "b": 14}}</tool_call>')
    assert (turn.tool_name, turn.arguments) == ("multiply", {"a": 3, "b": 14})
    assert parse_turn("<tool_call>{broken</tool_call>").tool_name is None


@pytest.mark.slow
def test_closed_loop_improves_heldout_success(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    import torch

    from rollcraft.demo import run_demo

    torch.set_num_threads(1)
    report = run_demo(tmp_path / "demo", size="small", seed=0, log=lambda _: None)

    sft = report.comparisons["sft vs base"].overall
    for metric in ("success_rate", "mean_reward"):
        assert sft[metric].verdict == "improved", report.summary()
        assert sft[metric].ci95[0] > 0 and sft[metric].candidate > sft[metric].baseline + 0.2
    assert 0.1 < sft["success_rate"].baseline < 0.8  # the base model is of mixed quality
    assert {"dpo vs base", "dpo vs sft"} <= set(report.comparisons)  # measured, whichever way it goes

    heldout = [r for r in read_rollouts([str(tmp_path / "demo" / "rollouts" / "heldout-base.jsonl")])]
    assert all(isinstance(r, Rollout) for r in heldout) and len(heldout) == 200
    assert {r.task_type for r in heldout if isinstance(r, Rollout)} == {"add", "multiply"}
    saved = json.loads((tmp_path / "demo" / "demo_report.json").read_text())
    assert saved["comparisons"]["sft vs base"]["overall"]["success_rate"]["verdict"] == "improved"
    assert (tmp_path / "demo" / "reports" / "sft-vs-base.html").is_file()


def test_the_loop_runs_seeded_on_fixed_threads_with_deterministic_kernels() -> None:
    torch = pytest.importorskip("torch")
    import random

    import numpy as np

    from rollcraft.demo.loop import _deterministic

    def settings() -> tuple[int, bool, bool]:
        fill = torch.utils.deterministic.fill_uninitialized_memory
        return torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), fill

    before = settings()
    draws = []
    for _ in range(2):
        with _deterministic(3, threads=1):
            # deterministic kernels, without filling new tensors (3.5x slower training on CPU)
            assert settings() == (1, True, False)
            draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[1]  # every generator seeded
    assert settings() == before


def test_the_demo_without_the_train_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    code = (  # as if rollcraft[train] were not installed: the demo was a traceback
        "import sys; sys.modules['trl'] = None\n"
        f"sys.argv = ['rollcraft', 'demo', '-o', {str(tmp_path / 'run')!r}]\n"
        "from rollcraft.cli import main; main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "rollcraft demo needs trl: pip install 'rollcraft[train]'" in done.stderr
    assert not (tmp_path / "run").exists()
