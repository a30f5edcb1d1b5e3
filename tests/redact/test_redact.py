"""Secret and PII redaction: planted secrets all found and counted, ordinary text left alone."""

from __future__ import annotations

import os
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
    ("password", 'db = connect(password="hunter2Xy9!q")', "hunter2Xy9!q"),
    ("secret_assignment", "api_key: Zk83jdk2LmQ9wq", "Zk83jdk2LmQ9wq"),
    ("secret_assignment", "MY_SERVICE_API_KEY=Zk83jdk2LmQ9wq", "Zk83jdk2LmQ9wq"),
    # Passwords: human-chosen, so found by their name and context, not by how random they look.
    ("password", "DB_PASSWORD=hunter2xyz", "hunter2xyz"),
    ("password", "PGPASSWORD=s3cretpass psql -h db -U app", "s3cretpass"),
    ("password", "docker run -e MYSQL_ROOT_PASSWORD=rootpw123 mysql:8", "rootpw123"),
    ("password", 'export X_PASSWORD="abc def12"', "abc def12"),
    ("password", "config:\n  password: some words here\n  user: app", "some words here"),
    ("password", "psql 'host=db password=Tr0ub4dor!3 dbname=app'", "Tr0ub4dor!3"),
    # AWS credentials as `aws sts assume-role` / `get-session-token` print them.
    (
        "aws_secret_key",
        '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",\n'
        '  "Expiration": "2025-01-01T00:00:00Z"',
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws_session_token",
        '"SessionToken": "FwoGZXIvYXdzEBYaDHabc123def456ghi789jkl/+mnoPQRstu==",',
        "FwoGZXIvYXdzEBYaDHabc123def456ghi789jkl/+mnoPQRstu==",
    ),
    # The kinds of tests/redact/test_corpus.py (there in every place of a record, many values each).
    ("gitlab_token", "GITLAB_TOKEN=glpat-Ab3dE5gH7jK9mN1pQ3sT", "glpat-Ab3dE5gH7jK9mN1pQ3sT"),
    (
        "npm_token",
        "//registry.npmjs.org/:_authToken=npm_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fGh",
        "npm_aB3dE5gH7jK9",
    ),
    (
        "sendgrid_api_key",
        "SENDGRID=SG.Ab3dE5gH7jK9mN1pQ3sT5v.Wx7yZ9bC1dE3fG5hJ7kL9mN1pQ3sT5vW7yZ9bC1dE3f",
        "SG.Ab3dE5gH7jK9mN1pQ3sT5v",
    ),
    ("twilio_key", "sid AC0f1e2d3c4b5a69780f1e2d3c4b5a6978 ok", "AC0f1e2d3c4b5a69780f1e2d3c4b5a6978"),
    (
        "azure_storage_key",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7kL9mN1pQ==;"
        "EndpointSuffix=core.windows.net",
        "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5hJ7kL9mN1pQ==",
    ),
    (
        "azure_sas_token",
        "https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=Ab3dE5gH7jK9mN1pQ3sT5vW7%2Bz%3D",
        "Ab3dE5gH7jK9mN1pQ3sT5vW7%2Bz%3D",
    ),
    (
        "telegram_bot_token",
        "bot 1234567890:AAHd3T5vW7yZ9bC1dE3fG5hJ7kL9mN1pQ3s",
        "AAHd3T5vW7yZ9bC1dE3fG5hJ7kL9mN1pQ3s",
    ),
    (
        "databricks_token",
        "DATABRICKS_TOKEN=dapi0f1e2d3c4b5a69780f1e2d3c4b5a6978",
        "dapi0f1e2d3c4b5a69780f1e2d3c4b5a6978",
    ),
    ("basic_auth", "Authorization: Basic YWxpY2U6czNjcjN0UGFzcw==", "YWxpY2U6czNjcjN0UGFzcw=="),
    ("card_number", "paid with 4111 1111 1111 1111 yesterday", "4111 1111 1111 1111"),
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

