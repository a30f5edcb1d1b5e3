"""Pipeline commands: ``run``, ``versions`` and ``diff``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from rollcraft._console import err, out
from rollcraft._errors import InputError
from rollcraft.cli._common import progress, quarantine_listing, table
from rollcraft.formats.kto import kto_summary

__all__ = ["register"]


def run_command(
    config: Annotated[Path, typer.Argument(help="The pipeline YAML file.")],
    version: Annotated[
        str | None, typer.Option("--version-name", "--name", help="Name of the new version folder.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes reading the inputs in shards (plain files; the same output for any N).",
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="local or ray (overrides the config).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster address (with --engine ray; default: auto)."),
    ] = None,
) -> None:
    """Run a whole pipeline from one config into a new, never-overwritten version folder."""
    from rollcraft.pipeline import run_pipeline

    total = _input_bytes(config)
    with progress("rollcraft run", total=total) as advance:
        result = run_pipeline(
            config, version=version, workers=workers, engine=engine, ray_address=ray_address, progress=advance
        )
    _print_run(result.manifest, result.folder)
    why = result.manifest["counts"].get("engine", {}).get("one_process_because")
    if why is not None:
        err.print(f"[yellow]note[/]: the main pass ran in one process: {why}", markup=True)
    if result.model_folder is not None:
        out.print(
            f"[bold green]Trained[/] {result.model_folder} (data_version.json points at {result.folder.name})"
        )
    if result.validation_errors and result.manifest["config"].get("validate", {}).get("fail_on_error", True):
        found = escape(_validation_errors(result.folder))
        errors = result.validation_errors
        out.print(f"[bold red]validation found {errors} errors[/] ({found}): see {result.folder}")
        raise typer.Exit(1)


def _validation_errors(folder: Path) -> str:
    """The error codes in a version's validation reports: ``dpo.jsonl: empty_file 1``, ..."""
    from rollcraft.validate import CODES

    found = []
    for path in sorted(folder.glob("validation_*.json")):
        report = orjson.loads(path.read_bytes())
        counts = sorted(report["counts"].items())
        codes = [f"{c} {n}" for c, n in counts if CODES.get(c, ("error",))[0] == "error"]
        if codes:
            found.append(f"{report['path']}: {', '.join(codes)}")
    return "; ".join(found)


def _input_bytes(config: Path) -> float | None:
    try:
        from rollcraft._io import expand_inputs
        from rollcraft.pipeline import load_pipeline_config

        loaded = load_pipeline_config(config)
        files = expand_inputs([loaded.resolve(p) for p in loaded.config.inputs])
        return float(sum(os.path.getsize(f) for f in files if f != "-"))
    except Exception:  # the run itself reports the problem
        return None


def _print_run(manifest: dict[str, Any], folder: Path) -> None:
    counts = manifest["counts"]
    read, filt = counts["read"], counts["filter"]
    quarantined = sum(read["quarantined"].values())
    detail = ", ".join(f"{k} {v}" for k, v in read["quarantined"].items())
    out.print(
        f"Read {read['lines']} lines: {read['rollouts']} rollouts + {quarantined} quarantined"
        + (f" ({detail})" if detail else "")
    )
    examples = [(q["source"], q["line"], q["reason"], q["detail"]) for q in read.get("first_quarantined", [])]
    more = "manifest.json lists the first 20 and the first of each reason"
    for line in quarantine_listing(examples, quarantined, more=more):
        out.print(line, markup=False)
    share = 100.0 * filt["kept"] / read["rollouts"] if read["rollouts"] else 0.0
    out.print(f"Kept {filt['kept']}/{read['rollouts']} rollouts ({share:.1f}%)")
    steps = table("Filters (config order)", ["filter", "dropped first", "alone would drop"])
    for step in filt["steps"]:
        steps.add_row(step["filter"], str(step["dropped"]), str(step["alone"]))
    out.print(steps)
    if "redaction" in counts:
        red = counts["redaction"]
        out.print(
            f"Secrets: {red['rollouts']} rollouts searched, {red['redacted']} redacted, "
            f"{red['dropped']} dropped; kinds {red['kinds']}"
        )
    if counts["review"]["rejected"] or counts["review"]["decisions_matched"]:
        review = counts["review"]
        out.print(
            f"Review: {review['decisions_matched']} decisions matched, {review['rejected']} rejected dropped"
        )
    balance = counts["balance"]
    if balance.get("before"):
        out.print(
            f"Balance by {balance['by']} (max {balance['max_per_category']}): dropped {balance['dropped']}"
        )
        rows = table("Per category", ["category", "before", "after"])
        for category, n in balance["before"].items():
            rows.add_row(category, str(n), str(balance["after"][category]))
        out.print(rows)
    if "sft" in manifest["config"] and manifest["config"]["sft"]:
        sft = counts["sft"]
        skipped = _counts_text(sft["skipped"])
        out.print(
            f"SFT: {sft['rows']} rows; skipped {sum(sft['skipped'].values())}"
            + (f" ({skipped})" if skipped else "")
        )
        if sft.get("reasoning_lost"):
            dialect = manifest["config"]["sft"].get("format", "openai")
            out.print(
                f"{sft['reasoning_lost']} rows had reasoning that the {dialect} format cannot carry; "
                "read: {reasoning: think} inlines it as <think>...</think>",
                markup=False,
            )
    if manifest["config"].get("kto"):
        out.print(kto_summary(counts["kto"]), markup=False)
    if "dpo" in counts:
        dpo = counts["dpo"]
        skipped = _counts_text(dpo["skipped_tasks"])
        out.print(
            f"DPO: {dpo['pairs']} pairs from {dpo['tasks']} tasks "
            f"({dpo['tasks_with_two_or_more']} with >= 2 usable rollouts)"
            + (f"; skipped tasks: {skipped}" if skipped else "")
        )
    for kind, v in manifest.get("validation", {}).items():
        out.print(f"Validation {kind}: {v['errors']} errors, {v['warnings']} warnings")
    out.print(f"[bold green]Wrote version {manifest['version']}[/] to {folder}")


