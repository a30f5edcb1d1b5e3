"""Commands that train and judge: ``train sft|dpo|kto``, ``evaluate`` and ``demo``.

torch, transformers and TRL are imported only inside these commands (``rollcraft --help`` and
the data commands stay fast and work without the ``train`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rollcraft._console import err, out
from rollcraft.cli._common import (
    SuccessOpt,
    TaskKeyOpt,
    quarantine_lines,
    read_summary_line,
    table,
    write_json,
)
from rollcraft.read._reader import DEFAULT_SUCCESS_THRESHOLD, ReadOptions

if TYPE_CHECKING:
    from rollcraft.evaluate import Comparison
    from rollcraft.train import TrainConfig

__all__ = ["register"]

DataOpt = Annotated[str | None, typer.Option("--data", help="The SFT, DPO or KTO JSONL file (TRL dialect).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Base model: a local folder or a hub name.")]
OutputOpt = Annotated[str | None, typer.Option("-o", "--output", help="The model folder to write.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML file of training settings.")]
LoraOpt = Annotated[
    bool | None, typer.Option("--lora/--no-lora", help="Train LoRA adapters, merged on save.")
]
LrOpt = Annotated[float | None, typer.Option("--learning-rate", "--lr", help="Peak learning rate.")]
EpochsOpt = Annotated[float | None, typer.Option("--epochs", help="Passes over the data.")]
StepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps (overrides --epochs).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Examples per device per step.")]
AccumOpt = Annotated[int | None, typer.Option("--grad-accum", help="Gradient accumulation steps.")]
LengthOpt = Annotated[int | None, typer.Option("--max-length", help="Tokens per example (the rest is cut).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto (GPU when there is one) or cpu.")]
OverwriteOpt = Annotated[bool | None, typer.Option("--overwrite", help="Replace an existing model folder.")]
ValidateOpt = Annotated[
    bool | None, typer.Option("--validate/--no-validate", help="Validate the data first (stop on errors).")
]
AssistantOpt = Annotated[
    bool | None,
    typer.Option(
        "--assistant-only-loss/--full-loss", help="SFT loss on assistant tokens only (default auto)."
    ),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Any config key: --set lora_r=8 (YAML value syntax).")
]


def _sets(items: list[str] | None) -> dict[str, Any]:
    from rollcraft._yamlconf import yaml_value

    found: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        found[key.strip()] = yaml_value(value, key=f"--set {key.strip()}")
    return found


def _train(
    ctx: typer.Context, method: str, config_path: Path | None, flags: dict[str, Any], sets: list[str] | None
) -> None:
    from rollcraft.train import load_train_config, train

    config = load_train_config(config_path, **{**_sets(sets), **flags, "method": method})
    _require(ctx, config, config_path)
    if not _main_process():
        train(config)
        return
    err.print(f"training {method} on {config.data} from {config.model} -> {config.output_dir}")
    result = train(config, say=err.print)  # the Trainer prints its progress and log lines
    loss = "-" if result.train_loss is None else f"{result.train_loss:.4f}"
    out.print(
        f"{method}: {result.global_step} steps on {result.rows} rows in {result.runtime_s:.1f} s, "
        f"train loss {loss} -> {result.output_dir}"
    )


#: The settings a run needs, by the flag that gives them (a YAML config may give them instead).
_REQUIRED = {"data": "--data", "model": "--model", "output_dir": "--output"}


def _require(ctx: typer.Context, config: TrainConfig, config_path: Path | None) -> None:
    """A usage error (exit 2, usage line first) naming each setting neither a flag nor the config gave."""
    missing = [flag for key, flag in _REQUIRED.items() if not getattr(config, key)]
    if missing:
        where = f" (or its key in {config_path})" if config_path is not None else ""
        ctx.fail(f"Missing option {' / '.join(repr(m) for m in missing)}{where}.")


def _main_process() -> bool:
    """False in the other processes of a ``torchrun`` / ``accelerate launch`` run (they stay quiet)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _flags(**values: Any) -> dict[str, Any]:
    renames = {"output": "output_dir", "lr": "learning_rate", "grad_accum": "gradient_accumulation_steps"}
    return {renames.get(k, k): v for k, v in values.items() if v is not None}


