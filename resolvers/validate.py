"""Input checks shared by the mutations: phones, ISO codes, money, card numbers."""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
import pycountry

from resolvers.errors import UserErrorCode
from resolvers.mutations import Problem, Refused

CENT = Decimal("0.01")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_\-:.]{5,254}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DIGIT_RUNS = re.compile(r"(?:\d[ -]?){13,19}")
_NOT_DIGIT = re.compile(r"\D")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand_shape(digits: str) -> bool:
    """Whether digits have a card network's prefix (IIN) for their length: every real card
    number does (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro), while
    most IDs of the same length do not (a 13-digit Shopify customer ID passes Luhn one
    time in ten)."""
    n, d = len(digits), digits
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if n == 15:
        return d[:2] in ("34", "37")  # Amex
    if n == 14:
        return d[:2] in ("30", "36", "38", "39")  # Diners
    if 16 <= n <= 19:
        p2, p3, p4 = int(d[:2]), int(d[:3]), int(d[:4])
        return (
            51 <= p2 <= 55  # Mastercard
            or 2221 <= p4 <= 2720  # Mastercard 2-series
            or d[:4] == "6011"  # Discover
            or 644 <= p3 <= 649
            or d[:2] in ("65", "62")  # Discover, UnionPay
            or 3528 <= p4 <= 3589  # JCB
            or d[:2] in ("36", "38", "39")  # Diners
            or d[:2] in ("50", "56", "57", "58", "63", "67")  # Maestro
        )
    return False


def contains_card_number(value: Any) -> bool:
    """True when any string inside `value` holds 13-19 digits (spaces/dashes allowed)
    with a card network's prefix for their length that pass the Luhn check: a card
    number, which this service must never store."""
    if isinstance(value, str):
        if len(value) < 13:  # too short to hold one (most cells: an import checks them all)
            return False
        for match in _DIGIT_RUNS.finditer(value):
            digits = _NOT_DIGIT.sub("", match.group())
            for size in range(min(len(digits), 19), 12, -1):
                for start in range(len(digits) - size + 1):
                    window = digits[start : start + size]
                    if card_brand_shape(window) and luhn(window):
                        return True
        return False
    if isinstance(value, dict):
        return any(contains_card_number(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_card_number(v) for v in value)
    if hasattr(value, "__dict__"):
        return any(contains_card_number(v) for v in vars(value).values())
    return False


def refuse_card_numbers(value: Any) -> None:
    if contains_card_number(value):
        # The message never echoes the input: the number must not reach logs either.
        raise Refused.one(
            ["input"],
            UserErrorCode.CARD_NUMBER_REFUSED,
            "Card numbers are never accepted: send the processor's token.",
        )


def token(raw: str | None, path: list[str]) -> str:
    """A payment processor's token (tok_…, pm_…, src_…): what we keep instead of a card."""
    value = (raw or "").strip()
    if not _TOKEN.fullmatch(value):
        raise Refused(
            Problem(path, UserErrorCode.INVALID, "Send the processor's token (e.g. tok_…, pm_…).")
        )
    return value


def email(raw: str | None, path: list[str]) -> str | None:
    """A trimmed address (stored citext: case is kept, compared without it), or None."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if not _EMAIL.fullmatch(value):
        raise Refused(Problem(path, UserErrorCode.INVALID, "Not an email address."))
    return value


def phone(raw: str | None, region: str | None, path: list[str]) -> str | None:
    """E.164, or None for an empty value; INVALID when it cannot be a real number."""
    if raw is None or not raw.strip():
        return None
    e164, why = _e164(raw, region or "US")
    if e164 is None:
        raise Refused(Problem(path, UserErrorCode.INVALID, why))
    return e164


@functools.lru_cache(maxsize=16384)
def _e164(raw: str, region: str) -> tuple[str | None, str]:
    """(E.164, "") or (None, why). Cached: parsing and validating is an import's costliest
    check per row, and numbers repeat (a row's address phone is often its phone)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, f"Cannot read {raw!r} as a phone number."
    if not phonenumbers.is_valid_number(number):
        return None, f"{raw!r} is not a valid phone number."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def country(raw: str, path: list[str]) -> str:
    code = (raw or "").strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise Refused(
            Problem(
                path, UserErrorCode.INVALID, f"Unknown country {raw!r}: use ISO 3166-1, e.g. US."
            )
        )
    return code


def region(raw: str | None, country_code: str, path: list[str]) -> str | None:
    if raw is None or not raw.strip():
        return None
    code = raw.strip().upper().removeprefix(f"{country_code}-")
    if pycountry.subdivisions.get(code=f"{country_code}-{code}") is None:
        raise Refused(
            Problem(path, UserErrorCode.INVALID, f"Unknown region {raw!r} in {country_code}.")
        )
    return code


def currency(raw: str, path: list[str]) -> str:
    code = (raw or "").strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise Refused(
            Problem(path, UserErrorCode.INVALID, f"Unknown currency {raw!r}: use ISO 4217.")
        )
    return code


def money(raw: Any, path: list[str], *, positive: bool = True) -> Decimal:
    """An exact amount with at most 2 decimals (never a float)."""
    try:
        amount = Decimal(str(raw))
    except (InvalidOperation, ValueError) as exc:
        raise Refused(Problem(path, UserErrorCode.INVALID, f"{raw!r} is not an amount.")) from exc
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise Refused(Problem(path, UserErrorCode.INVALID, "Amounts have at most 2 decimals."))
    if positive and amount <= 0:
        raise Refused(Problem(path, UserErrorCode.INVALID, "The amount must be positive."))
    if not positive and amount == 0:
        raise Refused(Problem(path, UserErrorCode.INVALID, "The amount must not be zero."))
    if abs(amount) >= Decimal("1e12"):
        raise Refused(Problem(path, UserErrorCode.INVALID, "The amount is too large."))
    return amount
