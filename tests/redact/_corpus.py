"""The planted-secret corpus and the look-alike corpus, built from a seed (no secret is stored).

Each planted record is a NeMo Gym rollout (the shape in ../shared/docs/rollout-format.md: a system
and a user message in ``responses_create_params.input``; reasoning, a function call, its output
and the final answer in ``response.output``) holding one fake secret in one place: the system
prompt, the user text, the tool-call arguments (JSON text), the tool output, the reasoning, the
final answer, the metadata, JSON inside a string (a tool output that is a JSON document), the
line with the secret's characters written as ``\\u`` escapes, and a line written ASCII-only
(``\\u`` escapes around the secret). The sentence frames and fixed look-alikes are in
``tests/redact/corpus/``.

``python -m tests.redact._corpus`` prints the recall per kind as a Markdown table (the figures in
docs/redaction.md), and how many look-alike lines redaction changes.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import string
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rollcraft import Rollout, read_rollouts
from rollcraft.redact import PII_KINDS, Redactor, RedactSecrets

CORPUS = Path(__file__).resolve().parent / "corpus"
SEED = 20240229
#: Secrets written each way in each place (each a new value, in a new frame).
REPEATS = 3
_ALNUM = string.ascii_letters + string.digits
_URLSAFE = _ALNUM + "_-"
_B64 = _ALNUM + "+/"
_HEX = "0123456789abcdef"

Phrase = tuple[str, str]  # (the text planted, the secret in it that must disappear)


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """``n`` characters of ``alphabet`` with at least one letter and one digit."""
    while True:
        value = _s(rng, alphabet, n)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str(-total % 10)


def _card(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + _s(rng, "0123456789", length - len(prefix) - 1)
    return body + _luhn_digit(body)


def _grouped(number: str, sep: str, sizes: tuple[int, ...]) -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at : at + size])
        at += size
    return sep.join(p for p in parts if p)


def _pem(rng: random.Random, label: str) -> Phrase:
    lines = [_s(rng, _B64, 64) for _ in range(rng.randint(3, 6))] + [_s(rng, _B64, 20) + "=="]
    head = "Version: GnuPG v2\n\n" if "PGP" in label else ""
    block = f"-----BEGIN {label}-----\n{head}" + "\n".join(lines) + f"\n-----END {label}-----"
    return block, lines[0]


def _jwt(rng: random.Random) -> Phrase:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    payload = part({"sub": _s(rng, _ALNUM, 10), "iat": rng.randint(10**9, 2 * 10**9)})
    token = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{payload}.{_s(rng, _URLSAFE, 43)}"
    return token, payload


def _basic(rng: random.Random, header: str) -> Phrase:
    creds = base64.b64encode(
        f"{_s(rng, string.ascii_lowercase, 6)}:{_mixed(rng, _ALNUM, 12)}".encode()
    ).decode()
    return header.format(creds), creds


def _password(rng: random.Random) -> str:
    return _mixed(rng, _ALNUM, rng.randint(6, 8)) + rng.choice("!#%*+-_") + _mixed(rng, _ALNUM, 4)


def _phone(form: str) -> Maker:
    def make(rng: random.Random) -> Phrase:
        area, cc = str(rng.randint(201, 989)), str(rng.randint(30, 49))
        a, b, x, y = (_s(rng, string.digits, n) for n in (3, 4, 2, 4))
        number = form.format(area=area, a=a, b=b, cc=cc, x=x, y=y)
        return number, number

    return make


Maker = Callable[[random.Random], Phrase]


def _key(template: str, value: Callable[[random.Random], str]) -> Maker:
    """A kind written as ``template`` around a value; the value is the secret."""

    def make(rng: random.Random) -> Phrase:
        secret = value(rng)
        return template.format(secret), secret

    return make


def _token(prefix: str, alphabet: str, n: int, template: str = "{}", suffix: str = "") -> Maker:
    """A key with a fixed prefix and ``n`` characters of ``alphabet``."""
    return _key(template, lambda rng: prefix + _s(rng, alphabet, n) + suffix)


def _mixed_value(alphabet: str, n: int, prefix: str = "") -> Callable[[random.Random], str]:
    return lambda rng: prefix + _mixed(rng, alphabet, n)


def _card_value(
    prefix: Callable[[random.Random], str], length: int, sep: str = "", sizes: tuple[int, ...] = ()
) -> Maker:
    def value(rng: random.Random) -> str:
        number = _card(rng, prefix(rng), length)
        return _grouped(number, sep, sizes) if sep else number

    return _key("{}", value)


def _sas(template: str) -> Maker:
    return _key(template, lambda rng: urllib.parse.quote(_s(rng, _B64, 43) + "=", safe=""))


def _url(scheme: str) -> Maker:
    def make(rng: random.Random) -> Phrase:
        user, password = _s(rng, string.ascii_lowercase, 6), _mixed(rng, _ALNUM, 14)
        return f"{scheme}://{user}:{password}@db{rng.randint(1, 9)}.example.com:5432/app", password

    return make


def _webhook(rng: random.Random) -> Phrase:
    team, bot, secret = _s(rng, _UPPER, 8), _s(rng, _UPPER, 10), _s(rng, _ALNUM, 24)
    return f"https://hooks.slack.com/services/T{team}/B{bot}/{secret}", secret


def _slack(prefix: str) -> Maker:
    return _key(
        "{}", lambda r: f"{prefix}-{_s(r, string.digits, 12)}-{_s(r, string.digits, 13)}-{_s(r, _ALNUM, 24)}"
    )


def _telegram(template: str) -> Maker:
    return _key(template, lambda r: f"{r.randint(10**7, 10**10 - 1)}:AA{_s(r, _URLSAFE, 33)}")


def _ipv4(rng: random.Random) -> str:
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


_UPPER = string.ascii_uppercase + string.digits
_LOWER = string.ascii_lowercase
_PEMS = (
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "DSA PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PRIVATE KEY",
    "PGP PRIVATE KEY BLOCK",
)

# Each kind: the ways to write one, each a function of the seeded generator.
KINDS: dict[str, list[Maker]] = {
    "private_key": [functools.partial(_pem, label=label) for label in _PEMS],
    "aws_access_key": [_token("AKIA", _UPPER, 16), _token("ASIA", _UPPER, 16, "aws_access_key_id={}")],
    "aws_secret_key": [
        _key(template, _mixed_value(_B64, 40))
        for template in (
            "aws_secret_access_key = {}",
            '"SecretAccessKey": "{}"',
            "export AWS_SECRET_ACCESS_KEY={}",
        )
    ],
    "aws_session_token": [
        _key("AWS_SESSION_TOKEN={}", _mixed_value(_B64, 120, "FwoGZXIvYXdzE")),
        _key('"SessionToken": "{}"', _mixed_value(_B64, 200, "IQoJb3JpZ2lu")),
    ],
    "github_token": [
        *(_token(prefix, _ALNUM, 36) for prefix in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
        _key("{}", lambda r: f"github_pat_11{_s(r, _ALNUM, 20)}_{_s(r, _ALNUM, 59)}"),
    ],
    "anthropic_api_key": [_token("sk-ant-api03-", _URLSAFE, 93, suffix="AA")],
    "openai_api_key": [
        _key("{}", _mixed_value(_URLSAFE, 120, "sk-proj-")),
        _key("{}", lambda r: f"sk-{_mixed(r, _ALNUM, 20)}T3BlbkFJ{_mixed(r, _ALNUM, 20)}"),
        _key("{}", _mixed_value(_URLSAFE, 60, "sk-svcacct-")),
    ],
    "slack_token": [_slack(prefix) for prefix in ("xoxb", "xoxp", "xoxa")],
    "slack_webhook": [_webhook],
    "google_api_key": [_token("AIza", _URLSAFE, 35)],
    "stripe_key": [_token(prefix, _ALNUM, 24) for prefix in ("sk_live_", "sk_test_", "rk_live_")],
    "huggingface_token": [_token("hf_", _ALNUM, 34)],
    "nvidia_api_key": [_token("nvapi-", _URLSAFE, 64)],
    "gitlab_token": [
        _token(prefix, _URLSAFE, 20) for prefix in ("glpat-", "gldt-", "glrt-", "glptt-", "gloas-")
    ],
    "npm_token": [
        _token("npm_", _ALNUM, 36),
        _token("npm_", _ALNUM, 36, "//registry.npmjs.org/:_authToken={}"),
    ],
    "sendgrid_api_key": [_key("{}", lambda r: f"SG.{_s(r, _URLSAFE, 22)}.{_s(r, _URLSAFE, 43)}")],
    "twilio_key": [_token("AC", _HEX, 32), _token("SK", _HEX, 32)],
    "azure_storage_key": [
        _token(
            "",
            _B64,
            86,
            "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={};EndpointSuffix=core.windows.net",
            "==",
        ),
        _token(
            "",
            _B64,
            43,
            "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey={}",
            "=",
        ),
    ],
    "azure_sas_token": [
        _sas(
            "https://acct.blob.core.windows.net/data/file.csv?sv=2022-11-02&ss=b&srt=sco&sp=rl"
            "&se=2030-01-01T00:00:00Z&spr=https&sig={}"
        ),
        _sas("SharedAccessSignature=sv=2021-06-08&ss=bfqt&sp=rwdlac&sig={}"),
    ],
    "telegram_bot_token": [_telegram("{}"), _telegram("https://api.telegram.org/bot{}/sendMessage")],
    "databricks_token": [_token("dapi", _HEX, 32), _token("dapi", _HEX, 32, suffix="-2")],
    "basic_auth": [
        _key(
            template,
            lambda r: base64.b64encode(f"{_s(r, _LOWER, 6)}:{_mixed(r, _ALNUM, 12)}".encode()).decode(),
        )
        for template in (
            "Authorization: Basic {}",
            "curl -H 'Authorization: Basic {}' https://api.example.com/v1",
            '{{"headers": {{"Authorization": "Basic {}"}}}}',
        )
    ],
    "jwt": [_jwt],
    "bearer_token": [_key("Authorization: Bearer {}", _mixed_value(_ALNUM + "-._~", 40))],
    "url_password": [
        _url(scheme) for scheme in ("postgres", "mysql", "redis", "https", "mongodb+srv", "amqp", "ftp")
    ],
    "password": [
        _key(template, _password)
        for template in (
            "DB_PASSWORD={}",
            'db.connect(user="app", password="{}")',
            "PGPASSWORD={} psql -h db -U app",
            "mysql --password={} app",
            "database:\n  password: {}\n  user: app",
        )
    ],
    "secret_assignment": [
        _key(name + "{}", _mixed_value(_ALNUM, 24))
        for name in ("api_key=", "client_secret: ", "ACCESS_TOKEN=", "auth_token = '", "MY_SERVICE_API_KEY=")
    ],
    "email": [
        _key("{}", lambda r: f"{_s(r, _LOWER, 5)}.{_s(r, _LOWER, 7)}@{_s(r, _LOWER, 6)}.com"),
        _key("{}", lambda r: f"{_s(r, _LOWER, 4)}+tag{r.randint(1, 99)}@mail.{_s(r, _LOWER, 5)}.co.uk"),
    ],
    "card_number": [
        _card_value(lambda r: "4", 16),
        _card_value(lambda r: "4", 16, " ", (4, 4, 4, 4)),
        _card_value(lambda r: str(r.randint(51, 55)), 16, "-", (4, 4, 4, 4)),
        _card_value(lambda r: r.choice(("34", "37")), 15, " ", (4, 6, 5)),
        _card_value(lambda r: "6011", 16),
        _card_value(lambda r: "4", 13),
        _card_value(lambda r: f"35{r.randint(28, 89)}", 16, " ", (4, 4, 4, 4)),
        _card_value(lambda r: str(r.randint(1, 9)), 16, "-", (4, 4, 4, 4)),  # grouped: any network
    ],
    "phone_number": [
        _phone(form)
        for form in (
            "+1 ({area}) {a}-{b}",
            "({area}) {a}-{b}",
            "{area}-{a}-{b}",
            "{area}.{a}.{b}",
            "+{cc} {x} {a} {y}",
            "+{cc}{area}{a}{b}",
        )
    ],
    "ip_address": [
        _key("{}", _ipv4),
        _key("{}", lambda r: f"203.0.113.{r.randint(1, 254)}"),
        _key("{}", lambda r: f"2001:db8:{r.randint(1, 65535):x}::{r.randint(1, 65535):x}"),
        _key("{}", lambda r: ":".join(f"{r.randint(1, 65535):x}" for _ in range(8))),
    ],
}

PLACES = (
    "system",
    "user",
    "tool_arguments",
    "tool_output",
    "reasoning",
    "final_answer",
    "metadata",
    "json_in_string",
    "u_escaped",
    "ascii_line",
)


@dataclass(frozen=True)
class Planted:
    kind: str
    place: str
    secret: str
    line: bytes


def _frames() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads((CORPUS / "frames.json").read_text(encoding="utf-8"))
    return data


def _record(rng: random.Random, texts: dict[str, str], filler: list[str]) -> dict[str, Any]:
    """A NeMo Gym rollout with ``texts[place]`` in each named place, filler elsewhere."""

    def at(place: str) -> str:
        return texts.get(place, rng.choice(filler))

    arguments = texts.get("tool_arguments")
    output = texts.get("json_in_string")
    return {
        "responses_create_params": {
            "input": [
                {"role": "system", "content": at("system")},
                {"role": "user", "content": [{"type": "input_text", "text": at("user")}]},
            ],
            "tools": [
                {"type": "function", "name": "run", "description": "Run a shell command.", "parameters": {}}
            ],
            "temperature": 0.6,
        },
        "response": {
            "id": f"resp_{rng.randrange(16**12):012x}",
            "output": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": at("reasoning")}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "run",
                    "arguments": json.dumps(
                        {"command": arguments if arguments is not None else "ls -la", "timeout": 30}
                    ),
                },
                {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": (
                        json.dumps({"status": "ok", "data": {"log": [output, "exit 0"]}}, indent=2)
                        if output is not None
                        else at("tool_output")
                    ),
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": at("final_answer")}],
                },
            ],
        },
        "reward": rng.choice((0.0, 1.0)),
        "metadata": {"note": at("metadata")},
        "_ng_task_index": rng.randrange(1000),
        "_ng_rollout_index": 0,
    }


def _escape_secret(line: bytes, secret: str) -> bytes:
    """``line`` with each letter and digit of ``secret`` written as a ``\\u`` escape."""
    encoded = orjson.dumps(secret)[1:-1]
    escaped = "".join(f"\\u{ord(c):04x}" if c.isalnum() else c for c in encoded.decode())
    assert encoded in line
    return line.replace(encoded, escaped.encode())


def _line(rng: random.Random, place: str, phrase: str, frames: dict[str, list[str]], secret: str) -> bytes:
    text = rng.choice(frames["frames"]).format(phrase)
    if place == "u_escaped":
        return _escape_secret(orjson.dumps(_record(rng, {"user": text}, frames["filler"])), secret)
    if place == "ascii_line":
        text = rng.choice(frames["non_ascii"]).format(text)
        return json.dumps(_record(rng, {"user": text}, frames["filler"]), ensure_ascii=True).encode()
    return orjson.dumps(_record(rng, {place: text}, frames["filler"]))


def planted(seed: int = SEED) -> Iterator[Planted]:
    """Every way to write every kind, in every place: one secret a record."""
    rng = random.Random(seed)
    frames = _frames()
    for kind, makers in KINDS.items():
        for make in makers:
            for place in PLACES:
                for _ in range(REPEATS):
                    phrase, secret = make(rng)
                    yield Planted(kind, place, secret, _line(rng, place, phrase, frames, secret))


def lookalikes(seed: int = SEED, *, pii: bool = False) -> list[str]:
    """Texts that look like secrets and are none: the fixed ones and generated hashes, UUIDs,
    base64 images, protein sequences and numbers that fail the Luhn check."""
    rng = random.Random(seed)
    data = json.loads((CORPUS / "lookalikes.json").read_text(encoding="utf-8"))
    texts: list[str] = list(data["with_pii" if pii else "default"])
    for _ in range(20):
        sha = _s(rng, _HEX, 40)
        texts.append(f"commit {sha} (abbrev {sha[:7]}); see https://github.com/org/repo/commit/{sha}")
        u = _s(rng, _HEX, 32)
        uuid = f"{u[:8]}-{u[8:12]}-4{u[13:16]}-a{u[17:20]}-{u[20:]}"
        texts.append(f"request {uuid} and {{{uuid.upper()}}}")
        texts.append(f"md5 {_s(rng, _HEX, 32)} sha1 {_s(rng, _HEX, 40)} sha256 {_s(rng, _HEX, 64)}")
        texts.append(f"image sha256:{_s(rng, _HEX, 64)} digest {_s(rng, _HEX, 64).upper()}")
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(200, 3000))).decode()
        texts.append(f"![plot](data:image/png;base64,{png})")
        protein = _s(rng, "ACDEFGHIKLMNPQRSTVWY", rng.randint(60, 400))
        texts.append(f">sp|P{rng.randint(10000, 99999)}|PROT_HUMAN\n{protein}")
        if not pii:
            texts.append(
                f"amount {_not_luhn(rng, '4', 16)} and {_grouped(_not_luhn(rng, '5', 16), ' ', (4, 4, 4, 4))}"
            )
    return texts


def _not_luhn(rng: random.Random, prefix: str, length: int) -> str:
    number = _card(rng, prefix, length)
    return number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)


def lookalike_lines(seed: int = SEED, *, pii: bool = False) -> list[bytes]:
    """The look-alikes in every place of a record (not the escaped ones: nothing to find)."""
    rng = random.Random(seed)
    frames = _frames()
    lines = []
    for text in lookalikes(seed, pii=pii):
        for place in PLACES[:8]:
            lines.append(orjson.dumps(_record(rng, {place: text}, frames["filler"])))
    return lines


def write(lines: list[bytes], path: Path) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@dataclass
class Recall:
    planted: Counter[str]
    found: Counter[str]  # the secret is gone from the record
    named: Counter[str]  # ... and the record has the kind's placeholder
    missed: list[Planted]

    def rate(self, kind: str) -> float:
        return self.found[kind] / self.planted[kind]


def _strings(value: object) -> Iterator[str]:
    """Every string in a decoded record, and in the JSON documents some strings are."""
    if isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                yield from _strings(json.loads(value))
            except ValueError:
                pass
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def gone(secret: str, raw: bytes) -> bool:
    """No trace of ``secret`` in the line: not in its bytes, nor in any string (decoded)."""
    if secret.encode() in raw:
        return False
    return not any(secret in text for text in _strings(orjson.loads(raw)))


def recall(items: list[Planted], path: Path) -> Recall:
    """Run the corpus (written to ``path``) through the redaction step as the CLI does."""
    write([item.line for item in items], path)
    step = RedactSecrets(redactor=Redactor(pii=frozenset(PII_KINDS)))
    rollouts = [r for r in read_rollouts([str(path)]) if isinstance(r, Rollout)]
    assert len(rollouts) == len(items)
    result = Recall(Counter(), Counter(), Counter(), [])
    for item, rollout in zip(items, rollouts, strict=True):
        redacted = step.apply(rollout).rollout
        assert redacted is not None
        result.planted[item.kind] += 1
        if gone(item.secret, redacted.raw):
            result.found[item.kind] += 1
            result.named[item.kind] += f"<REDACTED:{item.kind}>".encode() in redacted.raw
        else:
            result.missed.append(item)
    return result


def _table(result: Recall) -> str:
    rows = ["| kind | planted | recall | named right |", "|---|---:|---:|---:|"]
    for kind in KINDS:
        n = result.planted[kind]
        rows.append(
            f"| `{kind}` | {n} | {100 * result.rate(kind):.1f}% | {100 * result.named[kind] / n:.1f}% |"
        )
    return "\n".join(rows)


def changed_lookalikes(*, pii: bool = False) -> tuple[int, int]:
    """How many look-alike lines there are, and how many redaction changes (by default, or with
    the PII kinds on)."""
    lines = lookalike_lines(pii=pii)
    redactor = Redactor(pii=frozenset(PII_KINDS) if pii else frozenset())
    return len(lines), sum(redactor.redact_line(line)[0] != line for line in lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(_table(recall(list(planted()), Path(tmp) / "planted.jsonl")))
    for pii in (False, True):
        total, changed = changed_lookalikes(pii=pii)
        kinds = "PII kinds on" if pii else "default kinds"
        print(f"\nlook-alikes ({kinds}): {changed} of {total} lines changed")
