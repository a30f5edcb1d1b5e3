"""Review and redaction commands: ``review`` (a local web page) and ``redact`` (secrets and PII).

starlette and uvicorn (the ``review`` extra) are imported inside ``review`` only, so the rest of
the command line starts fast.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape

from rollcraft._console import err, out
from rollcraft._errors import DependencyError, InputError
from rollcraft._io import atomic_writer, refuse_overwriting_inputs
from rollcraft._signals import install_cleanup_handlers
from rollcraft.cli._common import PiiOpt, pii_kinds, print_read, quarantine_lines, read_summary_line, table
from rollcraft.filters import FilterReport
from rollcraft.read._inspect import require_rollouts
from rollcraft.read._reader import ReadReport, read_rollouts

if TYPE_CHECKING:
    from rollcraft.redact import RedactionReport

__all__ = ["register"]

HOST = "127.0.0.1"


def review_command(
    sample: Annotated[Path, typer.Argument(help="The sample to review (a rollout JSONL file).")],
    decisions: Annotated[
        Path | None,
        typer.Option("--decisions", help="Decisions file to append to (default: SAMPLE.decisions.jsonl)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="Name stored with each decision.")
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL; do not open a browser.")
    ] = False,
) -> None:
    """Review a sample in the browser: accept / reject / skip each rollout, with a note.

    Serves a local page on 127.0.0.1 with a random session token in its URL (requests from
    other origins are refused). Every decision is appended to the decisions file at once, so a
    restart resumes where the reviewer stopped; `rollcraft apply-review` reads that file. A
    decisions file that cannot be written is an error before the server starts.
    """
    try:
        import uvicorn

        from rollcraft.review.decisions import default_decisions_path
        from rollcraft.review.server import create_app, load_sample, new_token
    except ModuleNotFoundError as exc:
        raise DependencyError(f"rollcraft review needs {exc.name}: pip install 'rollcraft[review]'") from None

    if not sample.is_file():
        raise InputError("no such file", path=str(sample))
    decisions_path = decisions or default_decisions_path(sample)
    loaded = load_sample(sample)
    print_read(loaded.read)  # a file of no rollout is exit 2 here, naming what it looks like
    token = new_token()
    sock = _bind(port)
    bound = sock.getsockname()[1]
    try:
        app = create_app(loaded, decisions_path, token, port=bound, reviewer=reviewer)
    except BaseException:
        sock.close()
        raise
    url = f"http://{HOST}:{bound}/?token={token}"
    out.print(
        f"Reviewing [bold]{escape(str(sample))}[/]; decisions go to [bold]{escape(str(decisions_path))}[/]"
    )
    out.print(f"Open {url}", soft_wrap=True, highlight=False)
    out.print("Press Ctrl+C to stop (every decision is already saved).")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise typer.BadParameter(
            f"cannot listen on {HOST}:{port} ({exc.strerror})", param_hint="--port"
        ) from None
    sock.listen(128)
    return sock


def redact_command(
    paths: Annotated[list[str], typer.Argument(help="Rollout files, folders, globs, or - for stdin.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output JSONL (- for stdout).")],
    on_secret: Annotated[
        str,
        typer.Option(
            "--on-secret", help="replace: placeholders like <REDACTED:kind>; drop: leave the rollout out."
        ),
    ] = "replace",
    allowlist: Annotated[
        Path | None,
        typer.Option(
            "--allowlist", help="File of strings that are not secrets (one a line; re: for a regex)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    redact_pii: PiiOpt = None,
) -> None:
    """Replace secrets and personal data (API keys, tokens, private keys, passwords, emails).

    Writes every rollout, redacted (only the strings that held a secret change; clean records stay
    byte-identical) or, with --on-secret drop, leaves out each rollout that holds a secret.
    Quarantined lines are counted and left out.
    """
    from rollcraft.redact import secrets_step
    from rollcraft.steps import WriteKept, drain, run_steps, with_redaction

    install_cleanup_handlers()
    if on_secret not in ("replace", "drop"):
        raise typer.BadParameter("must be replace or drop", param_hint="--on-secret")
    refuse_overwriting_inputs(paths, [output])
    step = secrets_step(on_secret, allowlist=allowlist, pii=pii_kinds(redact_pii))
    counts = FilterReport()
    read = counts.read
    with atomic_writer(output) as handle:
        drain(run_steps(read_rollouts(paths), with_redaction(step, [], [WriteKept(handle)], counts), counts))
        require_rollouts(read)  # before the output is kept (and whatever form the report takes)
    _print_redaction(step.report, read, output, as_json=as_json)


def _print_redaction(report: RedactionReport, read: ReadReport, output: str, *, as_json: bool) -> None:
    console = err if output == "-" else out
    if as_json:
        data = {
            "read": {"lines": read.lines, "rollouts": read.rollouts, "quarantined": dict(read.quarantined)}
        }
        console.print_json(orjson.dumps({**data, "redaction": report.to_dict()}).decode())
        return
    kinds = table("Secrets found", ["kind", "count"])
    for kind, n in sorted(report.kinds.items()):
        kinds.add_row(kind, str(n))
    if not report.kinds:
        kinds.add_row("(none)", "0")
    console.print(kinds)
    console.print(read_summary_line(read))
    for line in quarantine_lines(read):
        console.print(line, markup=False)
    kept = report.rollouts - report.dropped
    console.print(
        f"Redaction: {report.rollouts} rollouts: {report.redacted} redacted, {report.dropped} dropped, "
        f"{kept} written to {escape(output)}"
    )


def register(app: typer.Typer) -> None:
    """Add ``review`` and ``redact`` to ``app``."""
    app.command("review")(review_command)
    app.command("redact")(redact_command)
