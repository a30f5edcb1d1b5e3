"""The review web app: a Starlette app that serves one sample, one rollout at a time.

Security model: the server binds to 127.0.0.1 only; every request must name the server in its
``Host`` header (``127.0.0.1`` or ``localhost``, at the server's port), carry no ``Origin`` but
the server's own, and carry the session token (``?token=`` or the ``X-Rollcraft-Token`` header),
else 403: a page on another origin reaches it neither by DNS rebinding nor by a cross-site
request. Every response carries a strict Content-Security-Policy (no inline script, no images,
no external anything) and ``nosniff``. Rollout content travels as JSON and the page renders it
with ``textContent`` only.

>>> # app = create_app("sample.jsonl", "sample.decisions.jsonl", token="s3cret", port=8765)
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollcraft._errors import RollcraftError
from rollcraft._records import Rollout
from rollcraft.read._reader import ReadOptions, ReadReport, read_rollouts
from rollcraft.review.decisions import Decision, DecisionLog, utc_now

__all__ = ["CSP", "LOCAL_NAMES", "TOKEN_HEADER", "Sample", "create_app", "load_sample", "new_token"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'none'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TOKEN_HEADER = "x-rollcraft-token"
#: The host names the server answers to (it listens on 127.0.0.1 only).
LOCAL_NAMES = ("127.0.0.1", "localhost")
MAX_STRING = 200_000  # longer strings are cut for display (the file is never changed)
MAX_NOTE = 10_000
MAX_BODY = 64 * 1024
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def new_token() -> str:
    """A fresh random session token (URL-safe)."""
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class Sample:
    """The rollouts under review (in file order, one per id) and what was left out."""

    path: Path
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    quarantined: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    #: What reading the file found (its ``Read L lines: ...`` line).
    read: ReadReport = field(default_factory=ReadReport)


def load_sample(path: str | Path, options: ReadOptions | None = None) -> Sample:
    """Read a sample file: rollouts by id; quarantined lines and repeated ids only counted."""
    sample = Sample(Path(path))
    for item in read_rollouts([str(path)], options=options, report=sample.read):
        if not isinstance(item, Rollout):
            sample.quarantined[item.reason] += 1
        elif item.rollout_id in sample.rollouts:
            sample.duplicates += 1
        else:
            sample.rollouts[item.rollout_id] = item
    return sample


class _Guard:
    """ASGI middleware: refuse foreign hosts and origins and requests without the token (403);
    add the security headers everywhere."""

    def __init__(self, app: ASGIApp, token: str, port: int | None) -> None:
        self.app = app
        self.token = token
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        refusal = self._refusal(scope)
        if refusal:
            refused = PlainTextResponse(f"403 Forbidden: {refusal}", status_code=403)
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> str | None:
        """Why the request is refused (``None``: it is not)."""
        headers = {k: v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get(b"host", "").lower()
        if not self._local(host):
            return "the Host header must name this server (127.0.0.1 or localhost)"
        origin = headers.get(b"origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return "a request from another origin"
        if not self._token_ok(headers, scope):
            return "a valid session token is required"
        return None

    def _local(self, host: str) -> bool:
        """Whether ``host`` (``name:port``) is this server: a local name, at its port when known."""
        name, colon, port = host.rpartition(":")
        if not colon:
            name, port = host, ""
        if self.port is not None and port != str(self.port):
            return False
        return name in LOCAL_NAMES

    def _token_ok(self, headers: dict[bytes, str], scope: Scope) -> bool:
        given = headers.get(TOKEN_HEADER.encode(), "")
        if not given:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
        return secrets.compare_digest(given.encode(), self.token.encode())


def create_app(
    sample_path: str | Path | Sample,
    decisions_path: str | Path,
    token: str,
    *,
    port: int | None = None,
    reviewer: str | None = None,
    options: ReadOptions | None = None,
) -> Starlette:
    """The review app for one sample file (or its :class:`Sample`, already loaded); decisions are
    appended to ``decisions_path``.

    ``port``: the port the server listens on; requests must name it in ``Host`` (``None``: any
    port of a local name). Raises :class:`~rollcraft.OutputError` when the decisions file cannot
    be written and :class:`~rollcraft.InputError` when it holds a malformed decision.
    """
    sample = sample_path if isinstance(sample_path, Sample) else load_sample(sample_path, options)
    state = _State(sample, DecisionLog(decisions_path), token, reviewer)
    routes = [
        Route("/", state.index),
        Route("/static/{name}", state.static),
        Route("/api/rollouts", state.summary),
        Route("/api/rollouts/{rollout_id}", state.one),
        Route("/api/decisions", state.decide, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Guard, token=token, port=port)
    return app


class _State:
    def __init__(self, sample: Sample, log: DecisionLog, token: str, reviewer: str | None) -> None:
        self.sample = sample
        self.log = log
        self.token = token
        self.reviewer = reviewer

    async def index(self, request: Request) -> Response:
        html = _asset("index.html").replace("{{TOKEN}}", _html_attr(self.token))
        return Response(html, media_type="text/html; charset=utf-8")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return PlainTextResponse("404 Not Found", status_code=404)
        return Response(_asset(name), media_type=_STATIC[name])

    async def summary(self, request: Request) -> Response:
        return _json(_summary(self.sample, self.log))

    async def one(self, request: Request) -> Response:
        rollout = self.sample.rollouts.get(request.path_params["rollout_id"])
        if rollout is None:
            return _json({"error": "no such rollout in this sample"}, status=404)
        return _json(_rollout_view(rollout, self.log.latest.get(rollout.rollout_id)))

    async def decide(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _json({"error": "request too large"}, status=413)
        try:
            decision = self._decision(orjson.loads(body))
        except (orjson.JSONDecodeError, ValueError) as exc:
            return _json({"error": str(exc) or "not JSON"}, status=400)
        if decision.rollout_id not in self.sample.rollouts:
            return _json({"error": "no such rollout in this sample"}, status=404)
        try:
            self.log.append(decision)
        except RollcraftError as exc:
            return _json({"error": str(exc)}, status=500)
        return _json({"ok": True, "decision": _decision_view(decision), **_progress(self.sample, self.log)})

    def _decision(self, data: Any) -> Decision:
        """The page's decision, stamped with the time and reviewer (the page sets neither)."""
        decision = Decision.from_record(data)
        if len(decision.note) > MAX_NOTE:
            raise ValueError(f"note longer than {MAX_NOTE} characters")
        return replace(decision, time=utc_now(), reviewer=self.reviewer)


