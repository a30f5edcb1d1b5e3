"""What redaction's one-scan prefilter buys: ``python benchmarks/prefilter.py [FILE] [--repeat 5]``.

Redacts every line of ``FILE`` (default: the benchmark's 100 MB input, built if missing) with
``Redactor()`` (every hint and gate in one Hyperscan scan of a line) and with
``Redactor(prefilter=False)`` (a search each), alternating them ``--repeat`` times in one
process; prints the median CPU seconds of each, and checks that both give the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.make_data import build  # noqa: E402
from rollcraft.redact import Redactor  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", type=Path, help="a JSON lines file (default: the 100 MB input)")
    parser.add_argument("--repeat", type=int, default=5, help="alternated rounds (default 5)")
    args = parser.parse_args(argv)
    path = args.file or build(HERE / "data" / "rollouts-100MB.jsonl", 100 * 10**6)
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    variants = {"one scan": Redactor(), "a search each": Redactor(prefilter=False)}
    if variants["one scan"]._line_scan is None:
        raise SystemExit("hyperscan is not installed: nothing to compare")
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, list[bytes]] = {}
    for _ in range(args.repeat):
        for name, redactor in variants.items():
            start = time.process_time()
            out = [redactor.redact_line(line)[0] for line in lines]
            seconds[name].append(time.process_time() - start)
            outputs[name] = out
    same = outputs["one scan"] == outputs["a search each"]
    mb = sum(map(len, lines)) / 1e6
    print(f"{path.name}: {len(lines)} lines, {mb:.0f} MB; medians of {args.repeat} alternated rounds")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:>14}: {median:6.2f} CPU s  ({median / mb * 1000:.1f} s per GB)")
    ratio = statistics.median(seconds["a search each"]) / statistics.median(seconds["one scan"])
    print(f"  one scan is {ratio:.2f}x faster; same bytes: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
