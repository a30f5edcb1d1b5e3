"""One command for the performance figures: ``python benchmarks/run.py [--sizes 100MB,1GB] [--repeat 3]``.

Builds realistic inputs from the shared real rollouts (``benchmarks/make_data.py``) into
``benchmarks/data/`` and times, interleaved (a b c d e sft dpo r, a b c ...), on the same file:

* ``a``   the floor: read the file and decode every line with orjson;
* ``b``   the tutorial's own pipeline (``benchmarks/tutorial.py``) on the same records, flattened;
* ``c``   ``rollcraft run``: filter + SFT + DPO (validation off);
* ``d``   the same with ``--workers 2``;
* ``e``   two copies of ``a`` at once (what the second core is worth);
* ``sft`` / ``dpo``  ``rollcraft run`` writing only SFT rows / only DPO pairs;
* ``r``   rollcraft's reader alone (``benchmarks/reader.py``): every line decoded and normalized,
  nothing filtered or written: what every run pays before its own work;
* ``v``   (``--validate``) ``c`` with validation on, to show what validation costs;
* ``default`` what users run: the bundled example pipeline (``examples/pipeline.yaml``: redaction,
  the flag filter, dedupe, balance, SFT, DPO and validation) on the same input.

Every measurement is a fresh process (wall clock, interpreter start included); peak RSS is the
largest ``VmHWM`` of the process or any of its children, CPU time the user + system time of all
of them (``benchmarks/rss.py``). Medians are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.make_data import build, build_flat  # noqa: E402
from benchmarks.rss import run_measured  # noqa: E402
from rollcraft._errors import InputError  # noqa: E402
from rollcraft._io import expand_inputs  # noqa: E402
from rollcraft.pipeline import DIGEST_CACHE  # noqa: E402

DATA = HERE / "data"
MODES = ("a", "b", "c", "d", "e", "sft", "dpo", "r", "default")
EXAMPLE = HERE.parent / "examples" / "pipeline.yaml"
PY = sys.executable

PIPELINE = """inputs: ["{input}"]
output_dir: "{out}"
filters:
  min_reward: 0.0
  max_turns: 400
{sections}
validate: {{enabled: {validate}}}
"""
SFT = "sft: {format: trl, success_only: false}"  # every kept rollout, as the tutorial writes
DPO = "dpo: {format: trl}"


@dataclass(slots=True)
class Sample:
    """One timed run."""

    seconds: float
    rss_mb: float
    total_mb: float
    cpu_seconds: float = 0.0


@dataclass(slots=True)
class Results:
    """Every sample of every mode for one input size."""

    size: int
    flat_size: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    #: Seconds of CPU time the VM's host took from this machine while the runs ran (``steal``).
    steal: float = 0.0
    wall: float = 0.0

    def median(self, mode: str) -> float:
        return statistics.median(s.seconds for s in self.samples[mode])

    def fastest(self, mode: str) -> float:
        return min(s.seconds for s in self.samples[mode])

    def cpu(self, mode: str) -> float:
        return statistics.median(s.cpu_seconds for s in self.samples[mode])

    def rss(self, mode: str) -> float:
        return max(s.rss_mb for s in self.samples[mode])

    def total(self, mode: str) -> float:
        return max(s.total_mb for s in self.samples[mode])


def parse_size(text: str) -> int:
    """``100MB``, ``1GB``, ``5GB``, or a number of bytes (decimal units)."""
    text = text.strip().upper()
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def timed(commands: list[list[str]]) -> Sample:
    """Start the commands at once; wall time until all end; the largest peak RSS of any process."""
    peak, codes = run_measured(commands)
    if any(codes):
        raise SystemExit(f"failed ({codes}): {' '.join(commands[0])}")
    return Sample(peak.seconds, peak.max_mb, peak.total_mb, peak.cpu_seconds)


def write_config(name: str, data: Path, sections: str, validate: bool = False) -> Path:
    """A pipeline config writing into a scratch folder."""
    out = DATA / f"out-{name}"
    path = DATA / f"{name}.yaml"
    text = PIPELINE.format(input=data, out=out, sections=sections, validate=str(validate).lower())
    path.write_text(text)
    return path


def write_example(name: str, data: Path) -> Path:
    """The bundled example pipeline (every step it has, validation on) reading ``data`` and
    writing into a scratch folder: only its ``inputs`` and ``output_dir`` are changed, and
    validation's errors do not fail the run (it checks as much: on short records balance leaves
    no task two rollouts, so the DPO file is empty, an error the example's config fails on)."""
    import yaml

    config = yaml.safe_load(EXAMPLE.read_text())
    config["inputs"], config["output_dir"] = [str(data)], str(DATA / f"out-{name}")
    config.setdefault("validate", {})["fail_on_error"] = False
    path = DATA / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def commands(mode: str, data: Path, flat: Path) -> list[list[str]]:
    """The command line(s) of one mode."""
    rollcraft = [PY, "-m", "rollcraft.cli", "run"]
    floor = [PY, str(HERE / "floor.py"), str(data)]
    both = f"{SFT}\n{DPO}"
    table = {
        "a": [floor],
        "r": [[PY, str(HERE / "reader.py"), str(data)]],
        "e": [floor, floor],
        "b": [[PY, str(HERE / "tutorial.py"), str(flat), str(DATA / "out-tutorial")]],
        "c": [[*rollcraft, str(write_config("c", data, both))]],
        "d": [[*rollcraft, str(write_config("d", data, both)), "--workers", "2"]],
        "sft": [[*rollcraft, str(write_config("sft", data, SFT))]],
        "dpo": [[*rollcraft, str(write_config("dpo", data, DPO))]],
        "v": [[*rollcraft, str(write_config("v", data, both, validate=True))]],
        "default": [[*rollcraft, str(write_example("default", data))]],
    }
    return table[mode]


