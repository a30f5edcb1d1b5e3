"""The command line's entry point: each command loads only its own module; ``--version``."""

from __future__ import annotations

import subprocess
import sys

import typer

from rollcraft import cli


def test_commands_table_names_what_each_module_registers() -> None:
    from importlib import import_module

    for module in set(cli.COMMANDS.values()):
        app = typer.Typer()
        import_module(module).register(app)
        names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
        assert names == {name for name, owner in cli.COMMANDS.items() if owner == module}, module


def test_a_command_imports_only_its_own_module() -> None:
    code = (
        "import sys; from rollcraft.cli import register_commands; register_commands(['run', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('rollcraft._cli_')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['rollcraft._cli_common', 'rollcraft._cli_pipeline']"


def test_help_and_unknown_words_get_every_command() -> None:
    for args in ([], ["--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True
        )
        assert "run" in result.stdout and "validate" in result.stdout and "train" in result.stdout
    typo = subprocess.run([sys.executable, "-m", "rollcraft.cli", "vaildate"], capture_output=True, text=True)
    assert typo.returncode == 2 and "Did you mean 'validate'" in typo.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("rollcraft ")
