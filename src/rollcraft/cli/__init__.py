"""The ``rollcraft`` command line: a thin Typer layer over the Python API.

Each command family lives in its own module of this package (``_format``, ``_curate``, ...) with a
``register(app)`` function, and
:func:`main` registers only the module of the command it is given (all of them for ``--help``),
while the ``rollcraft`` package imports its modules on first use: a command imports what it
needs and no more. Heavy imports (torch, transformers, ray) stay inside the commands that need
them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

import typer
from rich.markup import escape

from rollcraft._alloc import tune_process
from rollcraft._console import err
from rollcraft._errors import RollcraftError

__all__ = ["COMMANDS", "main", "register_commands"]

_app = typer.Typer(
    name="rollcraft",
    help="Turn agent rollouts (NeMo Gym JSONL) into SFT/DPO training data, train, and evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    """``--version``: handled while the options are parsed, before a command is required."""
    if value:
        from rollcraft import __version__

        print(f"rollcraft {__version__}")
        raise typer.Exit(0)


@_app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """rollcraft: rollouts in, training data out, and proof that training helped."""


#: Each command (or command group) and the module that registers it.
COMMANDS: dict[str, str] = {
    "inspect": "rollcraft.cli._data",
    "filter": "rollcraft.cli._curate",
    "sample": "rollcraft.cli._curate",
    "apply-review": "rollcraft.cli._curate",
    "balance": "rollcraft.cli._curate",
    "sft": "rollcraft.cli._format",
    "dpo": "rollcraft.cli._format",
    "kto": "rollcraft.cli._format",
    "validate": "rollcraft.cli._validate",
    "train": "rollcraft.cli._train",
    "evaluate": "rollcraft.cli._train",
    "demo": "rollcraft.cli._train",
    "run": "rollcraft.cli._pipeline",
    "versions": "rollcraft.cli._pipeline",
    "diff": "rollcraft.cli._pipeline",
    "review": "rollcraft.cli._review",
    "redact": "rollcraft.cli._review",
    "serve": "rollcraft.cli._serve",
    "curriculum": "rollcraft.cli._curriculum",
    "split": "rollcraft.cli._split",
}
_COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
_registered: set[str] = set()


def register_commands(args: list[str] | None = None) -> typer.Typer:
    """Register the module of the command named in ``args`` (the first word that is not an
    option), or every command module when there is none, or it is not a command (help, typos).

    One module is enough to run a command; importing only that one starts ``rollcraft run`` about
    60 ms sooner. ``tests/cli/test_cli.py`` checks :data:`COMMANDS` against what the modules
    register.
    """
    word = next((a for a in args or () if not a.startswith("-")), None)
    modules = [COMMANDS[word]] if word in COMMANDS else _COMMAND_MODULES
    for name in modules:
        if name in _registered:
            continue
        _registered.add(name)
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register: Callable[[typer.Typer], None] = module.register
        register(_app)
    return _app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole command line, for tests and tools that import it
        return register_commands()
    raise AttributeError(f"module 'rollcraft.cli' has no attribute {name!r}")


def main() -> None:
    """Entry point of the console script: user mistakes print one clear line, exit status 2."""
    from rollcraft._signals import install_cleanup_handlers

    tune_process()  # the command line's process is rollcraft's own: the library never tunes a caller's
    install_cleanup_handlers()
    try:
        app = register_commands(sys.argv[1:])
        from rollcraft.cli._common import route_reports

        route_reports(app, sys.argv[1:])  # data on stdout (an output "-"): reports on stderr
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RollcraftError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors (typer may vendor click: duck-typed)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "Abort":
            err.print("aborted")
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
