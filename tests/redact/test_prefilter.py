"""The one-scan prefilter (:mod:`rollcraft.redact._prefilter`) finds what the searches one by one
find: the same plan of every line, the same bytes and counts, on the real files, the planted
secrets, the look-alikes and lines made to be hard (escapes, case, digits, gates' edges)."""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator

import orjson
import pytest

from rollcraft.redact import PII_KINDS, Redactor
from rollcraft.redact._prefilter import _any_digit, _expressions, line_scan
from tests.conftest import real_files
from tests.redact._corpus import lookalike_lines, planted

pytest.importorskip("hyperscan")  # a core dependency where it has wheels; elsewhere nothing to test

REDACTORS = {
    "default": (Redactor(), Redactor(prefilter=False)),
    "pii": (Redactor(pii=frozenset(PII_KINDS)), Redactor(pii=frozenset(PII_KINDS), prefilter=False)),
    "some kinds": (
        Redactor(kinds=frozenset({"aws_access_key", "card_number", "email"})),
        Redactor(kinds=frozenset({"aws_access_key", "card_number", "email"}), prefilter=False),
    ),
}


def _hard_lines() -> Iterator[bytes]:
    """Lines at the edges: hints in any case, behind escapes, split by them; every gate's first
    step met but not its second; digit runs and card numbers next to letters and escapes."""
    texts = [
        "TOKEN=abc123XYZ987 and Api_Key: 9f8e7d6c5b4a",
        "AKIAIOSFODNN7EXAMPLE akiaiosfodnn7example AKIA",
        "4111 1111 1111 1111, 4111-1111-1111-1111, 41111111111111111111, x4111111111111111",
        "\\n4111111111111111 and 1.4111111111111111 and 0000000000000",
        "Authorization: Basic dXNlcjpwYXNzd29yZA== / basic usage / BASIC dXNlcjpw",
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw and :AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "glpat-abcdefghij0123456789 glxx-abcdefghij0123456789abc",
        "https://user:hunter2@db.local/x https://user@host mailto:someone@example.org",
        "sig=abcdefghijklmnopqrstuvwxyz012345 SG.abcdefghijklmnop.qrstuvwxyz",
        "call +1 (555) 010-1234 from 203.0.113.42 or fe80::1ff:fe23:4567:890a",
        "pass\u0077ord: Tr0ub4dor!3 and PASSWORD=S3cr3t!x",
        "nothing to see here, only words and 12 numbers",
    ]
    for text in texts:
        yield orjson.dumps({"text": text, "n": 1})
        yield orjson.dumps({"a": {"b": [text]}}, option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
        escaped = orjson.dumps({"text": text}).replace(b"o", b"\\u006f").replace(b"/", b"\\/")
        yield escaped
        yield orjson.dumps({"text": text.upper(), "key": text.lower()})
        yield orjson.dumps({"password": text[:40], "api_key": text[-30:]})


def _lines() -> Iterator[bytes]:
    for path in real_files():
        yield from (line for line in path.read_bytes().splitlines() if line.strip())
    yield from (p.line for p in planted())
    yield from lookalike_lines()
    yield from lookalike_lines(pii=True)
    yield from _hard_lines()


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return list(_lines())


@pytest.mark.parametrize("name", sorted(REDACTORS))
def test_the_scan_plans_and_redacts_every_line_as_the_searches_do(name: str, lines: list[bytes]) -> None:
    fast, plain = REDACTORS[name]
    assert fast._line_scan is not None and plain._line_scan is None
    changed = 0
    for line in lines:
        for checked in (True, False):
            try:
                expected = plain._plan(line, checked)
            except Exception as exc:  # a line that is not JSON: both raise the same
                with pytest.raises(type(exc)):
                    fast._plan(line, checked)
                continue
            assert fast._plan(line, checked) == expected, line[:200]
        result = fast.redact_line(line)
        assert result == plain.redact_line(line), line[:200]
        changed += result[0] != line
    assert changed > 500  # the planted secrets were found (by both)


def test_the_scan_pickles_as_what_it_is_built_from() -> None:
    scan = Redactor()._line_scan
    assert scan is not None
    again = pickle.loads(pickle.dumps(scan))
    line = b'{"url": "https://u:hunter2@db.local/x", "k": "AKIAIOSFODNN7EXAMPLE"}'
    assert again is not None and again(line) == scan(line) and scan(line)[0]


class _OwnGate:
    """A gate of a kind the scan does not know: it has no expression to scan for."""

    def search(self, line: bytes, /) -> bool:
        return b"x" in line


def test_a_gate_without_an_expression_runs_on_every_line() -> None:
    scan = line_scan([b"key"], [_OwnGate()])
    assert scan is not None
    assert scan(b"nothing") == (set(), {0})
    assert scan(b"a KEY") == ({b"key"}, {0})


def test_a_gate_hyperscan_cannot_compile_runs_on_every_line() -> None:
    empty = re.compile(rb"x*")  # matches the empty string: Hyperscan refuses it
    scan = line_scan([b"key"], [re.compile(rb"AKIA"), empty])
    assert scan is not None
    assert scan(b"a KEY") == ({b"key"}, {1})
    assert scan(b"AKIA") == (set(), {0, 1})


def test_a_line_of_digits_made_zero_reads_as_any_digit() -> None:
    assert _any_digit(rb"0\.0{1,3}\.0") == rb"[0-9]\.[0-9]{1,3}\.[0-9]"
    assert _any_digit(rb"0(?:[ .\-()]{0,2}0){7}") == rb"[0-9](?:[ .\-()]{0,2}[0-9]){7}"
    assert _any_digit(rb"[0A-Z]0") == rb"[0-9A-Z][0-9]"
    assert _any_digit(rb"0[^0]") is None  # a negated class with a digit: not a superset
    assert _any_digit(rb"05") is None  # another digit on a line of zeros matches nothing
    assert _expressions(object()) is None  # a gate of an unknown kind: run on every line


def test_every_default_gate_is_in_the_scan() -> None:
    redactor = Redactor(pii=frozenset(PII_KINDS))
    assert redactor._line_scan is not None
    assert not redactor._line_scan._always  # no gate runs on every line: each has its expression
