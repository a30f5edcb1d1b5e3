"""The closed loop, on CPU in minutes: collect -> filter -> format -> train -> collect held-out -> evaluate.

1. A base model: a tiny Qwen2-architecture model (about 160k parameters) and tokenizer made here,
   pre-trained on scripted conversations in which the assistant uses the calculator tool half
   of the time and guesses (``about 130``) the other half, so its rollouts are of mixed quality.
2. Collect: the base model plays the training tasks several times each (NeMo Gym records).
3. Filter and format with rollcraft itself: successful rollouts -> SFT rows; success vs failure
   of the same task -> DPO pairs (TRL dialect).
4. Train candidates from the base model: SFT on the filtered rollouts, DPO with
   ``sigmoid`` + ``sft`` loss, and (full size) plain sigmoid DPO at beta 0.1.
5. Collect every model on held-out tasks (the same sampling settings for all) and evaluate each
   candidate against the base model, and DPO against SFT.

Every file lands in the output folder: ``models/``, ``rollouts/``, ``data/``, ``reports/`` and
``demo_report.json``. The demo's training rows leave the tool schemas out of the prompt (the
records keep them): the tiny model learns its two tools from the data, and rendering their JSON
schemas would make every sequence several times longer on CPU.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rollcraft._errors import ConfigError, OutputError
from rollcraft._io import atomic_writer
from rollcraft.demo.env import ArithmeticTask, demonstration, make_tasks

__all__ = ["SIZES", "DemoReport", "DemoSize", "run_demo"]

Log = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class DemoSize:
    """How much the loop does; ``full`` is the documented run, ``small`` the test's."""

    pretrain_tasks: int
    pretrain_steps: int
    train_tasks: int
    samples_per_task: int
    heldout_tasks: int
    heldout_samples: int
    sft_steps: int
    dpo_steps: int
    plain_dpo: bool


SIZES: dict[str, DemoSize] = {
    "full": DemoSize(1200, 1000, 300, 4, 200, 4, 150, 150, True),
    "small": DemoSize(1200, 800, 150, 4, 100, 2, 100, 60, False),
}
_LR = {"pretrain": 3e-3, "sft": 1e-3, "dpo": 5e-4}