def versions_command(
    output_dir: Annotated[Path, typer.Argument(help="The folder holding version folders.")] = Path(
        "training"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the versions in a folder with their counts."""
    from rollcraft.pipeline import list_versions

    if not output_dir.is_dir():
        why = "not a folder" if output_dir.exists() else "no such folder"
        hint = "rollcraft run writes its versions under its output_dir"
        raise InputError(f"{why} ({hint})", path=str(output_dir))
    rows = list_versions(output_dir)
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if not rows:
        out.print(f"No versions in {output_dir} (no folder there has a manifest.json)", markup=False)
        return
    result = table(
        f"Versions in {output_dir}",
        ["version", "created", "parent", "lines", "rollouts", "kept", "sft rows", "dpo pairs"],
    )
    for row in rows:
        result.add_row(
            *(
                str(row.get(k) if row.get(k) is not None else "-")
                for k in (
                    "version",
                    "created",
                    "parent",
                    "lines",
                    "rollouts",
                    "kept",
                    "sft_rows",
                    "dpo_pairs",
                )
            )
        )
    out.print(result)


def diff_command(
    a: Annotated[Path, typer.Argument(help="The older version folder.")],
    b: Annotated[Path, typer.Argument(help="The newer version folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Say what changed between two versions: config, inputs, counts, rows added and removed."""
    from rollcraft.pipeline import diff_versions

    data = diff_versions(_version_path(a), _version_path(b))
    if as_json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(f"{data['from']} -> {data['to']}", markup=False, highlight=False)
    for section in ("config", "counts"):
        for line in _change_lines(section, data[section]):
            out.print(line, markup=False, highlight=False)
    out.print(_inputs_line(data["inputs"]), markup=False, highlight=False)
    for kind, rows in data["rows"].items():
        out.print(
            f"{kind} rows: {rows['from']} -> {rows['to']} "
            f"(+{len(rows['added'])} added, -{len(rows['removed'])} removed by rollout id)"
        )


def _version_path(path: Path) -> Path:
    if path.exists() or os.sep in str(path):
        return path
    return Path("training") / path


def _change_lines(section: str, changes: dict[str, dict[str, Any]]) -> list[str]:
    """``section: unchanged``, or a heading and one ``key: old -> new`` line per change."""
    if not changes:
        return [f"{section}: unchanged"]
    return [
        f"{section}: {len(changes)} changed",
        *(f"  {key}: {_short(c['from'])} -> {_short(c['to'])}" for key, c in changes.items()),
    ]


def _inputs_line(inputs: dict[str, list[str]]) -> str:
    """``inputs: unchanged`` or ``inputs: 1 added (a.jsonl), 1 changed (b.jsonl)``."""
    parts = [
        f"{len(paths)} {what} ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"
        for what, paths in inputs.items()
        if paths
    ]
    return f"inputs: {', '.join(parts) if parts else 'unchanged'}"


def _counts_text(counts: dict[str, int]) -> str:
    """``reason n, reason n`` (empty when there are none)."""
    return ", ".join(f"{key} {n}" for key, n in counts.items())


def _short(value: Any) -> str:
    """A value as a user reads it: ``(none)`` for a key one side lacks, JSON for lists and maps."""
    if value is None:
        return "(none)"
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def register(app: typer.Typer) -> None:
    """Add ``run``, ``versions`` and ``diff`` to ``app``."""
    app.command("run")(run_command)
    app.command("versions")(versions_command)
    app.command("diff")(diff_command)
