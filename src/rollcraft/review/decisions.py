"""Review decisions: the one :class:`Decision` type, the one reader, and the server's append log.

The review page posts a decision, the server (:class:`DecisionLog`) appends it to the decisions
file, and ``apply-review``, the pipeline's ``review:`` step and a restarted server read the file
back with :func:`read_decisions`: every one of them uses :class:`Decision` and :data:`DECISIONS`
from here, so a choice the page can make is a choice every reader takes.

Each decision is one ``os.write`` of one complete line to a file opened with ``O_APPEND``,
followed by ``fsync``: a crash, a killed server or a closed tab loses at most the decision being
made, and never tears an earlier line. A torn last line (a partial line without its newline) is
skipped with a warning on reading, and the server's next append replaces it.

>>> Decision.from_record({"rollout_id": "3f2a9c0d1b7e4a55", "decision": "skip"}).decided
False
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from rollcraft._errors import InputError
from rollcraft._io import write_failed

__all__ = ["DECISIONS", "Choice", "Decision", "DecisionLog", "default_decisions_path", "read_decisions"]

#: A reviewer's choice: ``skip`` is no decision (the rollout counts as undecided downstream).
Choice = Literal["accept", "reject", "skip"]
#: The choices a reviewer can make, in the page's order.
DECISIONS: tuple[Choice, ...] = get_args(Choice)

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Decision:
    """One reviewer decision about one rollout (``time`` and ``reviewer`` as the server saved them)."""

    rollout_id: str
    decision: Choice
    note: str = ""
    time: str = ""
    reviewer: str | None = None

    @property
    def decided(self) -> bool:
        """Whether this is a decision at all (``skip`` is not)."""
        return self.decision != "skip"

    @classmethod
    def from_record(cls, record: Any) -> Decision:
        """The decision in a JSON object; ``ValueError`` saying what is wrong with it.

        ``rollout_id`` (alias ``id``) and ``decision`` are required, ``note`` optional; ``time``
        and ``reviewer`` are kept when they are strings; other keys are ignored.
        """
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        rollout_id = record.get("rollout_id", record.get("id"))
        if not isinstance(rollout_id, str) or not rollout_id:
            raise ValueError('no "rollout_id" string')
        choice = record.get("decision")
        if choice not in DECISIONS:
            raise ValueError(f'"decision" must be {_choices()}, got {choice!r}')
        note = record.get("note") or ""
        if not isinstance(note, str):
            raise ValueError('"note" must be a string')
        time, reviewer = record.get("time"), record.get("reviewer")
        return cls(
            rollout_id,
            choice,
            note,
            time if isinstance(time, str) else "",
            reviewer if isinstance(reviewer, str) else None,
        )

    def to_line(self) -> bytes:
        """The decision as one JSON line (keys in the documented order)."""
        data: dict[str, Any] = {"rollout_id": self.rollout_id, "decision": self.decision, "note": self.note}
        if self.reviewer is not None:
            data["reviewer"] = self.reviewer
        data["time"] = self.time
        return orjson.dumps(data) + b"\n"


def _choices() -> str:
    quoted = [f'"{c}"' for c in DECISIONS]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def default_decisions_path(sample: str | Path) -> Path:
    """``sample.jsonl`` -> ``sample.decisions.jsonl`` beside it."""
    path = Path(sample)
    stem = path.name.split(".jsonl")[0] if ".jsonl" in path.name else path.stem
    return path.with_name(f"{stem}.decisions.jsonl")


def utc_now() -> str:
    """The current time as ISO-8601 UTC, to the second: ``2025-01-01T12:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def warn_on_stderr(message: str) -> None:
    """Print ``warning: message`` on stderr (the default of :func:`read_decisions`)."""
    from rich.markup import escape

    from rollcraft._console import err

    err.print(f"[yellow]warning:[/] {escape(message)}", markup=True, highlight=False)


def read_decisions(path: str | Path, *, warn: Warn | None = None) -> dict[str, Decision]:
    """Read a decisions file: the latest :class:`Decision` per rollout id.

    One JSON object a line (see :meth:`Decision.from_record`); empty lines are skipped and a
    later line for the same id wins. A malformed line is an :class:`InputError` naming the file
    and line, except a torn last line (no newline, not a decision: a server killed mid-write),
    which is skipped and reported through ``warn`` (default: a warning on stderr).

    >>> read_decisions("decisions.jsonl")  # doctest: +SKIP
    {'3f2a...': Decision(rollout_id='3f2a...', decision='reject', note='wrong tool', ...)}
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), path=name) from None
    *lines, tail = data.split(b"\n")
    decisions: dict[str, Decision] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip():
            decision = _parse(line, name, number)
            decisions[decision.rollout_id] = decision
    if tail.strip():
        last = _parse_tail(tail, name, len(lines) + 1, warn or warn_on_stderr)
        if last is not None:
            decisions[last.rollout_id] = last
    return decisions


def _parse(line: bytes, path: str, number: int) -> Decision:
    try:
        return Decision.from_record(orjson.loads(line))
    except orjson.JSONDecodeError:
        message = "not valid JSON"
    except ValueError as exc:
        message = str(exc)
    raise InputError(f"bad decision: {message}", path=path, line=number)


def _parse_tail(tail: bytes, path: str, number: int, warn: Warn) -> Decision | None:
    """The last line when it has no newline: a decision, or torn (``None``, with a warning)."""
    try:
        return _parse(tail, path, number)
    except InputError:
        warn(f"{path}:{number}: skipped a torn last line (a partial write without its newline)")
        return None


class DecisionLog:
    """The server's decisions file: the latest decision per rollout, every new one appended.

    Opening it reads the file with :func:`read_decisions` and checks that it can be written
    (an :class:`OutputError` now, rather than a failed save at the first decision).
    """

    def __init__(self, path: str | Path, *, warn: Warn | None = None) -> None:
        self.path = Path(path)
        self.torn_lines = 0
        self._lock = threading.Lock()
        self.latest: dict[str, Decision] = {}
        self._check_writable()
        if self.path.exists():
            self.latest = read_decisions(self.path, warn=self._torn(warn or warn_on_stderr))

    def _torn(self, warn: Warn) -> Warn:
        def counted(message: str) -> None:
            self.torn_lines += 1
            warn(message + "; the next decision replaces it")

        return counted

    def _check_writable(self) -> None:
        """Open the file for appending (or create and remove a file beside it) without writing."""
        try:
            if self.path.exists() or self.path.is_symlink():
                os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND))
            else:
                if self.path.parent.exists() and not self.path.parent.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=self.path.parent, prefix=".rollcraft-check-"):
                    pass
        except OSError as exc:
            raise write_failed(self.path, exc) from None

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
            os.write(fd, _after_tail(fd) + line)
            os.fsync(fd)
        except OSError as exc:
            raise write_failed(self.path, exc) from None
        finally:
            os.close(fd)


def _after_tail(fd: int) -> bytes:
    """Make the file end on a whole line before an append: what to write first.

    A last line without its newline that is a decision gets its newline; a torn one (not a
    decision) is cut off, so that it never becomes a malformed line in the middle of the file.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    data = os.pread(fd, size, 0)
    start = data.rfind(b"\n") + 1
    try:
        Decision.from_record(orjson.loads(data[start:]))
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        os.ftruncate(fd, start)
        return b""
    return b"\n"
