"""The parse floor: read a JSONL file and decode every line with the fastest JSON decoder installed.

``python benchmarks/floor.py FILE``; prints the decoder used and the number of lines.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def decoder() -> tuple[str, Callable[[bytes], Any]]:
    """orjson (rollcraft's decoder, the fastest full decoder installed here)."""
    import orjson

    return "orjson", orjson.loads


def main(path: str) -> None:
    """Decode every line; count them so nothing is optimized away."""
    name, loads = decoder()
    count = 0
    with open(path, "rb", buffering=1 << 20) as handle:
        for line in handle:
            try:
                loads(line)
            except ValueError:
                pass
            count += 1
    print(f"{name}: {count} lines")


if __name__ == "__main__":
    main(sys.argv[1])
