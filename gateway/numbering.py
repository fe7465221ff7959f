"""Phone numbers to E.164, by the numbering plans of the ``phonenumbers`` library.

A number with ``+`` (or the region's international prefix, such as ``00``) is read
as international whatever the region. A number without either has two readings,
and the first that holds wins:

1. the *national* reading, in the account's region, when it is a valid number
   there. For region ``IN`` this accepts the three forms the public calling API
   documents, all giving ``+919812345678``: ``9812345678``, ``919812345678``
   (phonenumbers strips a leading country code when what is left is a valid
   national number and the whole is not) and ``+919812345678``;
2. the *international* reading, the digits with a ``+`` in front, when that is a
   valid number: the call-control contract writes ``5511999999999`` for
   ``+5511999999999`` whatever the account's region, as many carriers do.

The national reading goes first because a number people dial at home must not
turn into another country's when its digits happen to spell one too (``4155550123``
in region US is San Francisco, not ``+41`` Switzerland). When neither reading is
valid, the error is the national reading's, unless the digits are too many for a
phone line of the region (more than its fixed-line and mobile numbers have) and the
international reading is a possible number: then its error names the country the
number would be in.

Two strengths of check: :func:`normalize` wants a *valid* number (assigned in its
country's numbering plan), for numbers the gateway dials; :func:`normalize_caller_id`
wants a *possible* one (a length the country's numbers can have), for the number a
call shows, since the carrier, not the numbering plan, decides which caller IDs it
lets through. A caller ID takes, in this order: a valid national reading, a valid
international one, then, of the possible ones, the national reading, unless the digits
are too many for a phone line of the region: they then begin with a country code and
the international reading is taken (``5511888888888`` is ``+5511888888888`` for an
Indian account too). Fewer digits are a short national number, never another
country's (``981234`` in region IN is not ``+98 1234``).

Separators (spaces, dashes, dots, parentheses) are ignored. Letters are
refused, vanity numbers included: a number to dial is digits. So are
extensions, which cannot be dialled.
"""
from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult, geocoder

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
    """``number`` in E.164 (``+`` and digits), read in ``region`` (see the module
    docstring for the two readings of digits without ``+``).

    ``region`` None accepts international numbers only. ``mobile_only`` also
    refuses numbers that the plan knows are not mobile. Raises ``InvalidNumber``
    for anything that is not a valid number, ``ValueError`` for an unknown region.
    """
    return _normalize(number, region, mobile_only=mobile_only, valid=True)


def normalize_caller_id(number: str, region: str | None) -> str:
    """A caller ID in E.164, read as :func:`normalize` reads a number, but checked for
    being a *possible* number only (its length fits its country), not an assigned one."""
    return _normalize(number, region, mobile_only=False, valid=False)


def _normalize(number, region: str | None, *, mobile_only: bool, valid: bool) -> str:
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
    national = _reading(text, region, shown, mobile_only=mobile_only)
    if national.valid or region is None or text.startswith("+"):
        return _checked(national, valid, number)
    international = _reading("+" + text, None, shown, mobile_only=mobile_only)
    if international.valid:
        return international.e164
    if not valid and national.possible and not national.too_long:
        return national.e164
    if national.too_long and international.possible:
        # Too many digits for a phone line of the region: they begin with a country code.
        return _checked(international, valid, number)
    return _checked(national, valid, number)


def _checked(reading: "_Reading", valid: bool, number) -> str:
    """``reading``'s number if it is valid (or, ``valid`` False, possible); else its error."""
    if reading.valid or (not valid and reading.possible):
        return reading.e164
    raise InvalidNumber(reading.error, number)


@dataclass(frozen=True)
class _Reading:
    """One way of reading a number: its E.164 form (None if it is no number at all), how
    its length fits its country (``fit``), and what is wrong with it as a valid number
    (``error``, empty if nothing)."""

    e164: str | None
    fit: ValidationResult | None
    error: str
    #: More digits than the region's fixed-line and mobile numbers have.
    too_long: bool = False

    @property
    def valid(self) -> bool:
        return self.e164 is not None and not self.error

    @property
    def possible(self) -> bool:
        return self.e164 is not None and self.fit == ValidationResult.IS_POSSIBLE


def _reading(text: str, region: str | None, shown: str, *, mobile_only: bool) -> _Reading:
    """``text`` read in ``region`` (None: international form)."""
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _Reading(None, None, _parse_error(exc, shown))
    if parsed.extension:
        return _Reading(None, None, f"{shown} has an extension, which cannot be dialled")
    where = _region_label(parsed, region)
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.TOO_SHORT:
        error = f"{shown} is too short for a number in {where}"
    elif possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        error = f"{shown} is too short for a number in {where} (no area code?)"
    elif possible == ValidationResult.TOO_LONG:
        error = f"{shown} is too long for a number in {where}"
    elif possible == ValidationResult.INVALID_COUNTRY_CODE:
        error = f"{shown} has an unknown country code"
    elif possible != ValidationResult.IS_POSSIBLE or not phonenumbers.is_valid_number(parsed):
        error = f"{shown} is not a valid number in {where}"
    elif mobile_only and phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        error = f"{shown} is not a mobile number in {where}"
    else:
        error = ""
    too_long = region is not None and (possible == ValidationResult.TOO_LONG
                                       or len(phonenumbers.national_significant_number(parsed))
                                       > _longest_line_number(region))
    return _Reading(phonenumbers.format_number(parsed, PhoneNumberFormat.E164), possible, error, too_long)


def _longest_line_number(region: str) -> int:
    """The most digits a fixed-line or mobile number of ``region`` has (its national
    significant number): the plan's ``possible`` lengths also cover service numbers
    (India's go to 13 digits for 10-digit lines), which no one writes a caller ID as."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    lengths = [length for desc in (metadata.fixed_line, metadata.mobile) if desc is not None
               for length in (desc.possible_length or ())]
    return max(lengths or metadata.general_desc.possible_length or (MAX_INPUT_LENGTH,))


def country_name(region: str) -> str:
    """``region``'s English name (``IN`` -> ``India``, ``KR`` -> ``South Korea``), from the
    CLDR names phonenumbers' geocoder ships, asked about an example number of the region;
    ``region XK`` for a region it has no name for."""
    region = check_region(region)
    example = phonenumbers.example_number(region)
    name = geocoder.country_name_for_number(example, "en") if example is not None else ""
    return name or f"region {region}"


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
