"""``rollcraft demo --gym``: the tutorial's loop with the real NeMo Gym, on a CPU, in minutes.

1. **Base model**: the demo's tiny model (:mod:`rollcraft.tiny`) pre-trained on scripted rollouts
   of NeMo Gym's bundled ``example_single_tool_call`` environment (:mod:`rollcraft.demo.weather`):
   half call ``get_weather`` (reward 1), half answer without it (reward 0), so it is of mixed
   quality.
2. **Collect**: ``rollcraft serve`` runs the base model; ``gym eval run`` (NeMo Gym's own
   servers, agent and verifier) plays the training tasks several times each, sampling at
   temperature 1, and the held-out tasks (other cities) with the same settings.
3. **Curate**: ``rollcraft run`` over the training rollouts: SFT rows of the successful ones,
   DPO pairs of success against failure of a task, both validated with the base model's tokenizer.
4. **Train**: ``rollcraft train sft`` from the base model on those rows.
5. **Evaluate**: ``rollcraft serve`` runs the trained model, ``gym eval run`` plays the held-out
   tasks, and ``rollcraft evaluate`` pairs them by task with the base model's.

Everything lands in the output folder: ``models/``, ``gym/<run>/`` (each ``gym eval run``'s
tasks, config, rollouts, side files and log), ``data/`` (the pipeline's versions),
``reports/``, ``report.json`` and ``report.html``. Every process started (the model servers,
``gym``, Ray and gym's servers) is stopped at the end, also on failure and on Ctrl-C.

Rollouts are sampled (temperature 1) by ``rollcraft serve`` in batches: which requests share a
batch depends on timing, so the sampled rollouts differ from run to run even with the same seed;
the tasks, the base model and the training are seeded, and the verdict holds across runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rollcraft._errors import ConfigError
from rollcraft._io import atomic_writer
from rollcraft.demo.gym import (
    Processes,
    default_gym_venv,
    exit_on_sigterm,
    find_gym_venv,
    install_gym_venv,
    link_venvs,
    run_gym_eval,
    start_server,
)
from rollcraft.demo.loop import (
    Log,
    _Clock,
    _config,
    _deterministic,
    _evaluate,
    _prepare_out,
    _progress,
    _quiet,
    _summary,
    _write_jsonl,
)
from rollcraft.demo.weather import ENVIRONMENT, make_tasks, script_record

__all__ = ["GYM_SIZES", "GymDemoReport", "GymDemoSize", "run_gym_demo"]


@dataclass(frozen=True, slots=True)
class GymDemoSize:
    """How much the gym loop does; ``full`` is the documented run, ``small`` the test's."""

    pretrain_tasks: int
    pretrain_steps: int
    train_tasks: int
    repeats: int
    heldout_tasks: int
    sft_steps: int


GYM_SIZES: dict[str, GymDemoSize] = {
    "full": GymDemoSize(320, 200, 50, 4, 30, 80),
    "small": GymDemoSize(320, 160, 40, 4, 24, 100),
}
_LR = {"pretrain": 3e-3, "sft": 1e-3}
_MAX_TOKENS = 48
_MAX_LENGTH = 256


