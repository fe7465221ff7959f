import re

import pytest

from gateway.numbering import InvalidNumber, check_region, is_e164, normalize, normalize_caller_id


@pytest.mark.parametrize(
    "number, region, expected",
    [
        # The public calling API's three Indian forms.
        ("9812345678", "IN", "+919812345678"),
        ("919812345678", "IN", "+919812345678"),
        ("+919812345678", "IN", "+919812345678"),
        # ... and what people type around them.
        ("98123 45678", "IN", "+919812345678"),
        ("+91 98123-45678", "IN", "+919812345678"),
        ("09812345678", "IN", "+919812345678"),  # trunk prefix
        ("0091 98123 45678", "IN", "+919812345678"),  # international prefix
        ("9112345678", "IN", "+919112345678"),  # a national number that starts like the country code
        ("+91 22 2345 6789", "IN", "+912223456789"),  # Mumbai landline
        # United States.
        ("(650) 253-0000", "US", "+16502530000"),
        ("650.253.0000", "US", "+16502530000"),
        ("1 650 253 0000", "US", "+16502530000"),
        ("+1 650 253 0000", "US", "+16502530000"),
        # A region is a case-insensitive ISO code.
        ("9812345678", "in", "+919812345678"),
        # A number with + is international whatever the region.
        ("+44 20 7946 0958", "IN", "+442079460958"),
        ("+91 98123 45678", "US", "+919812345678"),
        ("+996 700 000 000", "US", "+996700000000"),  # Kyrgyzstan, as in the /v1 examples
        # No region: international form only.
        ("+14155550123", None, "+14155550123"),
    ],
)
def test_normalize(number, region, expected):
    assert normalize(number, region) == expected


@pytest.mark.parametrize(
    "number, region, message",
    [
        ("", "US", "no phone number given"),
        ("   ", "IN", "no phone number given"),
        (None, "IN", "no phone number given"),
        (9812345678, "IN", "no phone number given"),  # not a string
        ("hello", "US", "'hello' is not a phone number: it contains letters"),
        ("1-800-FLOWERS", "US", "contains letters"),
        ("+1 650 253 0000 ext 12", "US", "contains letters"),
        ("+1 650 253 0000 #12", "US", "has an extension"),
        ("--", "US", "'--' is not a phone number"),
        ("+", "US", "is not a phone number"),
        ("12345", "US", "'12345' is too short for a number in region US"),
        ("981234", "IN", "'981234' is too short for a number in region IN"),
        ("98123456789", "IN", "'98123456789' is not a valid number in region IN"),
        ("9198123456789", "IN", "'9198123456789' is not a valid number in region IN"),
        ("+882 1234", "US", "'+882 1234' is too short for a number in country code +882"),
        ("1" * 30, "US", "is too long to be a phone number"),
        ("9" * 80, "US", "is too long to be a phone number"),
        ("+999 1234 5678", "US", "'+999 1234 5678' has an unknown country code"),
        ("+1 555 123 4567", "US", "'+1 555 123 4567' is not a valid number in region US"),
        ("+44 20 7946", "IN", "'+44 20 7946' is too short for a number in region GB (no area code?)"),
        ("9812345678", None, "not in international form; expected E.164"),
    ],
)
def test_invalid_numbers(number, region, message):
    with pytest.raises(InvalidNumber, match=re.escape(message)) as excinfo:
        normalize(number, region)
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.number == number


@pytest.mark.parametrize(
    "number, region, expected",
    [
        # The national reading, valid in the region, wins.
        ("4155550123", "US", "+14155550123"),  # not +41 55 550 123 (Switzerland), also valid
        ("5511999999999", "BR", "+5511999999999"),  # the call-control contract's example
        ("11 99999 9999", "BR", "+5511999999999"),
        ("919812345678", "IN", "+919812345678"),
        # Not valid in the region, but valid with a + in front: international digits.
        ("5511999999999", "US", "+5511999999999"),
        ("5511999999999", "IN", "+5511999999999"),
        ("55 11 99999-9999", "GB", "+5511999999999"),
        ("447911123456", "IN", "+447911123456"),
        ("44 20 7946 0958", "IN", "+442079460958"),
        ("919812345678", "US", "+919812345678"),
        ("14155550123", "IN", "+14155550123"),
        ("12125550100", "BR", "+12125550100"),
        ("996700000000", "US", "+996700000000"),
    ],
)
def test_digits_without_plus_national_reading_first_then_international(number, region, expected):
    assert normalize(number, region) == expected
    assert normalize_caller_id(number, region) == expected