def sft_command(
    ctx: typer.Context,
    data: DataOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    lora: LoraOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: LengthOpt = None,
    assistant_only_loss: AssistantOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    validate: ValidateOpt = None,
    set_: SetOpt = None,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer (needs rollcraft\\[train])."""
    flags = _flags(
        data=data, model=model, output=output, lora=lora, lr=lr, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        assistant_only_loss=assistant_only_loss, seed=seed, device=device, overwrite=overwrite,
        validate_data=validate,
    )  # fmt: skip
    _train(ctx, "sft", config, flags, set_)


def dpo_command(
    ctx: typer.Context,
    data: DataOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    lora: LoraOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: LengthOpt = None,
    beta: Annotated[float | None, typer.Option("--beta", help="DPO beta (pull of the reference).")] = None,
    loss_type: Annotated[
        list[str] | None, typer.Option("--loss-type", help="TRL loss type; repeat to combine (sigmoid, sft).")
    ] = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    validate: ValidateOpt = None,
    set_: SetOpt = None,
) -> None:
    """Direct preference optimisation with TRL's DPOTrainer (needs rollcraft\\[train])."""
    flags = _flags(
        data=data, model=model, output=output, lora=lora, lr=lr, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, beta=beta,
        loss_type=loss_type or None, seed=seed, device=device, overwrite=overwrite, validate_data=validate,
    )  # fmt: skip
    _train(ctx, "dpo", config, flags, set_)


def kto_command(
    ctx: typer.Context,
    data: DataOpt = None,
    model: ModelOpt = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    lora: LoraOpt = None,
    lr: LrOpt = None,
    epochs: EpochsOpt = None,
    max_steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    grad_accum: AccumOpt = None,
    max_length: LengthOpt = None,
    beta: Annotated[float | None, typer.Option("--beta", help="KTO beta (pull of the reference).")] = None,
    desirable_weight: Annotated[
        float | None,
        typer.Option("--desirable-weight", help="Loss weight of desirable rows (default: TRL's suggestion)."),
    ] = None,
    undesirable_weight: Annotated[
        float | None,
        typer.Option(
            "--undesirable-weight", help="Loss weight of undesirable rows (default: TRL's suggestion)."
        ),
    ] = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    overwrite: OverwriteOpt = None,
    validate: ValidateOpt = None,
    set_: SetOpt = None,
) -> None:
    """Unpaired preferences (rollcraft kto rows) with TRL's KTOTrainer (needs rollcraft\\[train])."""
    flags = _flags(
        data=data, model=model, output=output, lora=lora, lr=lr, epochs=epochs, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, beta=beta,
        desirable_weight=desirable_weight, undesirable_weight=undesirable_weight, seed=seed,
        device=device, overwrite=overwrite, validate_data=validate,
    )  # fmt: skip
    _train(ctx, "kto", config, flags, set_)


# ---------------------------------------------------------------- evaluate


def evaluate_command(
    ctx: typer.Context,
    baseline: Annotated[
        str, typer.Argument(metavar="BASELINE", help="Rollouts of the held-out tasks before training.")
    ],
    candidates: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="CANDIDATE",
            help="Rollouts of the same tasks after training; several: each against the baseline (Holm).",
            show_default=False,
        ),
    ] = None,
    json_path: Annotated[
        str | None, typer.Option("--json", help="Write the JSON report (- for stdout).")
    ] = None,
    html_path: Annotated[str | None, typer.Option("--html", help="Write an HTML report with plots.")] = None,
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when any metric regressed.")
    ] = False,
    k: Annotated[
        int | None, typer.Option("--k", help="k of pass@k (default: fewest rollouts per task).")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=100, help="Bootstrap and permutation draws.")
    ] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and the test.")] = 0,
    success_threshold: SuccessOpt = DEFAULT_SUCCESS_THRESHOLD,
    task_key: TaskKeyOpt = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Size a run: tasks x repeats to detect --detect (a CANDIDATE is a pilot run)."
        ),
    ] = False,
    detect: Annotated[float, typer.Option("--detect", help="--plan: the difference to detect.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="--plan: the power wanted.")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="--plan: the two-sided test's level.")] = 0.05,
    correlation: Annotated[
        float | None,
        typer.Option(
            "--correlation", help="--plan: the runs' task-score correlation (default 0, or the pilot's)."
        ),
    ] = None,
    plan_metric: Annotated[
        str, typer.Option("--plan-metric", help="--plan: success_rate or mean_reward.")
    ] = "success_rate",
) -> None:
    """Compare rollout files of the same tasks: per metric, difference, 95% CI, p-value, verdict."""
    from rollcraft._io import refuse_overwriting_inputs
    from rollcraft.evaluate import evaluate_many, render_html

    candidates = candidates or []
    options = ReadOptions(success_threshold=success_threshold, task_key=task_key)
    if plan:
        if len(candidates) > 1:
            ctx.fail("--plan takes at most one CANDIDATE (a pilot run of the same tasks).")
        if html_path or fail_on_regression:
            ctx.fail("--plan compares nothing: --html and --fail-on-regression do not apply.")
        refuse_overwriting_inputs([baseline, *candidates], [json_path])
        knobs = {"detect": detect, "power": power, "alpha": alpha, "metric": plan_metric}
        _plan(baseline, candidates[0] if candidates else None, options, knobs, correlation, json_path)
        return
    if not candidates:
        ctx.fail("Missing argument 'CANDIDATE'.")
    refuse_overwriting_inputs([baseline, *candidates], [json_path, html_path])
    results = evaluate_many(
        baseline, candidates, options=options, k=k, bootstrap_samples=samples, permutations=samples, seed=seed
    )
    _print_reads(results, err if json_path == "-" else out)
    report = results[0].to_dict() if len(results) == 1 else _many_dict(baseline, candidates, results)
    if json_path == "-":
        write_json("-", report)
    else:
        for i, result in enumerate(results, 1):
            _print_comparison(result, None if len(results) == 1 else i)
        if json_path:
            write_json(json_path, report)
    if html_path:
        _write_text(html_path, render_html(results[0] if len(results) == 1 else results))
    regressions = [
        f"{'' if len(results) == 1 else f'candidate {i}: '}{name}"
        for i, result in enumerate(results, 1)
        for name in result.regressions
    ]
    if fail_on_regression and regressions:
        err.print(f"regressed: {', '.join(regressions)}")
        raise typer.Exit(1)


def _many_dict(baseline: str, candidates: list[str], results: list[Comparison]) -> dict[str, Any]:
    return {
        "baseline": baseline,
        "candidates": candidates,
        "correction": "holm",
        "comparisons": [result.to_dict() for result in results],
    }


def _print_reads(results: list[Comparison], console: Any) -> None:
    """``baseline: Read L lines: ...`` and each candidate's, with the first quarantined lines and
    the NeMo Gym aggregate metrics found beside each file."""
    several = len(results) > 1
    for i, result in enumerate(results, 1):
        for name, read in result.reads.items():
            if name == "baseline" and i > 1:
                continue
            label = f"candidate {i}" if several and name == "candidate" else name
            console.print(f"{label}: {read_summary_line(read)}")
            for line in quarantine_lines(read):
                console.print(line, markup=False)
            for line in _aggregate_lines(result.inputs.get(name, {}).get("aggregate_metrics")):
                console.print(f"{label}: {line}", markup=False, soft_wrap=True)


def _aggregate_lines(found: dict[str, Any] | None) -> list[str]:
    """NeMo Gym's key metrics per agent, from ``X_aggregate_metrics.json``."""
    if found is None:
        return []
    if "error" in found:
        return [f"{found['path']}: not read as NeMo Gym aggregate metrics ({found['error']})"]
    lines = []
    for agent, metrics in found["agents"].items():
        shown = metrics["key_metrics"] or metrics["agent_metrics"]
        values = ", ".join(f"{name} {value:.4g}" for name, value in list(shown.items())[:12])
        lines.append(f"NeMo Gym aggregate metrics ({found['path']}), agent {agent}: {values or 'none'}")
    return lines


def _write_text(path: str, text: str) -> None:
    from rollcraft._io import atomic_writer

    with atomic_writer(path) as handle:
        handle.write(text.encode())


_COLORS = {"improved": "green", "regressed": "red"}
_FLIPS_SHOWN = 10


def _print_comparison(result: Comparison, index: int | None = None) -> None:
    adjusted = index is not None
    name = "candidate" if index is None else f"candidate {index} ({result.inputs['candidate']['path']})"
    columns = ["group", "metric", "baseline", "candidate", "difference", "95% CI", "p", "verdict", "tasks"]
    if adjusted:
        columns.insert(7, "p (Holm)")
    grid = table(f"Baseline vs {name}: {result.paired_tasks} paired tasks", columns)
    groups = [("overall", result.overall), *result.by_task_type.items()]
    for i, (group, metrics) in enumerate(groups):
        for j, (metric, r) in enumerate(metrics.items()):
            color = _COLORS.get(r.verdict, "dim")
            metric_name = f"pass@{r.k}" if r.k is not None else metric
            holm = [f"{r.p_adjusted:.3g}"] if r.p_adjusted is not None else []
            grid.add_row(
                group, metric_name, f"{r.baseline:.3f}", f"{r.candidate:.3f}",
                f"{r.difference:+.3f}", f"[{r.ci95[0]:+.3f}, {r.ci95[1]:+.3f}]", f"{r.p_value:.3g}",
                *holm, f"[{color}]{r.verdict}[/]", str(r.n_tasks),
                end_section=i == 0 and j == len(metrics) - 1,
            )  # fmt: skip
    out.print(grid)
    for side, keys in (("baseline", result.only_in_baseline), ("candidate", result.only_in_candidate)):
        if keys:
            shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
            out.print(f"{len(keys)} task(s) only in the {side} file (not compared): {shown}")
    _print_binary(result)


def _print_binary(result: Comparison) -> None:
    """The paired binary outcomes: the 2x2 counts, McNemar's p and the first flips with rollout ids."""
    from rollcraft.evaluate import binary_summary

    binary = result.paired_binary
    if binary is None:
        return
    out.print("Paired binary outcomes (rewards 0/1; a task passes when more than half its rollouts do):")
    out.print(f"  {binary_summary(binary)}", soft_wrap=True)
    for flip in binary.flips[:_FLIPS_SHOWN]:
        before, after = flip.baseline, flip.candidate
        arrow = flip.direction.replace("_to_", "->")
        out.print(
            f"  {arrow}  {flip.task}  baseline {before.passed}/{before.rollouts} "
            f"[{', '.join(before.rollout_ids)}] -> candidate {after.passed}/{after.rollouts} "
            f"[{', '.join(after.rollout_ids)}]",
            markup=False,
            soft_wrap=True,
        )
    if len(binary.flips) > _FLIPS_SHOWN:
        out.print(f"  ... {len(binary.flips) - _FLIPS_SHOWN} more flipped task(s) (--json lists them all)")


def _plan(
    baseline: str,
    pilot: str | None,
    options: ReadOptions,
    knobs: dict[str, Any],
    correlation: float | None,
    json_path: str | None,
) -> None:
    """``evaluate --plan``: the tasks x repeats table from the baseline's variance."""
    from rollcraft.evaluate import plan_run, read_run, task_correlation

    scores = read_run(baseline, "baseline", options=options)[0]
    source = "assumed"
    if correlation is None and pilot is not None:
        pilot_scores = read_run(pilot, "pilot", options=options)[0]
        correlation = task_correlation(scores, pilot_scores, knobs["metric"])
        source = f"measured on {pilot}"
    result = plan_run(scores, correlation=correlation or 0.0, correlation_source=source, **knobs)
    if json_path:
        write_json(json_path, {"baseline": baseline, "plan": result.to_dict()})
        if json_path == "-":
            return
    out.print(
        f"Plan from {baseline} ({result.metric}): {result.baseline_tasks} tasks x {result.baseline_repeats} "
        f"repeats, mean {result.mean:.3f}; between-task variance {result.between_task_variance:.4f}, "
        f"within-task variance {result.within_task_variance:.4f}; correlation {result.correlation:.2f} "
        f"({result.correlation_source})",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"Tasks needed to detect a difference of {result.detect:g} with power {result.power:g} "
        f"at alpha {result.alpha:g} (two-sided):"
    )
    grid = table("", ["repeats", "tasks", "rollouts per run"])
    for row in result.rows:
        grid.add_row(str(row.repeats), str(row.tasks), str(row.rollouts))
    out.print(grid)
    out.print(
        f"A run the baseline's size ({result.baseline_tasks} tasks x {result.baseline_repeats} repeats) "
        f"has power {result.baseline_power:.2f} for {result.detect:g}; no number of repeats needs fewer "
        f"than {result.min_tasks} tasks.",
        soft_wrap=True,
    )


# ---------------------------------------------------------------- demo

_DEMO_DIR = Path("demo-run")


def demo_command(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for every file it writes.")
    ] = _DEMO_DIR,
    size: Annotated[
        str, typer.Option("--size", help="full (the documented run) or small (the test's).")
    ] = "full",
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything.")] = 0,
    dpo: Annotated[bool, typer.Option("--dpo/--no-dpo", help="Also train and judge DPO candidates.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Reuse a non-empty output folder.")] = False,
    gym: Annotated[
        bool, typer.Option("--gym", help="The loop with the real NeMo Gym, served by rollcraft serve.")
    ] = False,
    gym_venv: Annotated[
        Path | None,
        typer.Option("--gym-venv", help="With --gym: a virtualenv with nemo-gym (default: found or built)."),
    ] = None,
) -> None:
    """The closed loop on CPU: collect -> filter -> SFT/DPO -> train -> collect held-out -> evaluate."""
    if gym or gym_venv is not None:
        from rollcraft.demo.gym_loop import run_gym_demo

        gym_report = run_gym_demo(
            output, gym_venv=gym_venv, size=size, seed=seed, overwrite=overwrite, log=err.print
        )
        out.print(gym_report.summary())
        return
    from rollcraft.demo import run_demo

    report = run_demo(output, size=size, seed=seed, dpo=dpo, overwrite=overwrite, log=err.print)
    out.print(report.summary())


def register(app: typer.Typer) -> None:
    """Add ``train sft|dpo|kto``, ``evaluate`` and ``demo`` to the ``rollcraft`` app."""
    train_app = typer.Typer(help="Train a model on SFT, DPO or KTO data with TRL (needs rollcraft\\[train]).")
    train_app.command("sft")(sft_command)
    train_app.command("dpo")(dpo_command)
    train_app.command("kto")(kto_command)
    app.add_typer(train_app, name="train", no_args_is_help=True)
    app.command("evaluate")(evaluate_command)
    app.command("demo")(demo_command)
