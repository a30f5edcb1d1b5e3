"""The ``rollcraft`` command line: a thin Typer layer over the Python API.

Each command family lives in its own ``_cli_*`` module with a ``register(app)`` function, and
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
    "inspect": "rollcraft._cli_data",
    "filter": "rollcraft._cli_curate",
    "sample": "rollcraft._cli_curate",
    "apply-review": "rollcraft._cli_curate",
    "balance": "rollcraft._cli_curate",
    "sft": "rollcraft._cli_format",
    "dpo": "rollcraft._cli_format",
    "kto": "rollcraft._cli_format",
    "validate": "rollcraft._cli_validate",
    "train": "rollcraft._cli_train",
    "evaluate": "rollcraft._cli_train",
    "demo": "rollcraft._cli_train",
    "run": "rollcraft._cli_pipeline",
    "versions": "rollcraft._cli_pipeline",
    "diff": "rollcraft._cli_pipeline",
    "review": "rollcraft._cli_review",
    "redact": "rollcraft._cli_review",
    "serve": "rollcraft._cli_serve",
    "curriculum": "rollcraft._cli_curriculum",
    "split": "rollcraft._cli_split",
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
        from rollcraft._cli_common import route_reports

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