@pytest.mark.parametrize(
    "number, region, message",
    [
        # Invalid both ways: the national reading's error ...
        ("981234", "IN", "'981234' is too short for a number in region IN"),  # not +98 1234 (Iran)
        ("98123456789", "IN", "'98123456789' is not a valid number in region IN"),
        # ... unless the digits are too many for the region and begin with a country code.
        ("5511888888888", "US", "'5511888888888' is not a valid number in region BR"),
        ("5511888888888", "BR", "'5511888888888' is not a valid number in region BR"),
        ("99912345678901", "US", "'99912345678901' is too long for a number in region US"),
        ("15551234567", "IN", "'15551234567' is not a valid number in region US"),  # too long for IN
    ],
)
def test_digits_valid_neither_way(number, region, message):
    with pytest.raises(InvalidNumber, match=re.escape(message)):
        normalize(number, region)


@pytest.mark.parametrize(
    "number, region, expected",
    [
        # The contract's caller ID: a possible Brazilian number, not an assigned one.
        ("5511888888888", "BR", "+5511888888888"),
        ("5511888888888", "US", "+5511888888888"),  # too long for the US: a country code
        ("+5511888888888", "IN", "+5511888888888"),
        ("+1 555 123 4567", "US", "+15551234567"),  # fictional 555 numbers are possible
        ("5511888888888", "IN", "+5511888888888"),  # 13 digits: possible in IN, but no line has so many
        ("15551234567", "IN", "+15551234567"),
        ("2079460958", "GB", "+442079460958"),
        ("11 8888 8888", "BR", "+551188888888"),  # a landline length, though no such line exists
    ],
)
def test_caller_id_needs_a_possible_number_only(number, region, expected):
    assert normalize_caller_id(number, region) == expected


@pytest.mark.parametrize(
    "number, region, message",
    [
        ("981234", "IN", "'981234' is too short for a number in region IN"),  # never +98 1234
        ("12345", "US", "'12345' is too short for a number in region US"),
        ("+882 1234", "US", "'+882 1234' is too short for a number in country code +882"),
        ("+999 1234 5678", "US", "has an unknown country code"),
        ("1" * 30, "US", "is too long to be a phone number"),
        ("hello", "US", "contains letters"),
        ("+1 650 253 0000 #12", "US", "has an extension"),
        ("", "US", "no phone number given"),
        ("9812345678", None, "not in international form"),
    ],
)
def test_caller_id_that_is_not_possible(number, region, message):
    with pytest.raises(InvalidNumber, match=re.escape(message)):
        normalize_caller_id(number, region)


def test_mobile_only():
    assert normalize("9812345678", "IN", mobile_only=True) == "+919812345678"
    with pytest.raises(InvalidNumber, match="not a mobile number in region IN"):
        normalize("+91 22 2345 6789", "IN", mobile_only=True)
    # US numbers do not say whether they are mobile: accepted.
    assert normalize("650 253 0000", "US", mobile_only=True) == "+16502530000"


def test_long_input_is_not_echoed_in_full():
    with pytest.raises(InvalidNumber) as excinfo:
        normalize("1" * 60 + "x", "US")
    assert len(str(excinfo.value)) < 80


def test_unknown_region_is_not_an_invalid_number():
    with pytest.raises(ValueError, match="unknown region 'XX'") as excinfo:
        normalize("9812345678", "XX")
    assert not isinstance(excinfo.value, InvalidNumber)
    assert check_region("gb") == "GB"


def test_is_e164():
    assert is_e164("+919812345678")
    assert not is_e164("919812345678")
    assert not is_e164("+91 98123 45678")
    assert not is_e164("+15551234567")
