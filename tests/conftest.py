"""Shared fixtures: where the real NeMo Gym files and the bundled examples are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.real_data import real_dir as _find_real_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
#: NeMo Gym's real example rollouts: ``../shared/data/nemo-gym-rollouts`` when it is there, else
#: the same files taken from the ``nemo-gym`` wheel into ``.cache/`` (see ``benchmarks/real_data.py``).
REAL_DIR = _find_real_dir()
EXAMPLES_DIR = ROOT / "examples" / "rollouts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def real_files() -> list[Path]:
    """The real rollout files (the suite fails loudly if they are missing)."""
    files = sorted(REAL_DIR.glob("*.jsonl"))
    if not files:
        raise RuntimeError(f"the real rollout files are missing: {REAL_DIR}")
    return files


@pytest.fixture(scope="session")
def real_dir() -> Path:
    real_files()
    return REAL_DIR


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES_DIR