@dataclass(slots=True)
class GymDemoReport:
    """What the gym loop measured: the trained model against the base model on held-out tasks."""

    out_dir: Path
    size: str
    comparison: Any = None
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``report.json``."""
        overall = self.comparison.overall
        side = {
            name: {metric: getattr(overall[metric], name) for metric in ("success_rate", "mean_reward")}
            for name in ("baseline", "candidate")
        }
        success, reward = overall["success_rate"], overall["mean_reward"]
        return {
            "environment": ENVIRONMENT,
            "size": self.size,
            **side,
            "difference": {
                "success_rate": success.difference,
                "ci95": list(success.ci95),
                "p_value": success.p_value,
                "verdict": success.verdict,
                "mean_reward": reward.difference,
                "mean_reward_ci95": list(reward.ci95),
            },
            "counts": self.counts,
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
        }

    def summary(self) -> str:
        """A few lines: success and reward before/after with the 95% CI of the change, and the time."""
        title, comparisons = f"demo --gym ({self.size}) in {self.out_dir}", {"sft vs base": self.comparison}
        return _summary(title, self.counts, comparisons, self.timings, 12)


# ---------------------------------------------------------------- the base model


def _make_base(out: Path, size: GymDemoSize, seed: int, log: Log) -> Path:
    """The tiny model pre-trained on scripted rollouts, half with the tool and half without."""
    from transformers import AutoTokenizer

    from rollcraft import Rollout, read_rollouts
    from rollcraft.formats import sft_rows
    from rollcraft.tiny import save_tiny_model, save_tiny_tokenizer
    from rollcraft.train import train_sft

    rng = random.Random(seed)
    tasks = make_tasks(size.pretrain_tasks, seed=seed, split="train")
    scripted = out / "data" / "pretrain-rollouts.jsonl"
    _write_jsonl(scripted, (script_record(t, use_tool=rng.random() < 0.5, rng=rng) for t in tasks))
    rollouts = (r for r in read_rollouts([str(scripted)]) if isinstance(r, Rollout))
    rows = out / "data" / "pretrain.jsonl"
    with atomic_writer(rows) as handle:
        handle.writelines(sft_rows(rollouts, include_failures=True))
    first = AutoTokenizer.from_pretrained(save_tiny_tokenizer(out / "build" / "tokenizer0"))
    corpus = [_render(first, json.loads(line)) for line in rows.read_bytes().splitlines()]
    tokenizer_dir = save_tiny_tokenizer(out / "build" / "tokenizer", corpus=corpus, vocab_size=1024)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.chat_template = _chat_template()
    tokenizer.save_pretrained(str(tokenizer_dir))
    init = save_tiny_model(out / "build" / "init", tokenizer_dir=tokenizer_dir, seed=seed)
    log(f"pre-training the base model: {size.pretrain_steps} steps on {len(corpus)} scripted rollouts")
    config = _train_config(size.pretrain_steps, _LR["pretrain"], seed)
    train_sft(rows, str(init), out / "models" / "base", config=config, on_log=_progress(log, "pre-training"))
    return out / "models" / "base"


def _chat_template() -> str:
    """The tiny template, rendering JSON the way rollcraft's rows and NeMo Gym store it.

    A request's tool schema keeps its client's key order while rollcraft's rows store it with
    sorted keys, and a call's arguments come back from a request as an object while the rows keep
    NeMo Gym's compact JSON text: sorted keys and compact separators render both alike, so the
    tiny model sees the same prompt when it is served as when it was trained.
    """
    from rollcraft.tiny import CHAT_TEMPLATE

    tools, arguments = "tool | tojson", "fn.arguments | tojson"
    if tools not in CHAT_TEMPLATE or arguments not in CHAT_TEMPLATE:
        raise AssertionError("the tiny chat template changed: update rollcraft.demo.gym_loop")
    compact = "tojson(sort_keys=True, separators=(',', ':'))"
    return CHAT_TEMPLATE.replace(tools, "tool | tojson(sort_keys=True)").replace(
        arguments, f"fn.arguments | {compact}"
    )


def _render(tokenizer: Any, row: dict[str, Any]) -> str:
    tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools")
    return str(tokenizer.apply_chat_template(row["messages"], tools=tools, tokenize=False))


def _train_config(steps: int, lr: float, seed: int, *, batch_size: int = 16) -> Any:
    """The demo's training settings, with room for the environment's tool schema in every prompt."""
    return _config(steps, lr, seed, batch_size=batch_size).model_copy(update={"max_length": _MAX_LENGTH})


# ---------------------------------------------------------------- curate, train, evaluate


_PIPELINE = """\
# rollcraft run: SFT rows of the successful training rollouts, DPO pairs of success vs failure.
inputs: [{rollouts}]
output_dir: {output}
read: {{success_threshold: 1.0}}
filters: {{drop_flagged: [truncated, unpaired_tool_call, orphan_tool_output, empty_completion]}}
sft: {{format: trl, success_only: true}}
dpo: {{format: trl, pairing: best-worst, min_margin: 0.5}}
validate: {{enabled: true, fail_on_error: true, html: false, tokenizer: {tokenizer}, max_seq_len: {length}}}
"""


def _curate(out: Path, rollouts: Path, base: Path) -> tuple[Path, dict[str, int]]:
    """``rollcraft run`` over the training rollouts; returns the version folder and its row counts."""
    from rollcraft.pipeline import run_pipeline

    config = out / "data" / "pipeline.yaml"
    text = _PIPELINE.format(
        rollouts=json.dumps(str(rollouts)),
        output=json.dumps(str(out / "data" / "curated")),
        tokenizer=json.dumps(str(base)),
        length=_MAX_LENGTH,
    )
    config.write_text(text)
    result = run_pipeline(config)
    counts = {name: _lines(result.folder / f"{name}.jsonl") for name in ("sft", "dpo")}
    return result.folder, counts


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


# ---------------------------------------------------------------- the loop


@dataclass(slots=True)
class _Run:
    """What the loop's steps share."""

    out: Path
    plan: GymDemoSize
    seed: int
    venv: Path
    processes: Processes
    log: Log
    report: GymDemoReport

    def collect(self, model: Path, name: str, run: str, tasks: list[dict[str, Any]]) -> Path:
        """Serve ``model``, run ``gym eval run`` of ``tasks`` (``repeats`` each), stop the server."""
        with _Clock(self.report.timings)(run):
            server, url = start_server(self.processes, model, name, self.out / "gym")
            self.log(f"gym eval run: {len(tasks)} tasks x {self.plan.repeats} ({run}: {name} at {url})")
            try:
                return run_gym_eval(
                    self.processes,
                    self.venv,
                    venvs=self.out / "gym" / "venvs",
                    environment=ENVIRONMENT,
                    tasks=tasks,
                    folder=self.out / "gym" / run,
                    base_url=url,
                    model=name,
                    repeats=self.plan.repeats,
                    temperature=1.0,
                    max_tokens=_MAX_TOKENS,
                )
            finally:
                self.processes.stop(server)


