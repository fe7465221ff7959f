"""Phone numbers to E.164, by the numbering plans of the ``phonenumbers`` library.

A number without ``+`` is read in the account's region. For region ``IN`` this
accepts the three forms the public calling API documents, all giving
``+919812345678``: ``9812345678`` (national), ``919812345678`` (country code
without ``+``: phonenumbers strips a leading country code when what is left is
a valid national number and the whole is not) and ``+919812345678``. A number
with ``+`` (or the region's international prefix, such as ``00``) is read as
international whatever the region.

Separators (spaces, dashes, dots, parentheses) are ignored. Letters are
refused, vanity numbers included: a number to dial is digits. So are
extensions, which cannot be dialled.
"""
from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

MAX_INPUT_LENGTH = 64

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class InvalidNumber(ValueError):
    """``number`` is not a valid phone number; the message says why, for a person."""

    def __init__(self, message: str, number: object = None):
        super().__init__(message)
        self.number = number


def check_region(region: str) -> str:
    """``region`` upper-cased, if phonenumbers knows it (ISO 3166 alpha-2, e.g. ``IN``, ``US``)."""
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}; expected a two-letter country code such as US or IN")
    return region.upper()


def normalize(number: str, region: str | None, *, mobile_only: bool = False) -> str:
    """``number`` in E.164 (``+`` and digits), read in ``region``.

    ``region`` None accepts international numbers only. ``mobile_only`` also
    refuses numbers that the plan knows are not mobile. Raises ``InvalidNumber``
    for anything that is not a valid number, ``ValueError`` for an unknown region.
    """
    if region is not None:
        region = check_region(region)
    if not isinstance(number, str) or not number.strip():
        raise InvalidNumber("no phone number given", number)
    text = number.strip()
    shown = _shown(text)
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidNumber(f"{shown} is too long to be a phone number", number)
    if any(ch.isalpha() for ch in text):
        raise InvalidNumber(f"{shown} is not a phone number: it contains letters", number)
    if region is None and not text.startswith("+"):
        raise InvalidNumber(f"{shown} is not in international form; expected E.164 such as +14155550123",
                            number)
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidNumber(_parse_error(exc, shown), number) from None

    if parsed.extension:
        raise InvalidNumber(f"{shown} has an extension, which cannot be dialled", number)
    where = _region_label(parsed, region)
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidNumber(f"{shown} is too short for a number in {where}", number)
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise InvalidNumber(f"{shown} is too short for a number in {where} (no area code?)", number)
    if possible == ValidationResult.TOO_LONG:
        raise InvalidNumber(f"{shown} is too long for a number in {where}", number)
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        raise InvalidNumber(f"{shown} has an unknown country code", number)
    if possible != ValidationResult.IS_POSSIBLE or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"{shown} is not a valid number in {where}", number)
    if mobile_only and phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise InvalidNumber(f"{shown} is not a mobile number in {where}", number)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def is_e164(text: str) -> bool:
    """Whether ``text`` is already a valid number in E.164 form."""
    try:
        return normalize(text, None) == text
    except InvalidNumber:
        return False


def _parse_error(exc: NumberParseException, shown: str) -> str:
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        return f"{shown} has an unknown country code"
    if exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return f"{shown} is too short to be a phone number"
    if exc.error_type == NumberParseException.TOO_LONG:
        return f"{shown} is too long to be a phone number"
    return f"{shown} is not a phone number"


def _region_label(parsed: phonenumbers.PhoneNumber, region: str | None) -> str:
    """Where a parsed number belongs, for messages: ``region IN``, or ``country code +882``."""
    if region in phonenumbers.region_codes_for_country_code(parsed.country_code):
        return f"region {region}"
    # The number's own region if it tells, else the main one of its country code (GB for +44).
    main = (phonenumbers.region_code_for_number(parsed)
            or phonenumbers.region_code_for_country_code(parsed.country_code))
    if main and main not in ("001", phonenumbers.UNKNOWN_REGION):
        return f"region {main}"
    return f"country code +{parsed.country_code}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 32 else text[:32] + "…")
