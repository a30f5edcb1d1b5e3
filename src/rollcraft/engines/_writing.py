"""The local engine's outputs: the sinks (digest writers, each hashing what it writes, on a
background thread for a single-process run), the scratch files of DPO's candidates, and which
outputs a run writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rollcraft._digest import DigestWriter
from rollcraft._pipeline_config import LoadedConfig, row_sections
from rollcraft.engines._base import Digests
from rollcraft.engines._plan import Sinks
from rollcraft.formats.dpo import PairCollector
from rollcraft.steps import TellingWriter, Writer

#: Scratch file in the output folder: the trl rows of the DPO candidates that get no SFT row.
_SIDES = ".dpo-sides.jsonl"
#: Scratch file in the output folder: the shards' redacted lines of the DPO candidates that get
#: no SFT row (``Sinks.lines``), where the pairs are read back from.
LINES_SCRATCH = ".dpo-lines.jsonl"


@contextlib.contextmanager
def _sides(
    loaded: LoadedConfig, folder: Path, collector: PairCollector | None
) -> Iterator[DigestWriter | None]:
    """Where a single-process run writing trl pairs (string arguments) keeps the trl rows of the
    candidates that get no SFT row (all of them when it writes no SFT rows): the pairs are then
    spliced from rows instead of re-reading and re-normalizing input lines
    (:meth:`PairCollector.keep_sides`). On disk in the output folder until the pairs are
    written: at most about a third of the input's size. None for other runs."""
    if collector is None or not collector.reads_rows:
        yield None
        return
    with DigestWriter(folder / _SIDES, background=True, digest=False) as writer:
        collector.keep_sides(writer.path)
        yield writer


def _same_trl(loaded: LoadedConfig) -> bool:
    """Whether SFT rows and DPO pairs are both trl with string arguments (pairs may reuse rows)."""
    sft, dpo = loaded.config.sft, loaded.config.dpo
    if sft is None or dpo is None:
        return False
    trl = sft.format == dpo.format == "trl" and sft.expand == "none" and loaded.template is None
    return trl and sft.arguments == "string" and dpo.options().arguments == "string"


def _remember(digests: Digests, name: str, writer: DigestWriter) -> None:
    digests[name] = (writer.size, writer.sha256)


@contextlib.contextmanager
def _sinks(
    loaded: LoadedConfig, folder: Path, digests: Digests, *, background: bool, sharded: bool
) -> Iterator[Sinks]:
    config = loaded.config
    with contextlib.ExitStack() as stack:

        def sink(name: str) -> DigestWriter:
            writer = DigestWriter(folder / name, background=background)
            stack.callback(_remember, digests, name, writer)  # runs after the writer is closed
            return stack.enter_context(writer)

        lines = None
        if sharded and rewrites_for_dpo(loaded):
            lines = stack.enter_context(
                DigestWriter(folder / LINES_SCRATCH, background=background, digest=False)
            )
        rows: dict[str, Writer] = {}
        ids: dict[str, Writer] = {}
        for name, section in row_sections(config):
            rows[name], ids[name] = sink(section.output()), sink(f"{name}_ids.txt")
        yield Sinks(
            rows=rows,
            ids=ids,
            kept=sink("filtered.jsonl") if config.write_filtered else None,
            rejects=sink("rejects.jsonl") if config.write_rejects else None,
            lines=lines,
        )


def output_parts(loaded: LoadedConfig) -> list[str]:
    """The outputs a pass over a shard writes, in the order the parent copies them: each row
    format's rows and ids (``rows.<name>``, ``ids.<name>``), then ``kept`` and ``rejects``."""
    config = loaded.config
    parts = [f"{kind}.{name}" for name, _ in row_sections(config) for kind in ("rows", "ids")]
    return parts + ["kept"] * config.write_filtered + ["rejects"] * config.write_rejects


def sinks_of(parts: dict[str, Writer], lines: TellingWriter | None = None) -> Sinks:
    """The :class:`Sinks` of a shard's pass over ``parts`` (by :func:`output_parts`' names)."""
    rows = {kind[5:]: sink for kind, sink in parts.items() if kind.startswith("rows.")}
    ids = {kind[4:]: sink for kind, sink in parts.items() if kind.startswith("ids.")}
    return Sinks(rows=rows, ids=ids, kept=parts.get("kept"), rejects=parts.get("rejects"), lines=lines)


def parts_of(sinks: Sinks) -> dict[str, Writer]:
    """:func:`sinks_of` the other way: the sinks by part name, in :func:`output_parts`' order."""
    parts: dict[str, Writer] = {}
    for name, writer in sinks.rows.items():
        parts[f"rows.{name}"] = writer
        parts[f"ids.{name}"] = sinks.ids[name]
    for kind, sink in (("kept", sinks.kept), ("rejects", sinks.rejects)):
        if sink is not None:
            parts[kind] = sink
    return parts


def rewrites_for_dpo(loaded: LoadedConfig) -> bool:
    """Whether redaction rewrites lines that DPO pairs must hold (replace mode with DPO)."""
    config = loaded.config
    return config.dpo is not None and config.redact is not None and config.redact.on_secret == "replace"
