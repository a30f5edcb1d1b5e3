"""The review server: token, host and origin, security headers, decisions appended and resumed,
content as data; and the whole loop through the real command line (review, then apply-review)."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from rollcraft import InputError, OutputError
from rollcraft.review import DecisionLog, default_decisions_path, read_decisions
from rollcraft.review.server import CSP, create_app

TOKEN = "test-token-123"
HEADERS = {"X-Rollcraft-Token": TOKEN}
PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"
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
    app = create_app(sample, decisions or default_decisions_path(sample), TOKEN, port=PORT)
    return TestClient(app, base_url=ORIGIN)


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


def test_a_later_decision_wins_and_a_torn_line_is_skipped_then_replaced(sample: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "d.jsonl"
    client = _client(sample, decisions)
    rollout_id = _ids(client)[0]
    headers = {"X-Rollcraft-Token": TOKEN}
    client.post("/api/decisions", json={"rollout_id": rollout_id, "decision": "accept"}, headers=headers)
    with decisions.open("ab") as handle:
        handle.write(b'{"rollout_id": "torn')  # a server killed mid-write
    warnings: list[str] = []
    restarted = TestClient(create_app(sample, decisions, TOKEN, port=PORT), base_url=ORIGIN)
    assert restarted.get("/api/rollouts", headers=headers).json()["torn_decision_lines"] == 1
    response = restarted.post(
        "/api/decisions", json={"rollout_id": rollout_id, "decision": "skip"}, headers=headers
    )
    assert response.status_code == 200
    assert b"torn" not in decisions.read_bytes() and decisions.read_bytes().endswith(b"\n")
    assert read_decisions(decisions, warn=warnings.append)[rollout_id].decision == "skip"
    assert warnings == [] and DecisionLog(decisions).torn_lines == 0


def test_a_whole_last_line_without_newline_is_kept_when_appending(sample: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "d.jsonl"
    client = _client(sample, decisions)
    first, second = _ids(client)[:2]
    decisions.write_bytes(orjson.dumps({"rollout_id": first, "decision": "reject"}))  # edited by hand
    client = _client(sample, decisions)
    client.post("/api/decisions", json={"rollout_id": second, "decision": "accept"}, headers=HEADERS)
    assert {i: d.decision for i, d in read_decisions(decisions).items()} == {
        first: "reject",
        second: "accept",
    }


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


@pytest.mark.parametrize(
    "host", ["evil.example:8765", "127.0.0.1.evil.example:8765", "127.0.0.1:8766", "localhost", ""]
)
def test_a_foreign_host_is_refused_even_with_the_token(sample: Path, host: str) -> None:
    client = _client(sample)
    rollout_id = _ids(client)[0]
    headers = {**HEADERS, "Host": host}
    assert client.get("/api/rollouts", headers=headers).status_code == 403
    body = {"rollout_id": rollout_id, "decision": "accept"}
    response = client.post("/api/decisions", json=body, headers=headers)
    assert response.status_code == 403 and "Host" in response.text
    assert not default_decisions_path(sample).exists()


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:8765", "null", ORIGIN + "/"])
def test_a_request_from_another_origin_is_refused(sample: Path, origin: str) -> None:
    client = _client(sample)
    rollout_id = _ids(client)[0]
    body = {"rollout_id": rollout_id, "decision": "reject"}
    response = client.post("/api/decisions", json=body, headers={**HEADERS, "Origin": origin})
    assert response.status_code == 403 and "another origin" in response.text
    assert not default_decisions_path(sample).exists()


def test_the_servers_own_origin_and_localhost_are_served(sample: Path) -> None:
    client = _client(sample)
    rollout_id = _ids(client)[0]
    body = {"rollout_id": rollout_id, "decision": "accept"}
    assert client.post("/api/decisions", json=body, headers={**HEADERS, "Origin": ORIGIN}).status_code == 200
    local = {**HEADERS, "Host": f"localhost:{PORT}", "Origin": f"http://localhost:{PORT}"}
    assert client.post("/api/decisions", json=body, headers=local).status_code == 200


def test_an_unwritable_decisions_file_is_refused_up_front(sample: Path, tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        create_app(sample, folder, TOKEN)
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        create_app(sample, not_a_folder / "d.jsonl", TOKEN)
    assert not_a_folder.read_text() == "x"


def test_a_malformed_decisions_file_is_refused_naming_the_line(sample: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "d.jsonl"
    decisions.write_bytes(
        b'{"rollout_id": "a", "decision": "maybe"}\n{"rollout_id": "b", "decision": "skip"}\n'
    )
    with pytest.raises(InputError, match=r'd\.jsonl:1: bad decision: "decision" must be'):
        create_app(sample, decisions, TOKEN)


# ---------------------------------------------------------------------------------------------
# The real command line: `rollcraft review` on a real port, then `rollcraft apply-review`


def _rollcraft(*args: str) -> list[str]:
    return [sys.executable, "-m", "rollcraft.cli", *args]


@pytest.fixture
def server(sample: Path, tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    decisions = tmp_path / "out" / "d.jsonl"
    command = _rollcraft("review", str(sample), "--decisions", str(decisions), "--no-browser")
    env = {**os.environ, "COLUMNS": "400"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    url = next(line.split()[1] for line in process.stdout if line.startswith("Open http://127.0.0.1:"))
    port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
    try:
        yield port, token, decisions
    finally:
        process.terminate()
        process.wait(timeout=10)


def _request(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_review_loop_end_to_end(server: tuple[int, str, Path], sample: Path, tmp_path: Path) -> None:
    port, token, decisions = server
    own = {"Host": f"127.0.0.1:{port}", "X-Rollcraft-Token": token, "Content-Type": "application/json"}
    rebound = {**own, "Host": f"attacker.example:{port}"}
    assert _request(port, "GET", "/api/rollouts", rebound) == 403
    ids = [i.rollout_id for i in _sample_rollouts(sample)]
    choices = ["accept", "reject", "skip"]
    for rollout_id, choice in zip(ids, choices, strict=True):
        body = orjson.dumps({"rollout_id": rollout_id, "decision": choice, "note": "n"})
        assert _request(port, "POST", "/api/decisions", {**own, "Origin": "http://evil.example"}, body) == 403
        assert (
            _request(port, "POST", "/api/decisions", {**own, "Origin": f"http://127.0.0.1:{port}"}, body)
            == 200
        )
    with decisions.open("ab") as handle:
        handle.write(b'{"rollout_id": "' + ids[0].encode())  # as a server killed mid-write leaves it
    kept = tmp_path / "kept.jsonl"
    result = subprocess.run(
        _rollcraft("apply-review", str(sample), "--decisions", str(decisions), "-o", str(kept)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # the first rollout is in the sample twice (one id): both copies accepted; a skip is no decision
    assert "Kept 3/4 rollouts: 2 accepted, 1 rejected, 1 without a decision (1 skipped)" in result.stdout
    assert "d.jsonl:4: skipped a torn last line" in result.stderr
    assert len(kept.read_bytes().splitlines()) == 3  # the rejected one out; the duplicate line stays


def _sample_rollouts(sample: Path) -> list[Any]:
    from rollcraft import Rollout, read_rollouts

    return [r for r in read_rollouts([str(sample)]) if isinstance(r, Rollout)][:3]


def test_the_command_refuses_an_unwritable_decisions_file(sample: Path, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file.txt"  # the old server started, then failed every save with a 500
    not_a_folder.write_text("x")
    target = not_a_folder / "d.jsonl"
    result = subprocess.run(
        _rollcraft("review", str(sample), "--decisions", str(target), "--no-browser"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 2 and "Open http" not in result.stdout
    assert result.stderr.strip().splitlines() == [f"error: {target}: cannot write (Not a directory)"]


def test_the_command_prints_the_read_line_and_refuses_a_file_of_no_rollouts(tmp_path: Path) -> None:
    rows = tmp_path / "sft.jsonl"  # the old server started on it and showed an empty page
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    rows.write_bytes(orjson.dumps({"messages": messages}) + b"\n")
    result = subprocess.run(
        _rollcraft("review", str(rows), "--no-browser"),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 2 and "Open http" not in result.stdout
    assert f"{rows} looks like SFT rows" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.decisions.jsonl"))
