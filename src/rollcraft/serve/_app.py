"""The Starlette app: ``GET /v1/models``, ``POST /v1/responses``, ``POST /v1/chat/completions``.

Requests are queued and generated in batches (:mod:`~rollcraft.serve._queue`). Errors
are OpenAI-style JSON (``{"error": {"message": ..., "type": ...}}``): 400 for a request the server
refuses, 403 for a request from a web page, 404/405 for a wrong route, 500 for a failure.

Requests from browsers are refused: one with an ``Origin`` header that is not the loopback, or,
when the server listens on the loopback, one whose ``Host`` is not a loopback name (a web page
reaches it neither cross-site nor through DNS rebinding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rollcraft.serve._chat import chat_prompt, completion_object
from rollcraft.serve._engine import Engine, Generation
from rollcraft.serve._queue import Queue
from rollcraft.serve._request import Prompt, RequestError
from rollcraft.serve._responses import response_object, responses_prompt

__all__ = ["LOOPBACK_NAMES", "MAX_BODY", "create_app"]

#: Host names of the loopback interface.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MAX_BODY = 64 * 1024 * 1024
_log = logging.getLogger("rollcraft.serve")


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _error(error: RequestError) -> Response:
    return _json(error.body(), error.status)


def _check_caller(request: Request, loopback_only: bool) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).hostname not in LOOPBACK_NAMES:
        raise RequestError("requests from web pages are refused", status=403)
    if loopback_only and (request.url.hostname or "") not in LOOPBACK_NAMES:
        raise RequestError("the Host header must name the loopback (127.0.0.1 or localhost)", status=403)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise RequestError(f"the request body is over {MAX_BODY // (1024 * 1024)} MiB", status=413)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


class _Server:
    """The routes' state: the engine, the served name and the queue."""

    def __init__(self, engine: Engine, model_name: str, loopback_only: bool) -> None:
        self.engine = engine
        self.model_name = model_name
        self.loopback_only = loopback_only
        self.created = int(time.time())
        self.queue = Queue(engine)

    def _model(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "rollcraft"}

    async def models(self, request: Request) -> Response:
        _check_caller(request, self.loopback_only)
        return _json({"object": "list", "data": [self._model()]})

    async def model(self, request: Request) -> Response:
        _check_caller(request, self.loopback_only)
        if request.path_params["name"] != self.model_name:
            raise RequestError(f"no model named {request.path_params['name']!r}", param="model", status=404)
        return _json(self._model())

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def _generate(self, prompt: Prompt) -> Generation:
        text = self.engine.render(prompt.messages, prompt.tools)
        self.engine.limit(len(self.engine.encode(text)), prompt.sampling)  # too long: a 400 now
        return await self.queue.generate(text, prompt.sampling)

    async def responses(self, request: Request) -> Response:
        _check_caller(request, self.loopback_only)
        body = await _body(request)
        prompt = responses_prompt(body)
        generation = await self._generate(prompt)
        return _json(response_object(body, prompt, generation, self.model_name))

    async def chat_completions(self, request: Request) -> Response:
        _check_caller(request, self.loopback_only)
        prompt = chat_prompt(await _body(request))
        generation = await self._generate(prompt)
        return _json(completion_object(prompt, generation, self.model_name))


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return _error(exc)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return _error(RequestError(f"{request.method} {request.url.path}: {message}", status=exc.status_code))


async def _failed(request: Request, exc: Exception) -> Response:
    _log.exception("generation failed")
    first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return _error(RequestError(f"the server failed: {first}", status=500))


def create_app(engine: Engine, *, model_name: str, loopback_only: bool = True) -> Starlette:
    """The app serving ``engine`` under ``model_name`` (any ``model`` in a request is accepted).

    ``loopback_only``: refuse requests whose ``Host`` is not a loopback name (the server
    listens on the loopback). ``app.state.queue`` is the request queue.
    """
    server = _Server(engine, model_name, loopback_only)
    routes: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/v1/models", server.models, ["GET"]),
        ("/v1/models/{name:path}", server.model, ["GET"]),
        ("/v1/responses", server.responses, ["POST"]),
        ("/v1/chat/completions", server.chat_completions, ["POST"]),
        ("/health", server.health, ["GET"]),
    ]
    app = Starlette(
        routes=[Route(path, endpoint, methods=methods) for path, endpoint, methods in routes],
        exception_handlers={RequestError: _refused, HTTPException: _http, Exception: _failed},
    )
    app.state.queue = server.queue
    return app
