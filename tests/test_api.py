"""The public API is curated: pin ``__all__`` so nothing leaks or disappears by accident."""

from __future__ import annotations

import subprocess
import sys

import rollcraft


def test_all_is_pinned() -> None:
    assert sorted(rollcraft.__all__) == [
        "Comparison",
        "ConfigError",
        "Conversation",
        "DEFAULT_DROP_FLAGS",
        "Decision",
        "DependencyError",
        "DpoOptions",
        "DpoReport",
        "Drop",
        "FLAGS",
        "FileSummary",
        "FilterConfig",
        "FilterReport",
        "Finding",
        "InputError",
        "InspectReport",
        "Message",
        "OutputError",
        "QUARANTINE_REASONS",
        "Quarantined",
        "ReadOptions",
        "ReadReport",
        "RollcraftError",
        "Rollout",
        "Score",
        "SftReport",
        "Strata",
        "TaskStats",
        "Tool",
        "ValidationReport",
        "__version__",
        "apply_review",
        "atomic_writer",
        "balance",
        "build_steps",
        "compare",
        "diff_versions",
        "dpo_rows",
        "evaluate_files",
        "expand_inputs",
        "filter_paths",
        "inspect_paths",
        "judge",
        "list_versions",
        "load_pipeline_config",
        "parse_line",
        "read_decisions",
        "read_rollouts",
        "run_filters",
        "run_pipeline",
        "sample_for_review",
        "sft_row",
        "sft_rows",
        "validate_file",
    ]
    assert all(hasattr(rollcraft, name) for name in rollcraft.__all__)


def test_cli_start_does_not_import_heavy_libraries() -> None:
    heavy = "('torch', 'transformers', 'ray', 'datasets', 'trl')"
    code = f"import sys, rollcraft.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_exported_names_are_imported_on_first_use() -> None:
    """``rollcraft`` imports its modules lazily: its table names the modules of the names that
    the type checker's imports (``if TYPE_CHECKING:``) take from them, and nothing else."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(rollcraft.__file__).read_text())
    guard = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported = {
        node.module: tuple(alias.name for alias in node.names)
        for node in guard.body
        if isinstance(node, ast.ImportFrom)
    }
    assert imported == rollcraft._EXPORTS
    assert sorted(n for names in imported.values() for n in names) == sorted(
        set(rollcraft.__all__) - {"__version__"}
    )
    code = (
        "import sys, rollcraft; before = 'rollcraft.validate' in sys.modules; rollcraft.validate_file;"
        "print(before, 'rollcraft.validate' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
    assert "validate_file" in dir(rollcraft)