def clean() -> None:
    """Remove the scratch output folders' versions; rollcraft's input-digest cache stays.

    A user iterating on a pipeline hashes an input once (rollcraft caches the sha256 by path,
    size, mtime and inode in the output folder); the timed runs measure that steady state. The
    untimed warm-up run pays the first hash (about 0.7-1 s per GB; in a background thread with one
    process, in a forked process alongside the workers with ``--workers``).
    """
    for path in DATA.glob("out-*"):
        if not path.is_dir():
            continue
        for child in path.iterdir():
            if child.name == DIGEST_CACHE:
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def measure(
    size: int, modes: list[str], repeat: int, warmup: bool = True, source: list[Path] | None = None
) -> Results:
    """Build the inputs and run every mode ``repeat`` times, interleaved.

    ``source``: other NeMo Gym rollout files or folders to build the input from (the default is
    the shared real files); their input files are named by a digest of the source paths.
    """
    label = f"{size / 1e6:g}MB"
    if source:
        label = f"{label}-{source_digest(source)}"
    data = build(DATA / f"rollouts-{label}.jsonl", size, source=source)
    flat = DATA / f"rollouts-{label}.tutorial.jsonl"
    if "b" in modes:
        build_flat(data, flat)
    results = Results(data.stat().st_size, flat.stat().st_size if flat.exists() else 0)
    for mode in modes if warmup else ():  # warm the page cache, and the imports
        subprocess.run(commands(mode, data, flat)[0], capture_output=True, check=True)
        clean()
    steal, start = steal_seconds(), time.perf_counter()
    for round_ in range(repeat):
        for mode in modes:
            sample = timed(commands(mode, data, flat))
            clean()
            results.samples.setdefault(mode, []).append(sample)
            print(
                f"  [{label} round {round_ + 1}] {mode:>4}: {sample.seconds:7.2f} s  {sample.rss_mb:7.0f} MB"
            )
    results.steal, results.wall = steal_seconds() - steal, time.perf_counter() - start
    return results


