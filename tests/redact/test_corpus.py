"""Redaction on a corpus: planted secrets of every kind in every part of a NeMo Gym record all
found (recall per kind), and look-alikes (hashes, UUIDs, base64 images, proteins, URLs with a user,
dates, numbers failing Luhn) left byte-identical. The corpus is built from a seed by _corpus.py."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from rollcraft import Rollout, read_rollouts
from rollcraft._errors import ConfigError
from rollcraft.redact import PII_KINDS, SECRET_KINDS, Redactor, RedactSecrets
from rollcraft.redact._checks import basic_credentials, card_number, ip_address, luhn, phone_number
from tests.redact._corpus import (
    KINDS,
    PLACES,
    REPEATS,
    Planted,
    gone,
    lookalike_lines,
    planted,
    recall,
    write,
)


@pytest.fixture(scope="module")
def corpus() -> list[Planted]:
    return list(planted())


def test_the_corpus_plants_every_kind_in_every_place(corpus: list[Planted]) -> None:
    assert set(KINDS) == {*SECRET_KINDS, *PII_KINDS}
    cells = Counter((item.kind, item.place) for item in corpus)
    assert set(cells) == {(kind, place) for kind in KINDS for place in PLACES}
    for (kind, _), n in cells.items():
        assert n == REPEATS * len(KINDS[kind])
    assert [item.line for item in planted()] == [item.line for item in corpus]  # from the seed


def test_recall_is_at_least_99_percent_for_every_kind(corpus: list[Planted], tmp_path: Path) -> None:
    result = recall(corpus, tmp_path / "planted.jsonl")
    for kind in KINDS:
        assert result.rate(kind) >= 0.99, (
            kind,
            [(m.place, m.secret) for m in result.missed if m.kind == kind],
        )
        assert result.named[kind] >= 0.95 * result.planted[kind], kind  # named by its own kind


def test_the_places_are_what_they_say(corpus: list[Planted]) -> None:
    by_place = {item.place: item for item in corpus if item.kind == "github_token"}
    record = orjson.loads(by_place["tool_arguments"].line)
    arguments = record["response"]["output"][1]["arguments"]
    assert by_place["tool_arguments"].secret in orjson.loads(arguments)["command"]
    output = record_output = orjson.loads(by_place["json_in_string"].line)["response"]["output"][2]["output"]
    assert by_place["json_in_string"].secret in orjson.loads(record_output)["data"]["log"][0]
    assert output.startswith("{\n")
    escaped = by_place["u_escaped"]
    assert escaped.secret.encode() not in escaped.line and b"\\u00" in escaped.line
    assert not gone(escaped.secret, escaped.line)  # there, once decoded
    assert b"\\u" in by_place["ascii_line"].line


def test_lookalikes_are_left_byte_identical(tmp_path: Path) -> None:
    lines = lookalike_lines()
    path = write(lines, tmp_path / "lookalikes.jsonl")
    step = RedactSecrets()
    rollouts = [r for r in read_rollouts([str(path)]) if isinstance(r, Rollout)]
    assert len(rollouts) == len(lines)
    for rollout, line in zip(rollouts, lines, strict=True):
        result = step.apply(rollout)
        assert result.rollout is rollout and result.rollout.raw == line, result.counts
    assert step.report.redacted == 0 and not step.report.kinds


def test_lookalikes_are_left_alone_with_the_pii_kinds_on() -> None:
    redactor = Redactor(pii=frozenset(PII_KINDS))
    for line in lookalike_lines(pii=True) + lookalike_lines()[:200]:
        assert redactor.redact_line(line) == (line, Counter())


def test_pii_kinds_are_opt_in() -> None:
    text = "call +1 (555) 010-1234 from 203.0.113.42"
    assert Redactor().redact_text(text) == (text, Counter())
    assert Redactor(pii=frozenset({"ip_address"})).redact_text(text)[0] == (
        "call +1 (555) 010-1234 from <REDACTED:ip_address>"
    )
    redacted, counts = Redactor(pii=frozenset(PII_KINDS)).redact_text(text)
    assert redacted == "call <REDACTED:phone_number> from <REDACTED:ip_address>"
    assert counts == Counter({"phone_number": 1, "ip_address": 1})
    assert Redactor(kinds=frozenset({"phone_number"})).redact_text(text)[1] == Counter({"phone_number": 1})
    with pytest.raises(ConfigError, match="unknown PII kinds: email"):
        Redactor(pii=frozenset({"email"}))


def test_loopback_and_versions_are_not_addresses() -> None:
    redactor = Redactor(pii=frozenset(PII_KINDS))
    for text in ("127.0.0.1:8000", "::1", "0.0.0.0", "pyerfa>=2.0.1.3", "Table 5.1.3.1-1", "12:30:45"):
        assert redactor.redact_text(text) == (text, Counter()), text


def test_card_numbers_need_luhn_a_network_and_one_separator() -> None:
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert card_number("4111 1111 1111 1111") and card_number("3782-822463-10005")
    assert not card_number("4111 1111-1111 1111")  # two kinds of separator
    assert not card_number("4111111111111112")  # Luhn
    assert not card_number("1234567812345670")  # passes Luhn, no network starts with 1
    assert card_number("1234 5678 1234 5670")  # written as a card is: any first digit
    assert not card_number("41111 111 1111 1111")  # first group not 4 digits
    redactor = Redactor()
    for text in ("ts 1717171717171", "pi 3.1415926535897932", "id 4111111111111112", "v0.4111111111111111"):
        assert redactor.redact_text(text) == (text, Counter()), text


def test_a_card_number_outside_strings_is_a_number_and_left_alone() -> None:
    line = b'{"n": 4111111111111111, "t": "card 4111-1111-1111-1111", "u": "caf\\u00e9"}'
    new, counts = Redactor().redact_line(line)
    assert new == b'{"n": 4111111111111111, "t": "card <REDACTED:card_number>", "u": "caf\\u00e9"}'
    assert counts == Counter({"card_number": 1})
    clean = b'{"n": 4111111111111111, "t": "no card here"}'
    assert Redactor().redact_line(clean) == (clean, Counter())


def test_basic_credentials_decode_to_user_and_password() -> None:
    assert basic_credentials("YWxpY2U6czNjcjN0") and basic_credentials("YTpi")
    assert not basic_credentials("usage") and not basic_credentials("aGVsbG8gd29ybGQ=")  # no colon
    text = "Basic usage: BASIC YWxpY2U6czNjcjN0UGFzcw== and basic Authentication"
    assert (
        Redactor().redact_text(text)[0] == "Basic usage: BASIC <REDACTED:basic_auth> and basic Authentication"
    )


def test_phone_numbers_and_addresses_checks() -> None:
    assert (
        phone_number("+44 20 7946 0958") and phone_number("(555) 010-1234") and not phone_number("555-0101")
    )
    assert ip_address("203.0.113.7") and ip_address("2001:db8::1")
    assert not ip_address("127.0.0.1") and not ip_address("::1") and not ip_address("1:2:3")


def test_secrets_after_an_escaped_newline_in_json_text_are_found() -> None:
    # JSON inside a string, decoded once: "\n" stays two characters before the secret.
    text = (
        '{"log": "line\\nAKIAY34FZKBOKMUTVV7A\\tghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'
        '\\napi_key=Zk83jdk2LmQ9wq"}'
    )
    redacted, counts = Redactor().redact_text(text)
    assert counts == Counter({"aws_access_key": 1, "github_token": 1, "secret_assignment": 1})
    assert "AKIA" not in redacted and "ghp_" not in redacted and "Zk83" not in redacted


def test_cli_redact_finds_every_default_kind_in_every_place(corpus: list[Planted], tmp_path: Path) -> None:
    items = [item for item in corpus if item.kind in SECRET_KINDS]
    source = write([item.line for item in items], tmp_path / "planted.jsonl")
    target = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "rollcraft.cli", "redact", str(source), "-o", str(target), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = orjson.loads(done.stdout)["redaction"]
    assert report["redacted"] == len(items)
    assert set(report["kinds"]) == set(SECRET_KINDS)
    lines = target.read_bytes().splitlines()
    assert len(lines) == len(items)
    missed = [
        (item.kind, item.place)
        for item, line in zip(items, lines, strict=True)
        if not gone(item.secret, line)
    ]
    assert not missed


def test_each_hint_is_looked_for_by_a_part_of_it_from_a_rare_byte() -> None:
    for redactor in (Redactor(), Redactor(pii=frozenset(PII_KINDS)), Redactor(kinds=frozenset({"email"}))):
        for hint, needs, anchor in redactor._scan:
            assert anchor in hint and 1 <= len(anchor) <= 4, hint
            assert needs is None or anchor not in needs or len(hint) <= 2, hint
    anchors = {hint: anchor for hint, _, anchor in Redactor()._scan}
    assert anchors[b"apikey"] == b"pike" and anchors[b"token"] == b"ken" and anchors[b"@"] == b"@"
