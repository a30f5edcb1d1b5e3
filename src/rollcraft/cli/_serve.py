"""``rollcraft serve``: an OpenAI-compatible server over a local model (``docs/serve.md``).

torch, transformers, starlette and uvicorn (the ``serve`` extra) are imported inside the command.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rollcraft._console import err, out
from rollcraft._errors import ConfigError, DependencyError

__all__ = ["register"]


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve {host!r} ({exc.strerror})", key="--host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})", key="--port") from None
    sock.listen(128)
    return sock


def serve_command(
    model_dir: Annotated[
        Path, typer.Argument(help="A Hugging Face model folder (config.json, weights, tokenizer).")
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (the loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.", min=0, max=65535)] = 8000,
    model_name: Annotated[
        str | None,
        typer.Option("--model-name", help="Name in /v1/models and responses (default: the folder's)."),
    ] = None,
) -> None:
    """Serve a local model with the OpenAI API: /v1/responses, /v1/chat/completions, /v1/models.

    Enough for NeMo Gym's openai_model and vllm_model servers and for the openai client.
    Waiting requests are generated together in batches; streaming, images and structured output
    are refused with a 400 that says so. Tool calls are parsed from <tool_call>{json}</tool_call>
    (Hermes/Qwen and the tiny template's format).
    """
    try:
        import uvicorn

        from rollcraft.serve import LOOPBACK_NAMES, create_app, load_engine
    except ModuleNotFoundError as exc:
        raise DependencyError(f"rollcraft serve needs {exc.name}: pip install 'rollcraft[serve]'") from None

    sock = _bind(host, port)  # a port in use fails before the model loads
    try:
        engine = load_engine(model_dir)
    except BaseException:
        sock.close()
        raise
    name = model_name or model_dir.resolve().name
    loopback = host in LOOPBACK_NAMES
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    quoted = escape(repr(name))
    out.print(f"Serving {escape(str(model_dir))} as {quoted} on {engine.device}", highlight=False)
    out.print(f"OpenAI base URL: http://{shown}:{bound}/v1", soft_wrap=True, highlight=False)
    if not loopback:
        err.print(f"warning: listening on {escape(host)}: any machine that reaches it can use the model")
    out.print("Press Ctrl+C to stop.", highlight=False)
    out.file.flush()  # a script waiting for the URL reads it now, not when the buffer fills
    app = create_app(engine, model_name=name, loopback_only=loopback)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve")(serve_command)