def _split(rollouts: Path, first: int, head: Path, tail: Path) -> tuple[int, int]:
    """Lines of tasks ``< first`` (by ``_ng_task_index``) to ``head``, the others to ``tail``, unchanged."""
    counts = [0, 0]
    with atomic_writer(head) as low, atomic_writer(tail) as high, rollouts.open("rb") as lines:
        for line in lines:
            part = 0 if orjson.loads(line)["_ng_task_index"] < first else 1
            (low, high)[part].write(line)
            counts[part] += 1
    return counts[0], counts[1]


def run_gym_demo(
    out_dir: str | os.PathLike[str],
    *,
    gym_venv: str | os.PathLike[str] | None = None,
    size: str = "full",
    seed: int = 0,
    overwrite: bool = False,
    threads: int = 1,
    log: Log = print,
) -> GymDemoReport:
    """Run the loop with the real NeMo Gym into ``out_dir``; returns what it measured (module docstring).

    ``gym_venv`` is a virtualenv with ``nemo-gym`` installed; without it ``$ROLLCRAFT_GYM_VENV``,
    then the user's cache, and when neither has one it is built there (``uv``, Python 3.13).
    """
    if size not in GYM_SIZES:
        raise ConfigError(f"must be one of {', '.join(GYM_SIZES)}", key="size")
    from rollcraft.train import require_train_extra

    require_train_extra("rollcraft demo --gym")  # before anything is written
    out = Path(out_dir)
    started = time.monotonic()
    venv = find_gym_venv(Path(gym_venv) if gym_venv is not None else None)
    if venv is None:
        venv = install_gym_venv(default_gym_venv(), log=log)
    installed = time.monotonic() - started
    _prepare_out(out, overwrite)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _quiet()
    report = GymDemoReport(out, size)
    if installed > 5:
        report.timings["install"] = installed
    marker = f"{out.resolve()}:{os.getpid()}:{time.time_ns()}"
    processes = Processes(marker)
    try:
        with exit_on_sigterm(), _deterministic(seed, threads):
            _loop(_Run(out, GYM_SIZES[size], seed, venv, processes, log, report))
    finally:
        processes.stop_all()
    with atomic_writer(out / "report.json") as handle:
        handle.write(json.dumps(report.to_dict(), indent=2).encode() + b"\n")
    return report


def _loop(run: _Run) -> None:
    out, plan, seed, report = run.out, run.plan, run.seed, run.report
    clock = _Clock(report.timings)
    link_venvs(out / "gym", run.venv, ENVIRONMENT)
    with clock("pretrain"):
        base = _make_base(out, plan, seed, run.log)
    train_tasks = make_tasks(plan.train_tasks, seed=seed + 1, split="train")
    heldout = make_tasks(plan.heldout_tasks, seed=seed, split="heldout")
    # one gym run for the base model: the held-out tasks first, so that they have the same
    # _ng_task_index (part of a task's key) as in the trained model's run
    both = run.collect(base, "base", "collect-base", heldout + train_tasks)
    rollouts = out / "rollouts"
    base_heldout, train_rollouts = rollouts / "heldout-base.jsonl", rollouts / "train-base.jsonl"
    _split(both, len(heldout), base_heldout, train_rollouts)
    with clock("curate"):
        version, rows = _curate(out, train_rollouts, base)
    report.counts.update(
        train_rollouts=_lines(train_rollouts),
        sft_rows=rows["sft"],
        dpo_pairs=rows["dpo"],
        heldout_tasks=len(heldout),
    )
    run.log(f"training on {rows['sft']} SFT rows ({rows['dpo']} DPO pairs curated too) in {version}")
    with clock("train"):
        from rollcraft.train import train_sft

        config = _train_config(plan.sft_steps, _LR["sft"], seed)
        train_sft(
            version / "sft.jsonl",
            str(base),
            out / "models" / "sft",
            config=config,
            on_log=_progress(run.log, "sft"),
        )
    sft_heldout = rollouts / "heldout-sft.jsonl"
    shutil.copyfile(run.collect(out / "models" / "sft", "sft", "heldout-sft", heldout), sft_heldout)
    with clock("evaluate"):  # rollouts/heldout-{base,sft}.jsonl -> reports/sft-vs-base.{json,html}
        report.comparison = _evaluate(out, "base", "sft")
        with atomic_writer(out / "report.html") as handle:
            handle.write((out / "reports" / "sft-vs-base.html").read_bytes())