def _asset(name: str) -> str:
    return files("rollcraft.review").joinpath("static", name).read_text(encoding="utf-8")


def _html_attr(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in "-_")


def _json(data: Any, *, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _progress(sample: Sample, log: DecisionLog) -> dict[str, Any]:
    decided = [log.latest[i].decision for i in sample.rollouts if i in log.latest]
    return {"total": len(sample.rollouts), "reviewed": len(decided), "counts": dict(Counter(decided))}


def _summary(sample: Sample, log: DecisionLog) -> dict[str, Any]:
    items = [
        {
            "id": r.rollout_id,
            "reward": r.reward,
            "success": r.success,
            "task_type": r.task_type,
            "flags": sorted(r.flags),
            "n_messages": r.n_messages,
        }
        for r in sample.rollouts.values()
    ]
    decisions = {i: _decision_view(log.latest[i]) for i in sample.rollouts if i in log.latest}
    return {
        "sample": sample.path.name,
        "decisions_file": log.path.name,
        "items": items,
        "decisions": decisions,
        "quarantined": dict(sample.quarantined),
        "duplicates": sample.duplicates,
        "torn_decision_lines": log.torn_lines,
        **_progress(sample, log),
    }


def _decision_view(decision: Decision) -> dict[str, Any]:
    return {"decision": decision.decision, "note": decision.note, "time": decision.time}


def _rollout_view(rollout: Rollout, decision: Decision | None) -> dict[str, Any]:
    conversation = rollout.conversation
    return {
        "id": rollout.rollout_id,
        "source": Path(rollout.source).name,
        "line": rollout.line,
        "reward": rollout.reward,
        "reward_components": rollout.reward_components,
        "success": rollout.success,
        "task_type": rollout.task_type,
        "task_key": _clip(rollout.task_key),
        "agent": _clip(rollout.agent),
        "flags": sorted(rollout.flags),
        "prompt": _clip(conversation.prompt),
        "completion": _clip(conversation.completion),
        "tools": _clip(conversation.tools),
        "decision": _decision_view(decision) if decision else None,
    }


def _clip(value: Any) -> Any:
    """Cut very long strings (for display only), everywhere inside ``value``."""
    if isinstance(value, str):
        if len(value) <= MAX_STRING:
            return value
        return value[:MAX_STRING] + f"\n… [{len(value) - MAX_STRING} more characters not shown]"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value