# Strings that look like secrets or addresses and are neither: redaction must not change a byte.
LOOKALIKES = [
    "https://user@example.com:8443/",
    "ssh://deploy@build.example.org/srv/repo.git and ftp://anon@ftp.example.net/pub",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b (abbrev 3f78685, 9fceb02d0ae5)",
    "550e8400-e29b-41d4-a716-446655440000 and {123E4567-E89B-12D3-A456-426614174000}",
    "md5 d41d8cd98f00b204e9800998ecf8427e sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
    "docker pull nvcr.io/nvidia/nemo@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
    "root@a1b2c3d4e5f6:/testbed# ls; npm i @types/node@18.19.3 lodash@4.17.21",
    "PWD=/workspace/repo2 OLDPWD=/home/user1; cd /x; pwd = /home/user2/project",
    "password_hash = bcrypt.hashpw(pw, salt); --password-file=/run/secrets/db_password",
    "AWS_SESSION_TOKEN=${AWS_SESSION_TOKEN}; self.session_token = session_token",
    '"SessionTokenExpiry": 3600, "session_token_ttl": 900',
    'if password == "":\n    raise ValueError("password: must not be empty")',
    "def check_password(password: str) -> bool:\n    password = get_password()",
    "connect(user=user, password=password); password=self.password; passwd = conn.get('password', '')",
    'getpass(\'Password: \'); print("password:", pw, "x")',
    "passwd: all authentication tokens updated successfully.",
    "New password: Retype new password: passwd: password updated successfully",
    "passwd: Authentication token manipulation error\nif passwd:\n    os.environ['PGPASSFILE'] = f",
    '"password": {"type": "string", "minLength": 8}, "password": null',
    'password: ${DB_PASSWORD}\npassword: "{{ vault_db_password }}"\nPOSTGRES_PASSWORD: example',
    "password: str = Field(..., min_length=8)\npassword: Optional[str] = None",
    "Password: must have at least 8 characters",
    "base64 aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Q= and hex 0x7fffffffffffffff; v1.2.3+build.4567",
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
    # Real addresses (git authors, SQL rows, simulated users), and one real password: an INI file
    # a hermes agent reads holds ``password=pāssw0...cōde``.
    assert found.keys() == {"email", "password"} and found["password"] == 1


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
    "DB_",
    "PG",
    "PASSWORD",
    "Passwd",
    "passwd",
    "--",
    "export ",
    "\\n",
    '\\"',
    "some words",
    " #",
    "\t",
    "x" * 40,
    "aws",
    "AWS_",
    "SecretAccessKey",
    "secret_access_key",
    "SessionToken",
    "session-token",
    "Session",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "FwoGZXIvYXdzEBYaDH",
    "==",
    "/",
]


_STARTED = [p for p in _PATTERNS if p.starts is not None]


def test_the_patterns_with_their_own_starts() -> None:
    kinds = [
        "aws_secret_key",
        "aws_session_token",
        "url_password",
        "password",
        "password",
        "secret_assignment",
    ]
    assert [p.kind for p in _STARTED] == [*kinds, "email"]


@pytest.mark.parametrize("pattern", _STARTED, ids=[f"{p.kind}-{i}" for i, p in enumerate(_STARTED)])
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=24))
def test_matching_only_at_possible_starts_finds_what_sub_finds(pattern: Any, pieces: list[str]) -> None:
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


def test_replace_mode_searches_only_what_is_written_and_the_rejects_are_redacted(tmp_path: Path) -> None:
    """Replace mode redacts the rollouts written (after the filters): a rollout another filter
    drops is not searched, and in a rejects file it is written redacted all the same."""
    source = tmp_path / "in.jsonl"
    failed = _rollout(["key AKIAIOSFODNN7EXAMPLE", "x"]).replace(b'"reward":1.0', b'"reward":0.0')
    source.write_bytes(_rollout(["mail bob@corp.io"]) + b"\n" + failed + b"\n")
    kept, rejects, report = (tmp_path / name for name in ("kept.jsonl", "rejects.jsonl", "report.json"))
    command = [sys.executable, "-m", "rollcraft.cli", "filter", str(source), "-o", str(kept)]
    command += ["--min-reward", "1", "--redact-secrets", "--rejects", str(rejects), "--report", str(report)]
    subprocess.run(command, capture_output=True, check=True)
    assert b"<REDACTED:email>" in kept.read_bytes() and b"bob@corp.io" not in kept.read_bytes()
    (reject,) = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert reject["dropped_by"] == "min_reward" and reject["rollout"]["reward"] == 0.0
    assert reject["rollout"]["metadata"]["note"] == "key <REDACTED:aws_access_key>"
    counts = orjson.loads(report.read_bytes())
    assert (counts["kept"], counts["dropped"]) == (1, 1)
    assert counts["redaction"] == {"rollouts": 1, "redacted": 1, "dropped": 0, "kinds": {"email": 3}}


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


