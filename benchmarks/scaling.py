"""How ``--workers N`` scales: ``python benchmarks/scaling.py [--size 1GB] [--workers 1,2,4,8] [--ray auto]``.

Times ``rollcraft run`` on the benchmark input (``benchmarks/make_data.py``) with each ``N`` of
``--workers``, interleaved (``--repeat`` rounds, medians), every run a fresh process, and prints
per ``N`` the speed-up over one worker and the efficiency: the speed-up divided by ``N``, the
share of ``N`` x one worker reached (the target: >= 0.8 up to 8 workers at 1 GB).

``--pipeline c`` (the default) is the benchmark's mode ``c`` (filters + SFT + DPO);
``--pipeline default`` the bundled example pipeline (redaction, dedupe, balance, validation...).
``--ray ADDRESS`` also times the same run with ``engine: ray`` on the cluster at ``ADDRESS``
(``auto``: a head started on this machine with ``ray start --head``).

It also fits ``T(N) = serial + parallel / N`` to the medians (least squares): the serial part
(start-up, the DPO phase, the manifest) bounds what any number of workers can reach.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import run  # noqa: E402
from benchmarks.make_data import build  # noqa: E402
from rollcraft._errors import InputError  # noqa: E402
from rollcraft._io import expand_inputs  # noqa: E402

TARGET = 0.8


def command(pipeline: str, data: Path, workers: int, ray: str | None = None) -> list[str]:
    """The command line of one run: ``--workers N``, or the Ray engine at ``ray``."""
    name = f"scale-{pipeline}-{'ray' if ray else workers}"
    if pipeline == "default":
        config = run.write_example(name, data)
        if ray:
            config.write_text(config.read_text() + f"engine: ray\nray_address: {ray}\n")
    else:
        engine = f"\nengine: ray\nray_address: {ray}" if ray else ""
        config = run.write_config(name, data, f"{run.SFT}\n{run.DPO}{engine}")
    return [run.PY, "-m", "rollcraft.cli", "run", str(config), "--workers", str(workers)]


def fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least squares ``T(N) = serial + parallel / N``: ``(serial, parallel)`` seconds."""
    if len({n for n, _ in points}) < 2:
        return None
    xs, ys = [1 / n for n, _ in points], [t for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def report(results: run.Results, workers: list[int], ray: str | None) -> str:
    """The table, the fit and the target, as Markdown."""
    one = results.median("1") if "1" in results.samples else None
    lines = [
        f"input: {results.size / 1e6:.0f} MB",
        "",
        "| run | median s | speed-up over 1 worker | efficiency (speed-up / N) | peak RSS MB "
        "(largest process) | all processes MB | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in results.samples:
        secs, n = results.median(mode), int(mode) if mode.isdigit() else None
        up = f"{one / secs:.2f}x" if one else "-"
        efficiency = f"{one / secs / n:.2f}" if one and n else "-"
        label = f"--workers {n}" if n else f"engine: ray ({ray})"
        cells = f"{secs:.2f} | {up} | {efficiency} | {results.rss(mode):.0f} | {results.total(mode):.0f}"
        lines.append(f"| {label} | {cells} | {results.cpu(mode):.2f} |")
    cpus = os.cpu_count() or 1
    points = [(n, results.median(str(n))) for n in workers if n <= cpus]  # more share the CPUs
    found = fit(points)
    lines.append("")
    if found is not None:
        serial, parallel = found
        bound = ", ".join(
            f"{n}: {(serial + parallel) / (serial + parallel / n) / n:.2f}" for n in (2, 4, 8, 16)
        )
        lines.append(
            f"- fit T(N) = serial + parallel / N over N = {', '.join(str(n) for n, _ in points)}: "
            f"serial {serial:.2f} s, parallel {parallel:.2f} s; the efficiency that serial part "
            f"allows on enough CPUs: {bound}"
        )
    if one:
        reached = [n for n in workers if n > 1 and one / results.median(str(n)) / n >= TARGET]
        lines.append(
            f"- efficiency >= {TARGET} (target, up to 8 workers at 1 GB) at N = "
            f"{', '.join(map(str, reached)) or 'none'} of {', '.join(map(str, workers))}"
        )
    if any(n > cpus for n in workers):
        lines.append(f"- this machine has {cpus} CPUs: runs with more workers than that share them")
    if "ray" in results.samples:
        lines.append("- engine: ray: peak RSS and CPU s are the driver's (Ray's workers aren't its children)")
    return "\n".join(lines)


def measure(
    size: int, workers: list[int], pipeline: str, repeat: int, ray: str | None, source: list[Path] | None
) -> run.Results:
    label = f"{size / 1e6:g}MB" + (f"-{run.source_digest(source)}" if source else "")
    data = build(run.DATA / f"rollouts-{label}.jsonl", size, source=source)
    runs = {str(n): command(pipeline, data, n) for n in workers}
    if ray:
        runs["ray"] = command(pipeline, data, max(workers), ray)
    results = run.Results(data.stat().st_size, 0)
    for line in runs.values():  # untimed: the page cache, the imports, the input's digest
        run.timed([line])
        run.clean()
    for round_ in range(repeat):
        for mode, line in runs.items():
            sample = run.timed([line])
            run.clean()
            results.samples.setdefault(mode, []).append(sample)
            print(f"  [round {round_ + 1}] {mode:>4}: {sample.seconds:7.2f} s  {sample.rss_mb:7.0f} MB")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1GB", help="input size (default 1GB)")
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated N (default 1,2,4,8)")
    parser.add_argument("--pipeline", choices=("c", "default"), default="c", help="what runs (default c)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--ray", metavar="ADDRESS", help="also run on the Ray cluster at ADDRESS (auto: a local head)"
    )
    parser.add_argument("--source", action="append", type=Path, help="rollout files or folders to build from")
    args = parser.parse_args(argv)
    try:
        size = run.parse_size(args.size)
        workers = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--size {args.size!r} or --workers {args.workers!r} is not valid (1GB; 1,2,4,8)")
    if not workers or workers[0] < 1:
        parser.error("--workers: give numbers of 1 or more, such as 1,2,4,8")
    for source in args.source or ():
        try:
            expand_inputs([source])
        except InputError as exc:
            parser.error(f"--source: {exc}")
    if 1 not in workers:
        workers.insert(0, 1)  # the speed-up is over one worker
    print(f"machine: {os.cpu_count()} CPUs, {run.cpu_model()}; python {sys.version.split()[0]}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; pipeline: {args.pipeline}")
    results = measure(size, workers, args.pipeline, args.repeat, args.ray, args.source)
    print(report(results, workers, args.ray))


if __name__ == "__main__":
    main()
