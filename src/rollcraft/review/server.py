"""The review web app: a Starlette app that serves one sample, one rollout at a time.

Security model: the server binds to 127.0.0.1 only; every request must carry the session token
(``?token=`` or the ``X-Rollcraft-Token`` header), else 403; every response carries a strict
Content-Security-Policy (no inline script, no images, no external anything) and ``nosniff``.
Rollout content travels as JSON and the page renders it with ``textContent`` only.

>>> # app = create_app("sample.jsonl", "sample.decisions.jsonl", token="s3cret")
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
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

from rollcraft._read import ReadOptions, read_rollouts
from rollcraft._records import Rollout
from rollcraft.review.decisions import DECISIONS, Decision, DecisionLog, utc_now

__all__ = ["CSP", "TOKEN_HEADER", "Sample", "create_app", "load_sample", "new_token"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'none'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
TOKEN_HEADER = "x-rollcraft-token"
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


def load_sample(path: str | Path, options: ReadOptions | None = None) -> Sample:
    """Read a sample file: rollouts by id; quarantined lines and repeated ids only counted."""
    sample = Sample(Path(path))
    for item in read_rollouts([str(path)], options=options):
        if not isinstance(item, Rollout):
            sample.quarantined[item.reason] += 1
        elif item.rollout_id in sample.rollouts:
            sample.duplicates += 1
        else:
            sample.rollouts[item.rollout_id] = item
    return sample


class _Guard:
    """ASGI middleware: refuse requests without the token; add the security headers everywhere."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        if not self._allowed(scope):
            refused = PlainTextResponse("403 Forbidden: a valid session token is required", status_code=403)
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(TOKEN_HEADER.encode(), b"").decode("latin-1")
        if not given:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
        return secrets.compare_digest(given.encode(), self.token.encode())


def create_app(
    sample_path: str | Path,
    decisions_path: str | Path,
    token: str,
    *,
    reviewer: str | None = None,
    options: ReadOptions | None = None,
) -> Starlette:
    """The review app for one sample file; decisions are appended to ``decisions_path``."""
    state = _State(load_sample(sample_path, options), DecisionLog(decisions_path), token, reviewer)
    routes = [
        Route("/", state.index),
        Route("/static/{name}", state.static),
        Route("/api/rollouts", state.summary),
        Route("/api/rollouts/{rollout_id}", state.one),
        Route("/api/decisions", state.decide, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_Guard, token=token)
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
        self.log.append(decision)
        return _json({"ok": True, "decision": _decision_view(decision), **_progress(self.sample, self.log)})

    def _decision(self, data: Any) -> Decision:
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        rollout_id, choice, note = data.get("rollout_id"), data.get("decision"), data.get("note", "")
        if not isinstance(rollout_id, str) or choice not in DECISIONS or not isinstance(note, str):
            raise ValueError(f"need rollout_id (string), decision ({' | '.join(DECISIONS)}), note (string)")
        if len(note) > MAX_NOTE:
            raise ValueError(f"note longer than {MAX_NOTE} characters")
        return Decision(rollout_id, choice, note, utc_now(), self.reviewer)


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
        "unreadable_decision_lines": log.skipped_lines,
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