def source_digest(source: list[Path]) -> str:
    """8 hex digits naming an input built from ``source``: its files' paths, sizes and times, so
    changed or added files build a new input instead of reusing one built from the old ones."""
    entries = []
    for name in expand_inputs([str(p) for p in source]):
        stat = os.stat(name)
        entries.append(f"{os.path.abspath(name)}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:8]


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, all CPUs together (Linux; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def report(results: Results) -> str:
    """The table and the ratios, as Markdown."""
    mb, flat_mb = results.size / 1e6, results.flat_size / 1e6
    lines = [
        f"input: {mb:.0f} MB NeMo Gym shape ({flat_mb:.0f} MB in the tutorial's flattened shape)",
        "",
        "| run | median s | MB/s | peak RSS MB (largest process) | all processes MB | CPU s | CPUs busy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, secs in ((m, results.median(m)) for m in results.samples):
        size = flat_mb if mode == "b" else mb * (2 if mode == "e" else 1)
        rss, total, cpu = results.rss(mode), results.total(mode), results.cpu(mode)
        cells = (secs, size / secs, rss, total, cpu, cpu / secs)
        digits = (2, 0, 0, 0, 2, 2)
        lines.append(f"| {mode} | {' | '.join(f'{v:.{n}f}' for v, n in zip(cells, digits, strict=True))} |")
    lines += ["", *ratios(results, results.median), *cpu_bound(results)]
    fastest = [line.split(" (target")[0].removeprefix("- ") for line in ratios(results, results.fastest)]
    if fastest:
        lines += ["", "Each mode's fastest round instead of its median (interference only slows a run down):"]
        lines.append("; ".join(fastest))
    lines += [
        "",
        f"CPU time taken by the VM's host (steal) during the timed rounds: {results.steal:.1f} s "
        f"in {results.wall:.0f} s",
    ]
    return "\n".join(lines)


def ratios(results: Results, m: Callable[[str], float]) -> list[str]:
    """The ratios the targets are stated in, of each mode's ``m`` (median, or fastest) time."""
    s = results.samples
    out = []
    if "a" in s and "c" in s:
        out.append(f"- (c)/(a) run vs decode floor: {m('c') / m('a'):.2f}x (target <= 2.0)")
    if "b" in s and "c" in s:
        out.append(f"- (b)/(c) tutorial vs run, same records: {m('b') / m('c'):.2f}x (target >= 4.5)")
    for mode, goal in (("sft", 2.0), ("dpo", 2.0)):
        if "a" in s and mode in s:
            out.append(f"- {mode}/(a): {m(mode) / m('a'):.2f}x (target <= {goal})")
    if "a" in s and "default" in s:
        out.append(
            f"- default/(a) the example pipeline (redaction, filters, dedupe, balance, SFT, DPO, "
            f"validation) vs decode floor: {m('default') / m('a'):.2f}x (target <= 4.0); peak RSS "
            f"{results.rss('default'):.0f} MB (target < 200)"
        )
        if "c" in s:
            out.append(f"- default/(c) the example pipeline vs the bare run: {m('default') / m('c'):.2f}x")
    if "a" in s and "r" in s:
        reader = m("r") / m("a")
        out.append(
            f"- r/(a) rollcraft's reader alone: {reader:.2f}x (every run pays it first; it leaves "
            f"{2.0 - reader:.2f}x of the targets of c, sft and dpo for the rest)"
        )
    if all(k in s for k in "acde"):
        run_up, floor_up = m("c") / m("d"), 2 * m("a") / m("e")
        share = (run_up - 1) / (floor_up - 1) if floor_up > 1 else float("nan")
        out.append(
            f"- speed-up: --workers 2 {run_up:.2f}x; two decode loops {floor_up:.2f}x; "
            f"ratio {run_up / floor_up:.2f} (target >= 0.9); share of the gain {share:.2f}"
        )
    return out


def cpu_bound(results: Results, cpus: int | None = None) -> list[str]:
    """What the machine's CPUs allow ``--workers 2``: its CPU time spread over every CPU.

    A run that keeps more than one CPU busy by itself (``c``'s writing thread hashes and writes
    its outputs beside the main thread) leaves less of the machine to a second worker than a
    single-threaded decode loop does; this bound says how much, measured.
    """
    if not all(k in results.samples for k in "cd"):
        return []
    cpus = cpus or os.cpu_count() or 1
    c, d = results.median("c"), results.median("d")
    c_cpu, d_cpu = results.cpu("c"), results.cpu("d")
    if d_cpu <= 0:
        return []
    return [
        f"- CPUs: c kept {c_cpu / c:.2f} busy on average, d {d_cpu / d:.2f} of {cpus}; d's CPU time "
        f"({d_cpu:.2f} s) on all {cpus} CPUs from start to end would take {d_cpu / cpus:.2f} s, a "
        f"speed-up over c of at most {c * cpus / d_cpu:.2f}x on this machine"
    ]


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, run, print the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="100MB,1GB", help="comma-separated input sizes (default 100MB,1GB)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)},v")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first run of each mode")
    parser.add_argument("--validate", action="store_true", help="also time mode v (validation on)")
    parser.add_argument(
        "--source",
        action="append",
        type=Path,
        help="NeMo Gym rollout files or folders to build the inputs from (repeatable; default: NeMo "
        "Gym's example rollouts: ../shared/data/nemo-gym-rollouts, else from the nemo-gym wheel)",
    )
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m] + (["v"] if args.validate else [])
    unknown = [m for m in modes if m not in (*MODES, "v")]
    if unknown or not modes:
        parser.error(f"--modes: unknown mode {', '.join(unknown)} (choose from {','.join(MODES)},v)")
    try:
        sizes = [(text, parse_size(text)) for text in args.sizes.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--sizes: {args.sizes!r} is not a list of sizes such as 100MB,1GB")
    for source in args.source or ():
        if not source.exists():
            parser.error(f"--source: {source}: no such file or folder")
        try:
            expand_inputs([source])
        except InputError as exc:
            parser.error(f"--source: {exc}")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}; python {sys.version.split()[0]}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    for text, size in sizes:
        print(f"\n## {text}")
        results = measure(size, modes, args.repeat, warmup=not args.no_warmup, source=args.source)
        print(report(results))


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (or the platform's name for it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
