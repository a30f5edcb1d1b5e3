"""The ``rollcraft`` command line: a thin Typer layer over the Python API.

Each command family lives in its own ``_cli_*`` module with a ``register(app)`` function, so
the data commands start fast and heavy imports (torch, transformers, ray) stay inside the
commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

import typer
from rich.markup import escape

from rollcraft._alloc import tune_allocator
from rollcraft._console import err
from rollcraft._errors import RollcraftError

__all__ = ["app", "main"]

app = typer.Typer(
    name="rollcraft",
    help="Turn agent rollouts (NeMo Gym JSONL) into SFT/DPO training data, train, and evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """rollcraft: rollouts in, training data out, and proof that training helped."""
    if version:
        from rollcraft import __version__

        print(f"rollcraft {__version__}")
        raise typer.Exit(0)


_COMMAND_MODULES = (
    "rollcraft._cli_data",
    "rollcraft._cli_curate",
    "rollcraft._cli_format",
    "rollcraft._cli_validate",
    "rollcraft._cli_train",
    "rollcraft._cli_pipeline",
    "rollcraft._cli_review",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register: Callable[[typer.Typer], None] = module.register
        register(app)


_register_all()


def main() -> None:
    """Entry point of the console script: user mistakes print one clear line, exit status 2."""
    from rollcraft._signals import install_cleanup_handlers

    tune_allocator()
    install_cleanup_handlers()
    try:
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
