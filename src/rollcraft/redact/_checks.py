"""The checks that tell a hit of the newer kinds from a look-alike: card numbers (Luhn and the
issuers' number ranges), ``Basic`` credentials (base64 of ``user:password``), phone numbers
(their digit counts) and IP addresses (what :mod:`ipaddress` accepts, less loopback)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

_SEPARATORS = re.compile(r"[ \-]")


def luhn(digits: str) -> bool:
    """The Luhn checksum of a string of digits is right (every card number's is)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _issued(digits: str) -> bool:
    """The number's first digits and length are those of a card network's numbers."""
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if two in (34, 37):  # American Express
        return n == 15
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if two == 36 or two == 38 or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= n <= 19
    if 3528 <= four <= 3589 or two in (62, 65) or four == 6011 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # JCB, UnionPay, Discover
    return two == 50 or 56 <= two <= 69  # Maestro (12-19 digits; 13+ reach here)


def card_number(value: str) -> bool:
    """A card number: 13-19 digits with a right Luhn checksum, either in groups split by one
    kind of separator (the first of 4 digits, none over 6, not starting with 0: written as cards
    are), or together and of a network's ranges (a grid of digits or an id is not)."""
    groups = _SEPARATORS.split(value)
    digits = "".join(groups)
    if len(groups) > 1:
        if len({c for c in value if not c.isdigit()}) > 1 or len(groups[0]) != 4:
            return False
        if any(len(g) > 6 for g in groups) or value[0] == "0":
            return False
    elif not _issued(digits):
        return False
    return 13 <= len(digits) <= 19 and luhn(digits)


def basic_credentials(value: str) -> bool:
    """``value`` is base64 of ``user:password`` (printable text with a colon), as HTTP Basic
    authentication sends it; ``Basic usage`` or a base64 blob is not."""
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in text and text.isprintable() and not text.startswith(":")


def phone_number(value: str) -> bool:
    """A phone number: with a ``+`` country code 8-15 digits (E.164), else 10 (North American,
    ``(555) 123-4567``) or 11 starting with 1."""
    digits = sum(c.isdigit() for c in value)
    if value.startswith("+"):
        return 8 <= digits <= 15
    return digits == 10 or (digits == 11 and value.lstrip("(")[0] == "1")


def ip_address(value: str) -> bool:
    """An IPv4 or IPv6 address that can name a host: not loopback (``127.0.0.1``, ``::1``),
    unspecified (``0.0.0.0``) or the IPv4 broadcast address."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    return not (address.version == 4 and value == "255.255.255.255")
