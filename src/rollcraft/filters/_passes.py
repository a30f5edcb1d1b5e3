"""Two passes over files (and stdin): :func:`rereadable` spools stdin, :func:`relabel` names it
``<stdin>`` again."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence

from rollcraft._records import Quarantined, Rollout


@contextlib.contextmanager
def rereadable(paths: Sequence[str], *, needed: bool = True) -> Iterator[list[str]]:
    """Paths that can be read twice: ``-`` (stdin) is spooled to a temporary file when ``needed``.

    Use :func:`relabel` on what is read so stdin lines still say ``<stdin>``.
    """
    if not needed or "-" not in paths:
        yield list(paths)
        return
    fd, spool = tempfile.mkstemp(prefix="rollcraft-stdin-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield [spool if p == "-" else p for p in paths]
    finally:
        with contextlib.suppress(OSError):
            os.unlink(spool)


def relabel(
    items: Iterable[Rollout | Quarantined], sources: Sequence[str], paths: Sequence[str]
) -> Iterator[Rollout | Quarantined]:
    """Name a spooled stdin ``<stdin>`` again (``sources`` from :func:`rereadable`, ``paths`` as given)."""
    spools = {s for s, p in zip(sources, paths, strict=True) if p == "-" and s != "-"}
    if not spools:
        return iter(items)  # nothing to rename: no generator step per item
    return (dataclasses.replace(item, source="<stdin>") if item.source in spools else item for item in items)
