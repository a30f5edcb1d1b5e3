"""The public API is curated: pin ``__all__`` so nothing leaks or disappears by accident."""

from __future__ import annotations

import subprocess
import sys

import rollcraft


def test_all_is_pinned() -> None:
    assert set(rollcraft.__all__) >= {
        "read_rollouts",
        "Rollout",
        "Quarantined",
        "Conversation",
        "ReadOptions",
        "ReadReport",
        "inspect_paths",
        "RollcraftError",
        "InputError",
        "ConfigError",
        "OutputError",
        "DependencyError",
    }
    assert all(hasattr(rollcraft, name) for name in rollcraft.__all__)


def test_cli_start_does_not_import_heavy_libraries() -> None:
    heavy = "('torch', 'transformers', 'ray', 'datasets', 'trl')"
    code = f"import sys, rollcraft.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
