"""Build a large, realistic benchmark input from the shared real rollout files.

Every real NeMo Gym rollout line is a template. Task ``t`` copies template ``t % T`` with its
prompt made unique (a ``[task t]`` suffix on the first prompt text, and on ``task_id`` when the
record has one), so the file holds many distinct tasks. Each task gets ``rollouts`` repeats with
seeded, varied rewards; repeat ``r`` of every task is written in round ``r`` (tasks shuffled per
round), so the repeats of a task are spread through the whole file, as NeMo Gym writes them in
completion order. About 1% of lines are the real files' odd lines (materialized inputs, metric
rows, ...), which rollcraft quarantines.

The tutorial's flattened shape (top-level ``output`` chat messages, ``reward``, ``success``,
``task_id``, ``metadata.task_type``, ``responses_create_params.input``) of the same records is
written next to it for the tutorial's pipeline.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.real_data import real_dir
from rollcraft._io import RawLine, expand_inputs, iter_lines
from rollcraft._records import Rollout
from rollcraft.read._reader import ReadOptions, parse_line

REWARDS = (0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0)


#: The most bytes of template lines kept: a larger source (``--source`` a collection of many GB)
#: gives a seeded sample of its lines, so building an input never holds the source in memory.
MAX_TEMPLATE_BYTES = 128 * 10**6


@dataclass(frozen=True, slots=True)
class Templates:
    """The real rollouts (their lines, decoded anew for each copy) and the real odd lines."""

    rollouts: list[bytes]
    #: The size of each rollout as orjson writes it back (what a copy of it adds to the input).
    sizes: list[int]
    odd: list[bytes]


def load_templates(
    real: Path | list[Path] | None = None, *, max_bytes: int = MAX_TEMPLATE_BYTES
) -> Templates:
    """Every line of ``real`` (files, folders), or a seeded sample of them when the files hold
    more than ``max_bytes``: rollouts and everything else (odd lines), as bytes.

    The share of lines kept starts at 0.9 ``max_bytes`` over the files' sizes; when the lines kept
    still outgrow ``max_bytes`` (compressed files hold more than their size), half of them are
    dropped, at random, and the share halves."""
    real = real_dir() if real is None else real  # ../shared, else NeMo Gym's wheel (real_data.py)
    sources = [str(p) for p in (real if isinstance(real, list) else [real])]
    files = expand_inputs(sources)
    total = sum(os.path.getsize(f) for f in files if f != "-")
    # 0.9: room for chance, which would otherwise overshoot and halve the sample half the time
    share, rng = (0.9 * max_bytes / total if total > max_bytes else 1.0), random.Random(0)
    kept: list[tuple[bytes, int | None]] = []  # each line, and its written size when a rollout
    size = 0
    for raw in iter_lines(files):
        if share < 1.0 and rng.random() >= share:
            continue
        item = parse_line(raw, ReadOptions())
        if isinstance(item, Rollout) and item.shape == "nemo-gym":
            kept.append((raw.data, len(orjson.dumps(item.record))))
        elif raw.data.strip():
            kept.append((raw.data, None))
        else:
            continue
        size += len(raw.data)
        while size > max_bytes:
            kept = [entry for entry in kept if rng.random() < 0.5]
            share, size = share / 2, sum(len(line) for line, _ in kept)
    rollouts = [(line, written) for line, written in kept if written is not None]
    if not rollouts:
        raise SystemExit(f"error: no NeMo Gym rollouts found in {', '.join(sources)}")
    odd = [line for line, written in kept if written is None]
    return Templates([line for line, _ in rollouts], [written for _, written in rollouts], odd)


def _mark_prompt(record: dict[str, Any], tag: str) -> None:
    params = record["responses_create_params"]
    value = params.get("input")
    if isinstance(value, str) or not value:
        params["input"] = f"{value or ''} {tag}"
        return
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("content"), str):
            item["content"] = f"{item['content']} {tag}"
            return
        if isinstance(item, dict) and isinstance(item.get("content"), list):
            for part in item["content"]:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = f"{part['text']} {tag}"
                    return
    value.insert(0, {"role": "user", "content": tag})


def _mark_completion(record: dict[str, Any], repeat: int) -> None:
    """Make repeat ``repeat`` answer differently: its last output text gets a suffix."""
    response = record.get("response")
    if not repeat or not isinstance(response, dict):
        return
    output = response.get("output")
    if not isinstance(output, list) or not output:
        return
    items = list(output)
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if isinstance(item, dict) and isinstance(item.get("content"), list):
            parts = [dict(p) if isinstance(p, dict) else p for p in item["content"]]
            for part in parts:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = f"{part['text']} (attempt {repeat})"
                    items[index] = {**item, "content": parts}
                    record["response"] = {**response, "output": items}
                    return


def _reward(task: int, repeat: int) -> float:
    digest = hashlib.blake2b(f"{task}/{repeat}".encode(), digest_size=4).digest()
    return REWARDS[int.from_bytes(digest, "big") % len(REWARDS)]


def make_record(templates: Templates, task: int, repeat: int) -> dict[str, Any]:
    """Repeat ``repeat`` of task ``task``: a real rollout with a unique prompt and a seeded reward."""
    record: dict[str, Any] = orjson.loads(templates.rollouts[task % len(templates.rollouts)])
    tag = f"[task {task}]"
    _mark_prompt(record, tag)
    _mark_completion(record, repeat)
    if "task_id" in record:
        record["task_id"] = f"{record['task_id']}-{task}"
    record["_ng_task_index"] = task
    record["_ng_rollout_index"] = repeat
    record["reward"] = _reward(task, repeat)
    return record


def _lines(templates: Templates, tasks: int, rollouts: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for repeat in range(rollouts):
        order = list(range(tasks))
        rng.shuffle(order)
        for n, task in enumerate(order):
            if templates.odd and (n * 97 + repeat) % 100 == 0:
                yield templates.odd[(n + repeat) % len(templates.odd)]
            yield orjson.dumps(make_record(templates, task, repeat))


def build(
    path: Path, size: int, *, rollouts: int = 4, seed: int = 0, source: list[Path] | None = None
) -> Path:
    """Write about ``size`` bytes of NeMo Gym rollouts to ``path`` (kept when it exists).

    ``source``: the rollout files or folders to use as templates (default: NeMo Gym's real example rollouts).
    """
    if path.exists():
        return path
    templates = load_templates(source)
    mean = sum(templates.sizes) / len(templates.sizes)
    tasks = max(1, round(size / (mean * rollouts)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb", buffering=1 << 20) as out:
        for line in _lines(templates, tasks, rollouts, seed):
            out.write(line + b"\n")
    os.replace(tmp, path)
    return path


def flatten_line(data: bytes) -> bytes | None:
    """The tutorial's flattened shape of one NeMo Gym line (None for lines that are not rollouts).

    The same record with ``response.output`` (the Responses items) lifted to a top-level
    ``output``, as the tutorial's code reads it, and everything else kept (request, tools,
    metadata, reward...), so both pipelines read the same data. Only what the tutorial's code
    needs to run at all is added: ``success`` and ``task_id`` when missing, and a string ``input``
    as a one-message list (its ``input + output`` fails on a string).
    """
    item = parse_line(RawLine("", 0, 0, data), ReadOptions())
    if not isinstance(item, Rollout) or item.shape != "nemo-gym":
        return None
    record = orjson.loads(data)
    output = record.pop("response").get("output")
    if not isinstance(output, list) or any(isinstance(step, list) for step in output):
        return None
    params = record["responses_create_params"]
    if not isinstance(params.get("input"), list):
        params["input"] = [{"role": "user", "content": str(params.get("input") or "")}]
    record["output"] = output
    record.setdefault("success", item.success)
    record.setdefault("task_id", item.task_key)
    return orjson.dumps(record)


def build_flat(source: Path, path: Path) -> Path:
    """The flattened-shape copy of ``source`` (kept when it exists)."""
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with open(source, "rb") as lines, open(tmp, "wb", buffering=1 << 20) as out:
        for line in lines:
            flat = flatten_line(line.rstrip(b"\n"))
            if flat is not None:
                out.write(flat + b"\n")
    os.replace(tmp, path)
    return path