@dataclass(slots=True)
class DemoReport:
    """What the demo measured: per candidate, the evaluation against the base model."""

    out_dir: Path
    size: str
    comparisons: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``demo_report.json``."""
        return {
            "size": self.size,
            "counts": self.counts,
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
            "comparisons": {name: c.to_dict() for name, c in self.comparisons.items()},
        }

    def summary(self) -> str:
        """A few lines: per comparison, success and reward before/after with the 95% CI of the change."""
        title = f"demo ({self.size}) in {self.out_dir}"
        return _summary(title, self.counts, self.comparisons, self.timings, 18)


def _summary(
    title: str, counts: dict[str, int], comparisons: dict[str, Any], timings: dict[str, float], width: int
) -> str:
    """A demo's summary: its counts, per comparison (named in ``width`` columns) success and reward
    before/after with the 95% CI of the change, and its time."""
    listed = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
    lines = [f"{title}: {listed}"]
    for name, comparison in comparisons.items():
        for metric in ("success_rate", "mean_reward"):
            r = comparison.overall[metric]
            lines.append(
                f"  {name:<{width}} {metric:<13} {r.baseline:.3f} -> {r.candidate:.3f}  "
                f"diff {r.difference:+.3f}  95% CI [{r.ci95[0]:+.3f}, {r.ci95[1]:+.3f}]  "
                f"p={r.p_value:.3g}  {r.verdict}"
            )
    total = sum(timings.values())
    lines.append(f"  time: {total:.0f} s ({', '.join(f'{k} {v:.0f}' for k, v in timings.items())})")
    return "\n".join(lines)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(orjson.dumps(row) + b"\n")
            count += 1
    return count


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputError(f"{out_dir}: exists and is not empty; pass --overwrite to reuse it")
        shutil.rmtree(out_dir)
    for sub in ("models", "rollouts", "data", "reports"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------- step 1: the base model


def _demo_rows(tasks: list[ArithmeticTask], seed: int) -> list[dict[str, Any]]:
    """Pre-training rows (TRL SFT dialect): tool use and guessing, half and half."""
    rng = random.Random(seed)
    return [{"messages": demonstration(t, use_tool=rng.random() < 0.5, rng=rng)} for t in tasks]


def _make_base(out: Path, size: DemoSize, seed: int, log: Log) -> Path:
    from transformers import AutoTokenizer

    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer
    from rollcraft.train import train_sft

    rows = _demo_rows(make_tasks(size.pretrain_tasks, seed=seed, split="train"), seed)
    first = AutoTokenizer.from_pretrained(save_tiny_tokenizer(out / "build" / "tokenizer0"))
    corpus = [str(first.apply_chat_template(r["messages"], tokenize=False)) for r in rows]
    tokenizer_dir = save_tiny_tokenizer(out / "build" / "tokenizer", corpus=corpus)
    init = save_tiny_model(out / "build" / "init", tokenizer_dir=tokenizer_dir, seed=seed)
    data = out / "data" / "pretrain.jsonl"
    _write_jsonl(data, rows)
    log(f"pre-training the base model: {size.pretrain_steps} steps on {len(rows)} scripted conversations")
    config = _config(size.pretrain_steps, _LR["pretrain"], seed, batch_size=32)
    train_sft(data, str(init), out / "models" / "base", config=config, on_log=_progress(log, "pre-training"))
    return out / "models" / "base"


def _config(steps: int, lr: float, seed: int, *, batch_size: int = 16, **extra: Any) -> Any:
    from rollcraft.train import TrainConfig

    return TrainConfig(
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=0.05,
        lr_scheduler="cosine",
        max_length=128,
        logging_steps=max(10, steps // 5),
        seed=seed,
        overwrite=True,
        trainer_args={"disable_tqdm": True},
        **extra,
    )


# ---------------------------------------------------------------- steps 2-3: collect, filter, format


def _collect(model: Path, tasks: list[ArithmeticTask], n: int, seed: int, path: Path) -> int:
    from rollcraft.demo.generate import LocalGenerator, collect

    records = collect(LocalGenerator(str(model)), tasks, n=n, seed=seed)
    return _write_jsonl(path, records)


def _without_tools(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["tools"] = None  # see the module docstring: schemas stay out of the tiny model's prompts
    return row


def _make_data(rollouts: Path, sft_path: Path, dpo_path: Path) -> tuple[int, int]:
    """Success-only filter -> SFT rows; success vs failure of a task -> DPO pairs (rollcraft's own steps)."""
    from rollcraft import Rollout, read_rollouts
    from rollcraft.filters import FilterReport, SuccessOnly, run_filters
    from rollcraft.formats import DpoOptions, dpo_rows, sft_rows

    kept = run_filters(read_rollouts([str(rollouts)]), [SuccessOnly()], FilterReport())
    n_sft = _write_jsonl(sft_path, (_without_tools(line) for line in sft_rows(kept)))
    every = (r for r in read_rollouts([str(rollouts)]) if isinstance(r, Rollout))
    pairs = dpo_rows(every, DpoOptions(pairing="top-k", k=2, min_margin=0.5))
    n_dpo = _write_jsonl(dpo_path, (_without_tools(line) for line in pairs))
    return n_sft, n_dpo


# ---------------------------------------------------------------- steps 4-6


def _train_candidates(
    out: Path, base: Path, size: DemoSize, seed: int, n_dpo: int, dpo: bool, log: Log
) -> list[str]:
    """SFT on the filtered rollouts; with ``dpo``, DPO (sigmoid + sft loss) and, full size, plain DPO."""
    from rollcraft.train import train_dpo, train_sft

    data, models = out / "data", out / "models"
    log(f"SFT: {size.sft_steps} steps on the successful rollouts")
    sft_config = _config(size.sft_steps, _LR["sft"], seed)
    train_sft(data / "sft.jsonl", str(base), models / "sft", config=sft_config, on_log=_progress(log, "sft"))
    names = ["sft"]
    runs = [("dpo", ["sigmoid", "sft"])] + ([("dpo-plain", ["sigmoid"])] if size.plain_dpo else [])
    for name, loss in runs if dpo and n_dpo else []:
        log(f"DPO ({' + '.join(loss)} loss, beta 0.1): {size.dpo_steps} steps on success-vs-failure pairs")
        config = _config(size.dpo_steps, _LR["dpo"], seed, beta=0.1, loss_type=loss)
        train_dpo(data / "dpo.jsonl", str(base), models / name, config=config, on_log=_progress(log, name))
        names.append(name)
    return names


def _progress(log: Log, name: str) -> Callable[[dict[str, Any]], None]:
    """An ``on_log`` that reports the loss in one short line."""

    def report(entry: dict[str, Any]) -> None:
        if isinstance(entry.get("loss"), (int, float)):
            log(f"  {name} step {entry.get('step')}: loss {entry['loss']:.4f}")

    return report


def _quiet() -> None:
    """Turn off the progress bars of transformers and datasets (the demo logs its own lines)."""
    import importlib

    importlib.import_module("transformers.utils.logging").disable_progress_bar()
    importlib.import_module("datasets").disable_progress_bars()


def _evaluate(out: Path, baseline: str, candidate: str) -> Any:
    from rollcraft.evaluate import evaluate_files, render_html

    comparison = evaluate_files(
        str(out / "rollouts" / f"heldout-{baseline}.jsonl"),
        str(out / "rollouts" / f"heldout-{candidate}.jsonl"),
    )
    stem = out / "reports" / f"{candidate}-vs-{baseline}"
    with atomic_writer(stem.with_suffix(".json")) as handle:
        handle.write(orjson.dumps(comparison.to_dict(), option=orjson.OPT_INDENT_2))
    with atomic_writer(stem.with_suffix(".html")) as handle:
        handle.write(render_html(comparison).encode())
    return comparison


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    size: str = "full",
    seed: int = 0,
    dpo: bool = True,
    overwrite: bool = False,
    threads: int = 1,
    log: Log = print,
) -> DemoReport:
    """Run the whole loop into ``out_dir`` and return what it measured (see the module docstring).

    ``threads`` is torch's CPU thread count: the tiny model's matrices are too small for more to
    help, and on a busy 2-core machine 2 threads made training an order of magnitude slower.
    """
    if size not in SIZES:
        raise ConfigError(f"must be one of {', '.join(SIZES)}", key="size")
    from rollcraft.train import require_train_extra

    require_train_extra("rollcraft demo")  # before anything is written
    plan, out = SIZES[size], Path(out_dir)
    _prepare_out(out, overwrite)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _quiet()
    with _deterministic(seed, threads):
        report = _loop(out, plan, size, seed, dpo, log)
    _write_report(out, report)
    return report


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Fixed CPU threads, deterministic kernels, every generator seeded; the old settings come back after.

    With these the loop prints the same figures for the same seed on machines of the same kind
    (the same torch build and device); only the timings differ.
    """
    import numpy as np
    import torch

    settings: Any = torch.utils.deterministic  # a module whose attributes are properties (untyped)
    threads_before, strict_before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    fill_before = settings.fill_uninitialized_memory
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, on a GPU
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor's memory by default: page faults that made
    # training 3.5x slower (mostly system time). The loop reads no uninitialized memory.
    settings.fill_uninitialized_memory = False
    try:
        yield
    finally:
        settings.fill_uninitialized_memory = fill_before
        torch.use_deterministic_algorithms(strict_before)
        torch.set_num_threads(threads_before)


def _loop(out: Path, plan: DemoSize, size: str, seed: int, dpo: bool, log: Log) -> DemoReport:
    """The steps of :func:`run_demo`, timed."""
    report = DemoReport(out, size)
    clock = _Clock(report.timings)
    with clock("pretrain"):
        base = _make_base(out, plan, seed, log)
    train_tasks = make_tasks(plan.train_tasks, seed=seed + 1, split="train")
    heldout = make_tasks(plan.heldout_tasks, seed=seed, split="heldout")
    with clock("collect"):
        log(f"collecting {plan.samples_per_task} rollouts of {len(train_tasks)} training tasks (base model)")
        report.counts["train_rollouts"] = _collect(
            base, train_tasks, plan.samples_per_task, seed, out / "rollouts" / "train-base.jsonl"
        )
        report.counts["sft_rows"], report.counts["dpo_pairs"] = _make_data(
            out / "rollouts" / "train-base.jsonl", out / "data" / "sft.jsonl", out / "data" / "dpo.jsonl"
        )
    log(f"training on {report.counts['sft_rows']} SFT rows and {report.counts['dpo_pairs']} DPO pairs")
    with clock("train"):
        names = _train_candidates(out, base, plan, seed, report.counts["dpo_pairs"], dpo, log)
    with clock("heldout"):
        for name in ["base", *names]:
            path = out / "rollouts" / f"heldout-{name}.jsonl"
            _collect(out / "models" / name, heldout, plan.heldout_samples, seed + 7, path)
        report.counts["heldout_tasks"] = len(heldout)
    with clock("evaluate"):
        for name in names:
            report.comparisons[f"{name} vs base"] = _evaluate(out, "base", name)
        if "dpo" in names:
            report.comparisons["dpo vs sft"] = _evaluate(out, "sft", "dpo")
    return report


def _write_report(out: Path, report: DemoReport) -> None:
    with atomic_writer(out / "demo_report.json") as handle:
        handle.write(json.dumps(report.to_dict(), indent=2).encode())


class _Clock:
    """``with clock("name"):`` adds the block's wall time to ``timings[name]``."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    def __call__(self, name: str) -> _Clock:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.timings[self._name] = self.timings.get(self._name, 0.0) + time.monotonic() - self._start