# ---------------------------------------------------------------------------------------------
# Every kind in every part of a record, through the API and the real CLI (issue #23, items 6-7)


def _every_part(text: str, *, reward: float = 1.0) -> bytes:
    """A NeMo Gym rollout with ``text`` in each of its six parts: system prompt, user text,
    reasoning, tool-call arguments (JSON text), tool output and final answer."""
    record: dict[str, Any] = {
        "responses_create_params": {
            "input": [{"role": "system", "content": f"system {text}"}, {"role": "user", "content": text}]
        },
        "response": {
            "output": [
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": f"thinking {text}"}]},
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "run",
                    "arguments": orjson.dumps({"cmd": text}).decode(),
                },
                {"type": "function_call_output", "call_id": "c1", "output": f"result: {text}"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"answer {reward} {text}"}],
                },
            ]
        },
        "reward": reward,
    }
    return orjson.dumps(record)


_PARTS = 6
# A failed attempt's class is shown (terminal, --report, manifest) as the quarantine detail.
_FAILURE = "ConnectionError: postgres://admin:S3cretPass@db/prod PGPASSWORD=hunter2xyz AKIAIOSFODNN7EXAMPLE"
_UNKNOWN_KEY = "sk-ant-api03-Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7-_zYxWvUtSrQpOnMlKjIhGf"
_DEEP_SECRETS = ("AKIAY34FZKBOKMUTVV7A", "deep.secret@corp.io", "nestedpass9")


def _deep_line(depth: int) -> bytes:
    """A rollout with an extra field nested ``depth`` deep (orjson encodes at most 255) whose
    string has ``\\u`` escapes, one hiding an AWS key's first letter; a password in the prompt."""
    deep = b'"caf\\u00e9 \\u0041KIAY34FZKBOKMUTVV7A deep.secret@corp.io"'
    line = _every_part("login with DB_PASSWORD=nestedpass9")
    return line[:-1] + b',"extra":' + b"[" * depth + deep + b"]" * depth + b"}"


