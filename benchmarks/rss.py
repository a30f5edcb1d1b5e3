"""Peak resident memory and CPU time of a command and of every process it starts.

``ru_maxrss`` from ``wait4`` is unreliable for a child of a large parent: Linux carries the
high-water mark of the forking parent across ``exec``. This polls ``VmHWM`` (the peak of each
process's own memory image) from ``/proc`` instead, for the process and all its descendants.
CPU time (user + system) is the growth of ``RUSAGE_CHILDREN`` over the run: the commands and
every descendant they waited for (a pool's workers, a hashing child).
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Peak:
    """Wall seconds, the largest single-process peak and the sum of every process's peak (MB),
    and the CPU seconds (user + system) of every process."""

    seconds: float
    max_mb: float
    total_mb: float
    cpu_seconds: float = 0.0


def _hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def run_measured(commands: list[list[str]], *, interval: float = 0.02) -> tuple[Peak, list[int]]:
    """Start the commands at once, poll their memory until all end; (peak, exit codes)."""
    logs = [tempfile.TemporaryFile() for _ in commands]  # a pipe nobody reads would fill and block
    cpu_before = _children_cpu()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=log)
        for c, log in zip(commands, logs, strict=True)
    ]
    peaks: dict[int, int] = {}
    while any(p.poll() is None for p in procs):
        for proc in procs:
            for pid in _descendants(proc.pid):
                hwm = _hwm_kb(pid)
                if hwm is not None:
                    peaks[pid] = max(peaks.get(pid, 0), hwm)
        time.sleep(interval)
    seconds = time.perf_counter() - started
    codes = [p.wait() for p in procs]
    cpu = _children_cpu() - cpu_before
    for code, log in zip(codes, logs, strict=True):
        if code != 0:
            log.seek(0)
            print(log.read().decode(errors="replace")[-3000:])
        log.close()
    values = list(peaks.values()) or [0]
    return Peak(seconds, max(values) / 1024, sum(values) / 1024, cpu), codes


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
