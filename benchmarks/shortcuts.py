"""What each speed or memory shortcut buys: ``python benchmarks/shortcuts.py [--only NAME,...]``.

Every shortcut rollcraft keeps only for speed or memory has a plain path that writes the same
bytes (``tests/perf/test_shortcuts.py`` checks that). This times each one against its plain path
on the benchmark input (``benchmarks/make_data.py``; ``--size``, default 100MB), every variant
a fresh process, the variants of one shortcut interleaved (``--repeat`` rounds, medians):
wall seconds, CPU seconds (user + system of the process and its children) and peak RSS.
The candidate table and the compact sets are measured in one process instead (``candidates``,
``compact``): what they buy is memory per entry, at the sizes where it matters.

=============  ===========================================================================
``fast``       the reader alone: the fast partial decode (:mod:`rollcraft.read._fast`) / every
               line decoded in full and normalized from the dict (``ReadOptions.fast`` off)
``splice``     ``rollcraft run``, DPO only: pairs spliced from the side rows' bytes / side
               rows decoded (no splicing) / input lines read back and normalized again
``splice-sft`` the same with SFT rows written too (the pairs' sides are mostly SFT rows)
``pairs``      DPO only, ``--workers 2``: pairs encoded by forked workers / in the parent
``clean``      drop-mode redaction + balance + a rejects file, ``--workers 2`` (two passes over
               shards): the main pass skips the lines the first pass found clean / searches
               every line again
``chosen``     redaction (replace) + balance: the main pass reads only the lines balance
               chose / reads and judges every line again
``writer``     filter + SFT + DPO: outputs written and hashed by a thread / inline
``gc``         filter + SFT + DPO: :func:`few_collections` / the collector's defaults
``malloc``     filter + SFT + DPO: glibc's mmap and trim thresholds raised / defaults
``candidates`` 1,000,000 DPO candidates (250,000 tasks) added and planned: the packed table /
               the table spilled past 4 MB / ``Candidate`` lists and :func:`plan_pairs`
``compact``    475,000 ids and 475,000 dedupe keys: :class:`IdSet` / ``set``,
               :class:`FirstSeen` / ``dict``
=============  ===========================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.make_data import build  # noqa: E402
from benchmarks.rss import run_measured  # noqa: E402

DATA = HERE / "data"
PY = sys.executable
BODY = """inputs: ["{input}"]
output_dir: "{out}"
filters:
  min_reward: 0.0
  max_turns: 400
{sections}
validate: {{enabled: false}}
"""
BOTH = "sft: {format: trl, success_only: false}\ndpo: {format: trl}"
DPO = "dpo: {format: trl}"
CLEAN = "redact: {on_secret: drop}\nbalance: {max_per_category: 200, by: task_type, seed: 0}\n" + BOTH
CLEAN += "\nwrite_rejects: true"  # every dropped line written: the main pass reads every line
CHOSEN = "redact: {on_secret: replace}\nbalance: {max_per_category: 15, by: task_type, seed: 0}\n" + BOTH

#: Each shortcut: its workload (sections of the config, ``reader``), workers, and its variants
#: (the first is what rollcraft does).
SHORTCUTS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "fast": ("reader", 1, ("on", "off")),
    "splice": (DPO, 1, ("on", "rows", "plain")),
    "splice-sft": (BOTH, 1, ("on", "rows", "plain")),
    "pairs": (DPO, 2, ("on", "off")),
    "clean": (CLEAN, 2, ("on", "off")),
    "chosen": (CHOSEN, 1, ("on", "off")),
    "writer": (BOTH, 1, ("on", "off")),
    "gc": (BOTH, 1, ("on", "off")),
    "malloc": (BOTH, 1, ("on", "off")),
}
IN_PROCESS = ("candidates", "compact")


Setter = Callable[[object, str, Any], None]


def switch_off(name: str, variant: str, put: Setter = setattr) -> None:
    """Turn a shortcut off (``variant`` other than ``on``): the plain path writes the same bytes.

    ``put`` sets each attribute (tests pass ``monkeypatch.setattr``, which undoes it)."""
    from rollcraft import _alloc, cli
    from rollcraft.engines import _writing, local
    from rollcraft.formats import dpo
    from rollcraft.read import _reader as _read

    if variant == "on":
        return
    if name == "fast":
        put(_read.ReadOptions, "fast", property(lambda self: False))
    elif name in ("splice", "splice-sft"):
        put(dpo, "_spliced", lambda *args: None)
        if variant == "plain":
            put(local, "_same_trl", lambda loaded: False)
            put(local, "_sides", _no_sides)
    elif name == "pairs":
        put(local, "_parallel_pairs", serial_pairs)
    elif name == "clean":
        balanced = local._balanced

        def unclean(*args: Any, **kwargs: Any) -> Any:
            plan, info = balanced(*args, **kwargs)
            return dataclasses.replace(plan, clean_lines=None), info

        put(local, "_balanced", unclean)
    elif name == "chosen":
        put(local, "_chosen_only", lambda *args: False)
    elif name == "writer":
        for module in (local, _writing):
            put(module, "DigestWriter", _inline_writer(module.DigestWriter))
    elif name == "gc":
        put(local, "few_collections", lambda *args, **kwargs: contextlib.nullcontext())
    elif name == "malloc":
        put(cli, "tune_process", lambda: _alloc._TUNED.append(True))
    else:
        raise ValueError(f"no shortcut {name!r}")


@contextlib.contextmanager
def _no_sides(*args: Any) -> Iterator[None]:
    yield None


def serial_pairs(collector: Any, planned: Any, workers: int) -> Iterator[tuple[bytes, bytes]]:
    """What ``_parallel_pairs`` yields, encoded in this process."""
    for pair, line in collector.encode(planned, collector.report):
        yield line, pair.encode() + b"\n"


def _inline_writer(cls: Any) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> Any:
        return cls(*args, **{**kwargs, "background": False})

    return make


def child(name: str, variant: str, argv: list[str]) -> None:
    """One measured process: the shortcut switched, then the command line or the reader."""
    switch_off(name, variant)
    if argv[0] == "reader":
        from benchmarks.reader import main as reader

        reader(argv[1])
        return
    from rollcraft import cli

    sys.argv = ["rollcraft", *argv]
    cli.main()


def command(name: str, variant: str, data: Path) -> list[str]:
    sections, workers, _ = SHORTCUTS[name]
    head = [PY, str(Path(__file__)), "--child", name, variant]
    if sections == "reader":
        return [*head, "reader", str(data)]
    out = DATA / f"shortcut-out-{name}"  # not out-*: benchmarks/run.py empties those as it runs
    config = DATA / f"shortcut-{name}.yaml"
    config.write_text(BODY.format(input=data, out=out, sections=sections))
    return [*head, "run", str(config), "--workers", str(workers)]


def measure(name: str, data: Path, repeat: int) -> None:
    variants = SHORTCUTS[name][2]
    samples: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    for round_ in range(repeat + 1):  # the first round warms the page cache and the digest cache
        for variant in variants:
            peak, codes = run_measured([command(name, variant, data)])
            if any(codes):
                raise SystemExit(f"{name} {variant} failed: {codes}")
            if round_:
                samples[variant].append((peak.seconds, peak.cpu_seconds, peak.max_mb))
            for out in DATA.glob(f"shortcut-out-{name}/v*"):
                shutil.rmtree(out, ignore_errors=True)
    base = [statistics.median(s[i] for s in samples[variants[0]]) for i in range(2)]
    best = min(s[1] for s in samples[variants[0]])
    for variant in variants:
        wall, cpu, rss = (statistics.median(s[i] for s in samples[variant]) for i in range(3))
        least = min(s[1] for s in samples[variant])
        print(
            f"{name:8} {variant:6} {wall:6.2f} s (x{wall / base[0]:.2f})"
            f"  {cpu:6.2f} CPU s (x{cpu / base[1]:.2f}; fastest {least:.2f}, x{least / best:.2f})"
            f"  {rss:4.0f} MB"
        )


def candidates() -> None:
    """Packed table, spilled table, and ``Candidate`` lists: seconds and bytes per candidate."""
    import tracemalloc
    from collections import defaultdict

    from xxhash import xxh3_64_hexdigest

    from rollcraft.formats.dpo import Candidate, DpoOptions, DpoReport, _Candidates, plan_pairs

    count, tasks = 500_000, 125_000
    keys = [f"prompt:{xxh3_64_hexdigest(str(i).encode())}" for i in range(tasks)]

    def rows() -> Iterator[tuple[str, float, str, tuple[str, int]]]:  # id and locator made per rollout
        for n in range(count):
            yield keys[n % tasks], (n // tasks) / 4, xxh3_64_hexdigest(n.to_bytes(8, "little")), ("in", n)

    def run(budget: int | None, traced: bool) -> tuple[float, int]:
        if traced:
            tracemalloc.start()
        start, pairs = time.perf_counter(), 0
        if budget is None:
            groups: dict[str, list[Candidate]] = defaultdict(list)
            for key, reward, rollout_id, locator in rows():
                groups[key].append(Candidate(reward, rollout_id, locator))
            held = tracemalloc.get_traced_memory()[0] if traced else 0
            if not traced:
                pairs = len(plan_pairs(groups, DpoOptions(), DpoReport()))
        else:
            table = _Candidates(budget=budget)
            for row in rows():
                table.add(*row)
            held = tracemalloc.get_traced_memory()[0] if traced else 0
            if not traced:
                pairs = len(table.plan(DpoOptions(), DpoReport()))
        tracemalloc.stop()
        return (time.perf_counter() - start, pairs) if not traced else (held / count, pairs)

    for label, budget in (("packed", 1 << 40), ("spilled", 4 << 20), ("lists", None)):
        seconds, pairs = run(budget, traced=False)
        held, _ = run(budget, traced=True)
        print(f"candidates {label:8} {seconds:6.2f} s  {held:4.0f} bytes a candidate  ({pairs} pairs)")


def compact() -> None:
    """Bytes an entry of :class:`IdSet` and :class:`FirstSeen` against a set and a dict."""
    import tracemalloc

    from xxhash import xxh3_64_hexdigest, xxh3_128_digest

    from rollcraft._compact import FirstSeen, IdSet

    count = 475_000

    def ids() -> Iterator[str]:  # made as the pass makes them, so a set or dict keeps them alive
        return (xxh3_64_hexdigest(n.to_bytes(8, "little")) for n in range(count))

    def keys() -> Iterator[bytes]:
        return (xxh3_128_digest(n.to_bytes(8, "little")) for n in range(count))

    def held(make: Callable[[], object]) -> float:
        tracemalloc.start()
        kept = make()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept
        return size / count

    def first_seen() -> FirstSeen:
        seen = FirstSeen()
        for key, rollout_id in zip(keys(), ids(), strict=True):
            seen.setdefault(key, rollout_id)
        return seen

    def plain_first_seen() -> dict[bytes, str]:
        seen: dict[bytes, str] = {}
        for key, rollout_id in zip(keys(), ids(), strict=True):
            seen.setdefault(key, rollout_id)
        return seen

    id_set, plain_set = held(lambda: IdSet(ids()).settled()), held(lambda: set(ids()))
    print(f"compact  IdSet {id_set:4.0f} B, set {plain_set:4.0f} B;", end=" ")
    print(f"FirstSeen {held(first_seen):4.0f} B, dict {held(plain_first_seen):4.0f} B (an entry)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join([*SHORTCUTS, *IN_PROCESS]), help="comma-separated names")
    parser.add_argument("--size", default="100MB", help="benchmark input size (100MB, 1GB, ...)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2:])
        return
    from benchmarks.run import parse_size

    size = parse_size(args.size)
    data = build(DATA / f"rollouts-{args.size}.jsonl", size)
    for name in args.only.split(","):
        if name == "candidates":
            candidates()
        elif name == "compact":
            compact()
        else:
            measure(name, data, args.repeat)
    print(f"(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