def _secrets() -> list[str]:
    return [secret for _, _, secret in PLANTED] + [_UNKNOWN_KEY, "S3cretPass", *_DEEP_SECRETS]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every planted text in every part, each task with a good and a bad rollout (for DPO);
    the look-alikes in every part; a deep line; a failed attempt and an unknown record."""
    lines = [_every_part(text, reward=r) for _, text, _ in PLANTED for r in (1.0, 0.0)]
    lines += [_every_part("\n".join(LOOKALIKES), reward=r) for r in (1.0, 0.0)]
    lines.append(_deep_line(300))
    failed = orjson.loads(_every_part("hi"))
    lines.append(orjson.dumps({**failed, "_ng_failure_class": _FAILURE}))
    lines.append(orjson.dumps({_UNKNOWN_KEY: 1, "note": "x"}))
    path = tmp_path_factory.mktemp("planted") / "planted.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


_ROLLOUTS = 2 * len(PLANTED) + 2 + 1
_QUARANTINED = {"failed_attempt": 1, "unknown_schema": 1}


def test_api_every_kind_in_every_part_and_the_lookalikes_untouched(planted: Path) -> None:
    step = RedactSecrets()
    items = list(step.redact_items(read_rollouts([str(planted)])))
    results = [step.apply(item) for item in items if isinstance(item, Rollout)]
    rollouts = [r.rollout for r in results if r.rollout is not None]
    assert len(rollouts) == _ROLLOUTS
    quarantined = [str(i) for i in items if not isinstance(i, Rollout)]
    written = b"\n".join(r.raw for r in rollouts) + orjson.dumps(quarantined)
    for secret in _secrets():
        assert secret.encode() not in written, secret
    expected: Counter[str] = Counter()
    for kind, _, _ in PLANTED:
        expected[kind] += 2 * _PARTS
    expected.update({"password": _PARTS, "aws_access_key": 1, "email": 1})  # the deep line
    assert step.report.kinds == expected
    lookalikes = planted.read_bytes().splitlines()[2 * len(PLANTED) : 2 * len(PLANTED) + 2]
    assert [r.raw for r in rollouts[2 * len(PLANTED) : 2 * len(PLANTED) + 2]] == lookalikes


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert Redactor().redact_text(text) == (text, Counter())
    line = _every_part(text)
    assert Redactor().redact_line(line)[0] is line


def test_aws_sts_output_is_redacted() -> None:
    printed = orjson.dumps(
        {
            "Credentials": {
                "AccessKeyId": "ASIAY34FZKBOKMUTVV7A",
                "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "SessionToken": "FwoGZXIvYXdzEBYaDHabc123def456ghi789jkl/+mnoPQRstu==",
                "Expiration": "2025-01-01T00:00:00+00:00",
            }
        },
        option=orjson.OPT_INDENT_2,
    ).decode()
    text, counts = Redactor().redact_text(printed)
    assert counts == Counter({"aws_access_key": 1, "aws_secret_key": 1, "aws_session_token": 1})
    assert "<REDACTED:aws_session_token>" in text and "2025-01-01" in text
    # As keys of the record itself, too.
    line, counts = Redactor().redact_line(orjson.dumps(orjson.loads(printed)["Credentials"]))
    assert counts == Counter({"aws_access_key": 1, "aws_secret_key": 1, "secret_assignment": 1})
    assert b"wJalr" not in line and b"FwoG" not in line


def test_password_keys_mark_their_values() -> None:
    raw = (
        b'{"PGPASSWORD": "s3cretpass", "db.password": "hunter", "has_password": "true", "password": "short"}'
    )
    new, counts = Redactor().redact_line(raw)
    assert new == (
        b'{"PGPASSWORD": "<REDACTED:password>", "db.password": "<REDACTED:password>", '
        b'"has_password": "true", "password": "short"}'
    )
    assert counts == Counter({"password": 2})
    assert Redactor(kinds=frozenset({"email"})).redact_line(raw) == (raw, Counter())


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_line_nested_deeper_than_orjson_encodes_is_redacted(depth: int) -> None:
    line = _deep_line(depth)
    new, counts = Redactor().redact_line(line)
    assert counts == Counter({"password": _PARTS, "aws_access_key": 1, "email": 1})
    for secret in _DEEP_SECRETS:
        assert secret.encode() not in new
    assert '"café <REDACTED:aws_access_key> <REDACTED:email>"'.encode() in new
    (rollout,) = parse_rollouts(line)
    for mode in ("replace", "drop"):
        result = RedactSecrets(on_secret=mode).apply(rollout)  # type: ignore[arg-type]
        assert (result.rollout is None) == (mode == "drop") and result.counts == counts


def parse_rollouts(line: bytes) -> list[Rollout]:
    from rollcraft._io import RawLine
    from rollcraft.read._reader import ReadOptions, parse_line

    item = parse_line(RawLine("x.jsonl", 1, 0, line), ReadOptions())
    assert isinstance(item, Rollout), item
    return [item]


def test_quarantine_details_are_redacted_and_the_same_object_when_clean(planted: Path) -> None:
    step = RedactSecrets(on_secret="drop")
    items = list(step.redact_items(read_rollouts([str(planted)])))
    details = [q.detail for q in items if not isinstance(q, Rollout)]
    assert details == [
        "failed attempt: ConnectionError: postgres://admin:<REDACTED:url_password>@db/prod "
        "PGPASSWORD=<REDACTED:password> <REDACTED:aws_access_key>",
        "keys: note, <REDACTED:anthropic_api_key>",
    ]
    assert step.report.rollouts == 0  # drop mode: rollouts pass on, the drop step judges them
    (clean,) = [q for q in read_rollouts([str(planted)]) if not isinstance(q, Rollout)][:1] or [None]
    assert clean is not None
    quiet = RedactSecrets(redactor=Redactor(kinds=frozenset({"jwt"})))
    assert quiet.redact_quarantined(clean) is clean


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "2000", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rollcraft.cli", *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def _assert_no_secret(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for secret in _secrets():
            assert secret.encode() not in data, secret


def _files(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()]


@pytest.mark.parametrize("mode", ["replace", "drop"])
def test_cli_redact_every_kind_every_part(planted: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out.jsonl"
    done = _cli("redact", str(planted), "-o", str(out), "--on-secret", mode, "--json")
    report = orjson.loads(done.stdout)
    assert report["read"] == {"lines": _ROLLOUTS + 2, "rollouts": _ROLLOUTS, "quarantined": _QUARANTINED}
    written = out.read_bytes().splitlines()
    assert len(written) == report["redaction"]["rollouts"] - report["redaction"]["dropped"]
    assert len(written) == (_ROLLOUTS if mode == "replace" else 2)  # drop: the two look-alike rollouts
    _assert_no_secret(done.stdout, done.stderr, out.read_bytes())


@pytest.mark.parametrize(
    ("command", "mode"), [("filter", "replace"), ("filter", "drop"), ("sft", "replace"), ("dpo", "replace")]
)
def test_cli_redact_secrets_flag_every_kind_every_part_and_quarantine_details(
    planted: Path, tmp_path: Path, command: str, mode: str
) -> None:
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    args = [command, str(planted), "-o", str(out), "--redact-secrets", "--on-secret", mode]
    if command == "filter":
        args += ["--rejects", str(tmp_path / "rejects.jsonl")]
    done = _cli(*args, "--report", str(report))
    _assert_no_secret(done.stdout, done.stderr, *_files(tmp_path))
    assert "<REDACTED:url_password>" in done.stdout + done.stderr  # the failed attempt's detail
    if command == "filter":
        counts = orjson.loads(report.read_bytes())
        assert counts["lines"] == counts["rollouts"] + sum(counts["quarantined"].values())
        assert counts["kept"] + counts["dropped"] == counts["rollouts"] == _ROLLOUTS
        assert counts["quarantined"] == _QUARANTINED
        assert counts["kept"] == (_ROLLOUTS if mode == "replace" else 2)


@pytest.mark.parametrize("mode", ["replace", "drop"])
def test_pipeline_redact_every_kind_every_part_and_quarantine_details(
    planted: Path, tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"inputs: [{planted}]\noutput_dir: {tmp_path / 'training'}\nredact:\n  on_secret: {mode}\n"
        "sft:\n  format: trl\ndpo:\n  format: trl\n",
        encoding="utf-8",
    )
    done = _cli("run", str(config))
    _assert_no_secret(done.stdout, done.stderr, *_files(tmp_path / "training"))
    (manifest,) = (tmp_path / "training").glob("v*/manifest.json")
    counts = orjson.loads(manifest.read_bytes())["counts"]
    read, kept = counts["read"], counts["filter"]
    assert read["lines"] == read["rollouts"] + sum(read["quarantined"].values()) == _ROLLOUTS + 2
    assert kept["kept"] + kept["dropped"] == read["rollouts"] == _ROLLOUTS
    details = " ".join(q["detail"] for q in read["first_quarantined"])
    assert "PGPASSWORD=<REDACTED:password>" in details and "<REDACTED:anthropic_api_key>" in details


def test_cli_redact_on_failed_attempts_only_says_so_without_their_secrets(tmp_path: Path) -> None:
    source = tmp_path / "failed.jsonl"
    source.write_bytes(
        orjson.dumps({**orjson.loads(_every_part("hi")), "_ng_failure_class": _FAILURE}) + b"\n"
    )
    command = [
        sys.executable,
        "-m",
        "rollcraft.cli",
        "redact",
        str(source),
        "-o",
        str(tmp_path / "out.jsonl"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "2000"})
    assert done.returncode == 2 and "failed attempt" in done.stderr and "Traceback" not in done.stderr
    assert "<REDACTED:url_password>" in done.stderr
    _assert_no_secret(done.stdout, done.stderr)
