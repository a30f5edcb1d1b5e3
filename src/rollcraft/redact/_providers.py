"""The kinds of secret added to the first ones: GitLab, npm, SendGrid, Twilio, Azure, Telegram and
Databricks keys, ``Basic`` credentials and card numbers; and the opt-in personal data kinds (phone
numbers, IP addresses). Each has a gate, so that a line is searched only where one may be."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rollcraft.redact._base import _AFTER_ESCAPE, _TOKEN_END, _Pattern, _token, _TwoStep
from rollcraft.redact._checks import basic_credentials, card_number, ip_address, phone_number


@dataclass(frozen=True, slots=True)
class _CredentialsGate:
    """The gate of ``Basic`` credentials (``Basic``, ``basic`` or ``BASIC``): base64 after it
    that decodes to ``user:password``. Ordinary text (``basic usage``) does not pass."""

    after: tuple[re.Pattern[bytes], ...] = tuple(
        re.compile(word + rb"[ \t]+([A-Za-z0-9+/]{4,}={0,2})") for word in (b"asic", b"ASIC")
    )

    def search(self, line: bytes, /) -> bool:
        return any(
            basic_credentials(m.group(1).decode()) for after in self.after for m in after.finditer(line)
        )


_GITLAB = r"gl(?:pat|dt|rt|ptt|cbt|imt|soat|ft|oas|agent)-"
# The providers' keys with a fixed prefix or shape (besides the ones in _PATTERNS).
_PROVIDERS: tuple[_Pattern, ...] = (
    _Pattern(
        "gitlab_token",
        ("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glimt-", "glsoat-", "glft-", "gloas-", "glagent-"),
        re.compile(_token("g", _GITLAB[1:] + r"[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9_\-]{2,}){0,2}")),
        gate=_TwoStep(re.compile(rb"gl[a-z]{2,5}-[A-Za-z0-9_\-]{20}"), re.compile(_GITLAB.encode())),
    ),
    _Pattern(
        "npm_token",
        ("npm_",),
        re.compile(_token("n", r"pm_[A-Za-z0-9]{36}")),
        gate=re.compile(rb"npm_[A-Za-z0-9]{36}"),
    ),
    _Pattern(
        "sendgrid_api_key",
        ("sg.",),
        re.compile(_token("S", r"G\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,64}")),
        gate=re.compile(rb"SG\.[A-Za-z0-9_\-]{16}"),
    ),
    *(
        _Pattern(
            "twilio_key",
            (sid.lower(),),
            re.compile(_token(sid[0], sid[1] + r"[0-9a-fA-F]{32}")),
            gate=re.compile(sid.encode() + rb"[0-9a-fA-F]{32}"),
        )
        for sid in ("AC", "SK")  # an account SID, an API key SID
    ),
    _Pattern(
        "azure_storage_key",
        ("accountkey", "sharedaccesskey"),
        re.compile(
            r"(?i:AccountKey|SharedAccessKey)(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?"
            r"([A-Za-z0-9+/]{20,}={0,2})(?![A-Za-z0-9+/=])"
        ),
        group=1,
    ),
    _Pattern(
        "azure_sas_token",
        ("sig=",),
        re.compile(r"(?:(?<=[?&;])|(?<=\\u0026))sig=([A-Za-z0-9%+/=_\-]{20,})(?![A-Za-z0-9%+/=_\-])"),
        group=1,
        gate=re.compile(rb"sig=[A-Za-z0-9%+/=_\-]{20}"),
    ),
    _Pattern(
        "telegram_bot_token",
        tuple(f"{d}:" for d in "0123456789"),  # digits are in numbers too: the tokens holding "N:"
        re.compile(
            # a digit first: a fast scan (a lookbehind first is tried at every character)
            r"[0-9](?:(?<![A-Za-z0-9_\-:][0-9])|(?<=bot[0-9])|(?<=\\[nrt][0-9]))"
            r"[0-9]{4,15}:[A-Za-z0-9_\-]{30,40}" + _TOKEN_END
        ),
        gate=_TwoStep(re.compile(rb":[A-Za-z0-9_\-]{30}"), re.compile(rb"[0-9]{5}:"), back=5),
    ),
    _Pattern(
        "databricks_token",
        ("dapi",),
        re.compile(_token("d", r"api[0-9a-fA-F]{32}(?:-[0-9]{1,2})?")),
        gate=re.compile(rb"dapi[0-9a-fA-F]{32}"),
    ),
    _Pattern(
        "basic_auth",
        ("basic",),
        re.compile(
            r"[Bb](?:(?<![A-Za-z0-9_\-][Bb])|(?<=\\[nrt][Bb]))(?i:asic)[ \t]+([A-Za-z0-9+/]{4,}={0,2})"
            r"(?![A-Za-z0-9+/=_\-])"
        ),
        group=1,
        valid=basic_credentials,
        gate=_CredentialsGate(),
    ),
)

# 13-19 digits, maybe in groups split by spaces or dashes (see _checks.card_number): not part
# of a longer number, a word or a decimal.
_CARD = re.compile(
    r"[1-9](?:(?<![A-Za-z0-9_.\-][1-9])|(?<=\\[nrt][1-9]))(?<![0-9][ \-][1-9])"  # a digit first: a fast scan
    r"[0-9]{3}(?:[ \-]?[0-9]){9,15}(?![A-Za-z0-9_]|[ \-][0-9])"
)
_CARD_GATE = _TwoStep(
    # not after a digit, a letter or a decimal point (a float's digits), but after a \n escape
    re.compile(rb"0000(?:(?<![0-9A-Za-z_.\-]0000)|(?<=\\[nrt]0000))(?:[ \-]?0){9}"),
    re.compile(rb"[2-6][0-9]{3}|[1-9][0-9]{3}[ \-][0-9]"),  # a network's first digit, or in groups
    zeros=True,
)
_CARD_NUMBER = _Pattern("card_number", (), _CARD, valid=card_number, gate=_CARD_GATE)
_NUMBER_START = r"(?:(?<![A-Za-z0-9_+.\-])|" + _AFTER_ESCAPE + r")"
_PHONE = re.compile(
    _NUMBER_START + r"(?:\+[1-9](?:[ .\-]?\(?[0-9]\)?){6,14}"  # +44 20 7946 0958, +1 (555) 010-1234
    r"|(?:1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4})"  # (555) 010-1234
    r"(?![A-Za-z0-9_]|[.\-]?[0-9])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PII: tuple[_Pattern, ...] = (
    _Pattern(
        "phone_number",
        (),
        _PHONE,
        valid=phone_number,
        gate=_TwoStep(re.compile(rb"0(?:[ .\-()]{0,2}0){7}"), re.compile(rb""), zeros=True),
    ),
    _Pattern(
        "ip_address",
        (),
        re.compile(
            _NUMBER_START
            + r"(?<![<>=!~]=)(?:"
            + _OCTET
            + r"\.){3}"
            + _OCTET
            + r"(?![A-Za-z0-9_]|\.[0-9]|[+~\-][A-Za-z0-9])"
        ),
        valid=ip_address,
        gate=_TwoStep(re.compile(rb"0\.0{1,3}\.0{1,3}\.0"), re.compile(rb""), zeros=True),
    ),
    _Pattern(
        "ip_address",
        (),
        re.compile(
            r"(?:(?<![A-Za-z0-9_:.\-])|" + _AFTER_ESCAPE + r")"
            r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![A-Za-z0-9_:])"
        ),
        valid=ip_address,
        gate=_TwoStep(re.compile(rb":[0-9A-Fa-f]{0,4}:"), re.compile(rb""), back=0),
    ),
)
