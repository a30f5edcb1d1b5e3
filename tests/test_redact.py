"""Secret and PII redaction: planted secrets all found and counted, ordinary text left alone."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollcraft import Rollout, read_rollouts
from rollcraft.redact import (
    _JSON_STRING,
    _PATTERNS,
    SECRET_KINDS,
    Allowlist,
    Redactor,
    RedactSecrets,
    _all_tokens,
    _sub,
    _token_end,
    load_allowlist,
)
from tests.conftest import real_files

# Each planted secret, the kind it must be reported as, and the exact text that must disappear.
PLANTED: list[tuple[str, str, str]] = [
    ("aws_access_key", "my key is AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "temp ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws_secret_key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "github_token",
        "token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ),
    ("github_token", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    (
        "github_token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    ),
    (
        "openai_api_key",
        "OPENAI_API_KEY=sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678StU901vWx234",
        "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678StU901vWx234",
    ),
    (
        "openai_api_key",
        "legacy sk-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4",
        "sk-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4",
    ),
    (
        "anthropic_api_key",
        "x-api-key: sk-ant-api03-Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7-_zYxWvUtSrQpOnMlKjIhGfEdCbA0123456789AA",  # noqa: E501
        "sk-ant-api03-Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7-_zYxWvUtSrQpOnMlKjIhGfEdCbA0123456789AA",
    ),
    (
        "slack_token",
        "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "slack_webhook",
        "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX now",
        "hooks.slack.com/services/T00000000",
    ),
    (
        "google_api_key",
        "key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q&q=x",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    ),
    (
        "stripe_key",
        "stripe.api_key = 'sk_live_51H8abcDEFghiJKLmnoPQRstu'",
        "sk_live_51H8abcDEFghiJKLmnoPQRstu",
    ),
    ("stripe_key", "rk_live_51H8abcDEFghiJKLmnoPQRstuVWX", "rk_live_51H8abcDEFghiJKLmnoPQRstuVWX"),
    (
        "huggingface_token",
        "HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678",
    ),
    (
        "nvidia_api_key",
        "export NVIDIA_API_KEY=nvapi-Ab3_Cd4-Ef5_Gh6-Ij7_Kl8-Mn9_Op0-Qr1_St2-Uv3_Wx4-Yz5_",
        "nvapi-Ab3_Cd4-Ef5_Gh6-Ij7_Kl8-Mn9_Op0-Qr1_St2-Uv3_Wx4-Yz5_",
    ),
    (
        "jwt",
        "session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # noqa: E501
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    ),
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----",  # noqa: E501
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo",
    ),
    (
        "private_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",  # noqa: E501
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
    ),
    (
        "bearer_token",
        "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    ),
    ("url_password", "DATABASE_URL=postgres://admin:S3cretPass@db.internal:5432/prod", "S3cretPass"),
    ("url_password", "clone https://oauth2:glpat1234abcd@gitlab.example.org/x.git", "glpat1234abcd"),
    ("email", "write to alice.smith@example.com please", "alice.smith@example.com"),
    ("email", "cc: Bob.O'Neil <bob+ml@mail.corp.co.uk>", "bob+ml@mail.corp.co.uk"),
    ("secret_assignment", 'db = connect(password="hunter2Xy9!q")', "hunter2Xy9!q"),
    ("secret_assignment", "api_key: Zk83jdk2LmQ9wq", "Zk83jdk2LmQ9wq"),
]

ORDINARY = [
    "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 by the bot",
    "request id 123e4567-e89b-12d3-a456-426614174000",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    'api_key = os.environ["OPENAI_API_KEY"]',
    "password: str = Field(..., min_length=8)",
    "token = tokenizer(text)['input_ids']; max_tokens=1024",
    "Set OPENAI_API_KEY=sk-... or pass api_key=YOUR_API_KEY",
    "The bearer of responsibilities is the Bearer of bad news.",
    "pip install scikit-learn  # sk-learn is not a key",
    "icons: logo@2x.png, icon@3x.jpg; decorators: @app.route('/x'); npm i @types/node",
    "git clone git@github.com:NVIDIA-NeMo/Gym.git",
    "Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com; unit getty@tty1.service",
    "https://example.com/path?x=1 and http://localhost:8080/api",
    "AKIA is a prefix; ghp_ too; hf_hub_download(repo_id='x'); nvapi- as a word",
    "eyJhbGciOiJIUzI1NiJ9 is just a header",
    "x = -----BEGIN PUBLIC KEY----- MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA -----END PUBLIC KEY-----",
    "The price was $1,234.56 on 2024-01-02 at 12:30; ratio 3:2; user:pass notation",
]


def _rollout(texts: list[str], *, args: str = '{"q": 1}') -> bytes:
    record: dict[str, Any] = {
        "responses_create_params": {"input": [{"role": "user", "content": texts[0]}], "temperature": 0.7},
        "response": {
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": texts[-1]}]},
                {"type": "function_call", "call_id": "c1", "name": "run", "arguments": args},
                {"type": "function_call_output", "call_id": "c1", "output": "\n".join(texts[1:])},
                {"type": "message", "role": "assistant", "content": "done"},
            ]
        },
        "reward": 1.0,
        "metadata": {"note": texts[0]},
    }
    return orjson.dumps(record)


@pytest.mark.parametrize(
    ("kind", "text", "secret"), PLANTED, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(PLANTED)]
)
def test_each_planted_secret_is_redacted_and_counted(kind: str, text: str, secret: str) -> None:
    redacted, counts = Redactor().redact_text(text)
    assert counts == Counter({kind: 1})
    assert secret not in redacted
    assert f"<REDACTED:{kind}>" in redacted


def test_every_kind_is_planted() -> None:
    assert {kind for kind, _, _ in PLANTED} == set(SECRET_KINDS)


def test_planted_file_every_secret_gone_from_every_place(tmp_path: Path) -> None:
    lines = []
    for _, text, _ in PLANTED:
        args = orjson.dumps({"cmd": text}).decode()
        lines.append(_rollout([text, f"result: {text}", f"thinking about {text}"], args=args))
    source = tmp_path / "planted.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    step = RedactSecrets()
    out = [step.apply(r).rollout for r in read_rollouts([str(source)]) if isinstance(r, Rollout)]
    written = b"\n".join(r.raw for r in out if r is not None)
    for kind, _, secret in PLANTED:
        assert secret.encode() not in written, kind
    # each secret occurs 6 times: prompt, metadata, tool-call arguments, reasoning, twice in the tool output
    expected: Counter[str] = Counter()
    for kind, _, _ in PLANTED:
        expected[kind] += 6
    assert step.report.kinds == expected
    assert step.report.redacted == len(PLANTED)
    for rollout in out:
        assert rollout is not None
        messages = orjson.dumps(rollout.conversation.messages)
        assert b"<REDACTED:" in messages


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().redact_text(text) == (text, Counter())


def test_real_files_only_emails_fire_and_clean_lines_stay_byte_identical() -> None:
    redactor = Redactor()
    found: Counter[str] = Counter()
    for path in real_files():
        for raw in path.read_bytes().splitlines():
            new, counts = redactor.redact_line(raw)
            found.update(counts)
            if not counts:
                assert new is raw
            else:
                _assert_only_strings_changed(orjson.loads(raw), orjson.loads(new))
    assert set(found) == {"email"}  # real addresses (git authors, SQL rows, simulated users)


def _assert_only_strings_changed(old: Any, new: Any) -> None:
    assert type(old) is type(new)
    if isinstance(old, dict):
        assert list(old) == list(new)
        for key in old:
            _assert_only_strings_changed(old[key], new[key])
    elif isinstance(old, list):
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            _assert_only_strings_changed(a, b)
    elif isinstance(old, str):
        assert old == new or "<REDACTED:" in new
    else:
        assert old == new


def test_only_the_strings_with_secrets_change_byte_for_byte() -> None:
    raw = b'{"a": "caf\\u00e9",  "n": 1.50, "b": "mail bob@corp.io", "c": [true, null]}'
    new, counts = Redactor().redact_line(raw)
    assert new == b'{"a": "caf\\u00e9",  "n": 1.50, "b": "mail <REDACTED:email>", "c": [true, null]}'
    assert counts == Counter({"email": 1})


def test_keys_are_not_redacted_and_secret_keys_mark_their_values() -> None:
    raw = b'{"bob@corp.io": 1, "api_key": "Zk83jdk2LmQ9", "password": "short", "token_count": "abc123def456"}'
    new, counts = Redactor().redact_line(raw)
    assert (
        new
        == b'{"bob@corp.io": 1, "api_key": "<REDACTED:secret_assignment>", "password": "short", "token_count": "abc123def456"}'  # noqa: E501
    )
    assert counts == Counter({"secret_assignment": 1})


def test_escaped_characters_cannot_hide_a_secret() -> None:
    raw = b'{"a": "\\u0041KIAIOSFODNN7EXAMPLE", "b": "https:\\/\\/u:pw123456@h.io"}'
    new, counts = Redactor().redact_line(raw)
    assert counts == Counter({"aws_access_key": 1, "url_password": 1})
    assert orjson.loads(new) == {
        "a": "<REDACTED:aws_access_key>",
        "b": "https://u:<REDACTED:url_password>@h.io",
    }


def test_redaction_is_idempotent() -> None:
    line = _rollout([text for _, text, _ in PLANTED])
    once, counts = Redactor().redact_line(line)
    assert counts
    assert Redactor().redact_line(once) == (once, Counter())


def test_not_json_is_returned_unchanged() -> None:
    assert Redactor().redact_line(b"not json AKIAIOSFODNN7EXAMPLE") == (
        b"not json AKIAIOSFODNN7EXAMPLE",
        Counter(),
    )


def test_allowlist_exact_and_regex(tmp_path: Path) -> None:
    listed = tmp_path / "allow.txt"
    listed.write_text("# ours\nAKIAIOSFODNN7EXAMPLE\nre:.*@example\\.com\n", encoding="utf-8")
    redactor = Redactor(allowlist=load_allowlist(listed))
    text = "AKIAIOSFODNN7EXAMPLE ann@example.com ann@corp.io AKIAY34FZKBOKMUTVV7A"
    assert redactor.redact_text(text) == (
        "AKIAIOSFODNN7EXAMPLE ann@example.com <REDACTED:email> <REDACTED:aws_access_key>",
        Counter({"email": 1, "aws_access_key": 1}),
    )
    assert Allowlist.of(["re:x+"]).allows("xxx") and not Allowlist.of(["re:x+"]).allows("xxy")


def test_kinds_limit_what_is_looked_for() -> None:
    text, counts = Redactor(kinds=frozenset({"email"})).redact_text("AKIAIOSFODNN7EXAMPLE a@b.io")
    assert text == "AKIAIOSFODNN7EXAMPLE <REDACTED:email>" and counts == Counter({"email": 1})


def test_drop_mode_drops_with_a_reason_and_keeps_clean_rollouts(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_rollout(["hello"]) + b"\n" + _rollout(["key AKIAIOSFODNN7EXAMPLE", "x"]) + b"\n")
    step = RedactSecrets(on_secret="drop")
    rollouts = [r for r in read_rollouts([str(source)]) if isinstance(r, Rollout)]
    results = [step.apply(r) for r in rollouts]
    assert results[0].rollout is rollouts[0] and results[0].dropped is None
    assert results[1].rollout is None and results[1].dropped == "secret found: aws_access_key"
    assert step.check(rollouts[1]) == "secret found: aws_access_key" and step.check(rollouts[0]) is None
    assert step.report.to_dict() == {
        "rollouts": 2,
        "redacted": 0,
        "dropped": 1,
        "kinds": {"aws_access_key": 2},
    }


def test_replace_mode_reparses_so_id_raw_and_conversation_agree(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_rollout(["mail bob@corp.io", "x"]) + b"\n")
    (rollout,) = [r for r in read_rollouts([str(source)]) if isinstance(r, Rollout)]
    result = RedactSecrets().apply(rollout)
    assert result.rollout is not None and result.counts == Counter({"email": 2})  # prompt and metadata
    assert result.rollout.conversation.prompt[0]["content"] == "mail <REDACTED:email>"
    assert result.rollout.rollout_id != rollout.rollout_id  # the hash of the line as it will be written
    target = tmp_path / "out.jsonl"
    target.write_bytes(result.rollout.raw + b"\n")
    (again,) = [r for r in read_rollouts([str(target)]) if isinstance(r, Rollout)]
    assert again.rollout_id == result.rollout.rollout_id


def test_cli_redact_reports_per_kind(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        _rollout(["key AKIAIOSFODNN7EXAMPLE", "mail bob@corp.io"]) + b"\n" + _rollout(["hi"]) + b"\n"
    )
    target = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "rollcraft.cli", "redact", str(source), "-o", str(target), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = orjson.loads(done.stdout)
    assert report["redaction"]["kinds"] == {"aws_access_key": 2, "email": 2}
    assert report["redaction"]["redacted"] == 1
    lines = target.read_bytes().splitlines()
    assert len(lines) == 2 and b"AKIA" not in lines[0] and lines[1] == _rollout(["hi"])


@pytest.mark.parametrize("on_secret", ["replace", "drop"])
def test_a_second_pass_skips_the_lines_the_first_found_clean(tmp_path: Path, on_secret: str) -> None:
    source = tmp_path / "in.jsonl"
    planted = [_rollout(["key AKIAIOSFODNN7EXAMPLE", "x"]), _rollout(["mail bob@corp.io", "y"])]
    real = [raw for path in real_files()[:20] for raw in path.read_bytes().splitlines()]
    source.write_bytes(b"\n".join(real + planted) + b"\n")
    rollouts = [r for r in read_rollouts([str(source)]) if isinstance(r, Rollout)]

    clean: set[str] = set()
    first = RedactSecrets(on_secret=on_secret, record_clean=clean)  # type: ignore[arg-type]
    expected = [first.apply(r) for r in rollouts]
    assert clean == {r.rollout_id for r, e in zip(rollouts, expected, strict=True) if not e.counts}
    assert rollouts[-1].rollout_id not in clean and rollouts[-2].rollout_id not in clean

    second = RedactSecrets(on_secret=on_secret, clean=frozenset(clean))  # type: ignore[arg-type]
    again = [second.apply(r) for r in rollouts]
    assert [(e.rollout and e.rollout.raw, e.counts, e.dropped) for e in expected] == [
        (a.rollout and a.rollout.raw, a.counts, a.dropped) for a in again
    ]
    assert second.report.to_dict() == first.report.to_dict()

    # Only a line known by its content hash is skipped: any other line is searched.
    unknown = RedactSecrets(on_secret=on_secret, clean=frozenset())  # type: ignore[arg-type]
    assert unknown.apply(rollouts[-1]).counts == Counter({"email": 2})
    trusted = RedactSecrets(on_secret=on_secret, clean=frozenset({rollouts[-1].rollout_id}))  # type: ignore[arg-type]
    assert trusted.apply(rollouts[-1]).counts == Counter()


# Pieces that make the patterns with their own match starts (email, URL password, assignment)
# match, nearly match, overlap and fold oddly (U+0130, U+0131, U+017F, U+212A).
_PIECES = [
    "a@b.co",
    "x.y+z@sub.example.org",
    "@",
    "git@h.io",
    "@property",
    "ab@openssh.com",
    "://",
    "https://u:p@h",
    "a.b+c://x:y@z",
    "abcdefghijklmnopq://u:p@h",
    "1a://u:p@h",
    "password",
    "PassWord",
    "pwd",
    "api_key",
    "Api-Key",
    "secret",
    "SECRET_KEY",
    "access_token",
    "auth-token",
    "client_secret",
    "privateToken",
    "pa\u017f\u017fword",
    "\u0130",
    "\u0131",
    "api_\u212aey",
    "=",
    ":",
    " = ",
    "'",
    '"',
    "\\",
    "\n",
    " ",
    "Zk83jdk2LmQ9x",
    "hunter2hunter2",
    "x" * 63,
    "y" * 64,
    ".",
    "-",
    "_",
    "+",
    "%",
    "\u00e9",
    "\u2019",
]


@pytest.mark.parametrize("kind", ["email", "url_password", "secret_assignment"])
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=24))
def test_matching_only_at_possible_starts_finds_what_sub_finds(kind: str, pieces: list[str]) -> None:
    (pattern,) = [p for p in _PATTERNS if p.kind == kind]
    assert pattern.starts is not None
    text = "".join(pieces)

    def mark(match: Any) -> str:
        return f"<{match.group(0)}|{match.span()}>"

    assert _sub(pattern, mark, text) == pattern.regex.sub(mark, text)


def test_token_ends_found_by_find_are_the_regex_ones() -> None:
    lines = [line for path in real_files()[:40] for line in path.read_bytes().splitlines()]
    lines.append(b'{"a": "x\\\\", "b": "y\\"z\\\\\\"w", "c": ""}')
    for line in lines:
        for start, end in _all_tokens(line).items():
            assert _token_end(line, start) == end
        assert _JSON_STRING.match(line, 0) is None and _token_end(line, 0) == 0


def test_dropped_for_a_secret_the_rejects_hold_the_line_redacted(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_rollout(["hello"]) + b"\n" + _rollout(["key AKIAIOSFODNN7EXAMPLE", "x"]) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    command = [
        sys.executable,
        "-m",
        "rollcraft.cli",
        "filter",
        str(source),
        "-o",
        str(tmp_path / "kept.jsonl"),
    ]
    command += ["--redact-secrets", "--on-secret", "drop", "--rejects", str(rejects)]
    subprocess.run(command, capture_output=True, check=True)
    (record,) = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert record["dropped_by"] == "redact_secrets" and b"AKIAIOSFODNN7EXAMPLE" not in rejects.read_bytes()
    assert record["rollout"]["metadata"]["note"] == "key <REDACTED:aws_access_key>"


def test_a_rollout_redaction_cannot_decode_is_dropped_in_both_modes(tmp_path: Path) -> None:
    # The fast reader skips an unknown key's number without reading it; orjson, which redaction
    # needs for a line with escapes, refuses one out of a double's range.
    line = _rollout(["key \\u0041KIAIOSFODNN7EXAMPLE"])
    line = line.replace(b"\\\\u0041", b"\\u0041")[:-1] + b',"zz":1e400}'
    source = tmp_path / "in.jsonl"
    source.write_bytes(line + b"\n" + _rollout(["hello"]) + b"\n")
    rollouts = [r for r in read_rollouts([str(source)]) if isinstance(r, Rollout)]
    assert len(rollouts) == 2 and "AKIA" in rollouts[0].conversation.prompt[0]["content"]
    for mode in ("replace", "drop"):
        kept, rejects, report = (tmp_path / f"{name}-{mode}" for name in ("kept", "rejects", "report"))
        command = [sys.executable, "-m", "rollcraft.cli", "filter", str(source), "-o", str(kept)]
        command += [
            "--redact-secrets",
            "--on-secret",
            mode,
            "--rejects",
            str(rejects),
            "--report",
            str(report),
        ]
        subprocess.run(command, capture_output=True, check=True)
        assert kept.read_bytes() == _rollout(["hello"]) + b"\n"
        counts = orjson.loads(report.read_bytes())
        assert counts["kept"] == 1 and counts["dropped"] == 1, counts
        (reject,) = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
        assert reject["dropped_by"] == "redact_secrets" and reject["rollout"] is None
