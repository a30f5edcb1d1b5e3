"""The decisions file of a review: appended one whole line at a time, read back to resume.

Each decision is one ``os.write`` of one complete line to a file opened with ``O_APPEND``,
followed by ``fsync``: a crash, a killed server or a closed tab loses at most the decision being
made, and never tears an earlier line. A torn last line (power loss mid-write) is skipped on
reading, and the next append starts on a fresh line.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from rollcraft._io import write_failed

__all__ = ["DECISIONS", "Decision", "DecisionLog", "default_decisions_path"]

#: The decisions a reviewer can make.
DECISIONS = ("accept", "reject", "skip")


@dataclass(frozen=True, slots=True)
class Decision:
    """One reviewer decision about one rollout."""

    rollout_id: str
    decision: str
    note: str
    time: str
    reviewer: str | None = None

    def to_line(self) -> bytes:
        """The decision as one JSON line (keys in the documented order)."""
        data: dict[str, Any] = {"rollout_id": self.rollout_id, "decision": self.decision, "note": self.note}
        if self.reviewer is not None:
            data["reviewer"] = self.reviewer
        data["time"] = self.time
        return orjson.dumps(data) + b"\n"


def default_decisions_path(sample: str | Path) -> Path:
    """``sample.jsonl`` -> ``sample.decisions.jsonl`` beside it."""
    path = Path(sample)
    stem = path.name.split(".jsonl")[0] if ".jsonl" in path.name else path.stem
    return path.with_name(f"{stem}.decisions.jsonl")


def utc_now() -> str:
    """The current time as ISO-8601 UTC, to the second: ``2025-01-01T12:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class DecisionLog:
    """The decisions file: the latest decision per rollout in memory, every new one appended."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.latest: dict[str, Decision] = {}
        self.skipped_lines = 0
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_bytes().splitlines():
            decision = _parse(line)
            if decision is None:
                self.skipped_lines += bool(line.strip())
            else:
                self.latest[decision.rollout_id] = decision

    def append(self, decision: Decision) -> None:
        """Write ``decision`` as one line (one write, fsync) and remember it."""
        with self._lock:
            self._write(decision.to_line())
            self.latest[decision.rollout_id] = decision

    def _write(self, line: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_failed(self.path, exc) from None
        try:
            if _ends_torn(fd):
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _parse(line: bytes) -> Decision | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("decision") not in DECISIONS:
        return None
    if not isinstance(data.get("rollout_id"), str):
        return None
    reviewer = data.get("reviewer")
    return Decision(
        rollout_id=data["rollout_id"],
        decision=data["decision"],
        note=str(data.get("note") or ""),
        time=str(data.get("time") or ""),
        reviewer=reviewer if isinstance(reviewer, str) else None,
    )
