"""The review server: token, security headers, decisions appended and resumed, content as data."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from rollcraft.review import DecisionLog, default_decisions_path
from rollcraft.review.server import CSP, create_app

TOKEN = "test-token-123"
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


def _record(i: int, text: str = "hello", reward: float = 1.0) -> bytes:
    record = {
        "responses_create_params": {"input": [{"role": "user", "content": f"question {i}"}]},
        "response": {"output": [{"type": "message", "role": "assistant", "content": text}]},
        "reward": reward,
        "task_id": f"t{i}",
    }
    return orjson.dumps(record)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.jsonl"
    lines = [_record(0), _record(1, XSS, 0.0), _record(2, reward=0.5), b"not json", _record(0)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _client(sample: Path, decisions: Path | None = None) -> TestClient:
    return TestClient(create_app(sample, decisions or default_decisions_path(sample), TOKEN))


def _ids(client: TestClient) -> list[str]:
    data = client.get("/api/rollouts", headers={"X-Rollcraft-Token": TOKEN}).json()
    return [item["id"] for item in data["items"]]


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/rollouts", "/api/rollouts/x", "/nope"])
def test_requests_without_the_token_are_refused(sample: Path, path: str) -> None:
    client = _client(sample)
    assert client.get(path).status_code == 403
    assert client.get(path, params={"token": "wrong"}).status_code == 403
    assert client.get(path, headers={"X-Rollcraft-Token": TOKEN[:-1]}).status_code == 403


def test_post_without_the_token_is_refused_and_writes_nothing(sample: Path) -> None:
    client = _client(sample)
    rollout_id = _ids(client)[0]
    response = client.post("/api/decisions", json={"rollout_id": rollout_id, "decision": "accept"})
    assert response.status_code == 403
    assert not default_decisions_path(sample).exists()


def test_every_response_has_the_security_headers(sample: Path) -> None:
    client = _client(sample)
    for response in (client.get("/"), client.get("/", params={"token": TOKEN})):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_has_no_inline_script_and_carries_the_token_to_its_assets(sample: Path) -> None:
    html = _client(sample).get("/", params={"token": TOKEN}).text
    assert re.findall(r"<script[^>]*>", html) == [f'<script src="/static/app.js?token={TOKEN}" defer>']
    assert "onerror" not in html and "onclick" not in html and "style=" not in html
    js = _client(sample).get("/static/app.js", params={"token": TOKEN}).text
    assert "innerHTML" not in js and "eval(" not in js


def test_summary_counts_quarantined_and_duplicate_lines(sample: Path) -> None:
    data = _client(sample).get("/api/rollouts", headers={"X-Rollcraft-Token": TOKEN}).json()
    assert data["total"] == 3 and data["reviewed"] == 0
    assert data["quarantined"] == {"not_json": 1}
    assert data["duplicates"] == 1
    assert [item["reward"] for item in data["items"]] == [1.0, 0.0, 0.5]


def test_content_is_served_as_json_data_unchanged(sample: Path) -> None:
    client = _client(sample)
    rollout_id = _ids(client)[1]
    response = client.get(f"/api/rollouts/{rollout_id}", headers={"X-Rollcraft-Token": TOKEN})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["completion"][0]["content"] == XSS


def test_decisions_are_appended_at_once_and_resumed(sample: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "d.jsonl"
    client = _client(sample, decisions)
    ids = _ids(client)
    headers = {"X-Rollcraft-Token": TOKEN}
    for rollout_id, choice in zip(ids[:2], ["accept", "reject"], strict=True):
        response = client.post(
            "/api/decisions",
            json={"rollout_id": rollout_id, "decision": choice, "note": "n"},
            headers=headers,
        )
        assert response.status_code == 200
    lines = [orjson.loads(line) for line in decisions.read_bytes().splitlines()]
    assert [(d["rollout_id"], d["decision"], d["note"]) for d in lines] == [
        (ids[0], "accept", "n"),
        (ids[1], "reject", "n"),
    ]
    assert list(lines[0]) == ["rollout_id", "decision", "note", "time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[0]["time"])
    resumed = _client(sample, decisions).get("/api/rollouts", headers=headers).json()
    assert resumed["reviewed"] == 2 and set(resumed["decisions"]) == {ids[0], ids[1]}


def test_a_later_decision_wins_and_a_torn_line_is_skipped(sample: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "d.jsonl"
    client = _client(sample, decisions)
    rollout_id = _ids(client)[0]
    headers = {"X-Rollcraft-Token": TOKEN}
    client.post("/api/decisions", json={"rollout_id": rollout_id, "decision": "accept"}, headers=headers)
    with decisions.open("ab") as handle:
        handle.write(b'{"rollout_id": "torn')  # a crash mid-write
    client.post("/api/decisions", json={"rollout_id": rollout_id, "decision": "skip"}, headers=headers)
    log = DecisionLog(decisions)
    assert log.latest[rollout_id].decision == "skip"
    assert log.skipped_lines == 1
    assert decisions.read_bytes().endswith(b"\n")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (orjson.dumps({"rollout_id": "x", "decision": "maybe"}), 400),
        (orjson.dumps({"rollout_id": "0" * 16, "decision": "accept"}), 404),
        (orjson.dumps({"rollout_id": "x", "decision": "accept", "note": "n" * 10_001}), 400),
    ],
)
def test_bad_decisions_are_refused(sample: Path, body: bytes, status: int) -> None:
    client = _client(sample)
    response = client.post("/api/decisions", content=body, headers={"X-Rollcraft-Token": TOKEN})
    assert response.status_code == status
    assert not default_decisions_path(sample).exists()


def test_default_decisions_path() -> None:
    assert default_decisions_path("a/sample.jsonl") == Path("a/sample.decisions.jsonl")
    assert default_decisions_path("b/s.jsonl.gz") == Path("b/s.decisions.jsonl")
