"""Request and response schemas of the public calling API.

Every request field carries its own error message, written for the developer who reads
the answer's ``details``: a field fails with one sentence, whatever went wrong with it
(missing, wrong type, out of range). The texts the contract fixes are used as they are.
"""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from gateway.api.openapi import NO_CONTROL, NOT_BLANK, OTP_CODE, OTP_CODE_TOKEN, PHONE_NUMBER, UUID, given
from gateway.calls.scripts import DTMF_KEYS
from gateway.domain import CALL_STATUSES
from gateway.models import DTMF_ACTIONS, RUN_TYPES
from gateway.numbering import MAX_INPUT_LENGTH, country_name
from gateway.otp import codes
from gateway.otp.service import MAX_ATTEMPTS, MAX_MESSAGE_LENGTH, MAX_TTL, MIN_ATTEMPTS, MIN_TTL, MISSING

#: The contract's text, for an ``IN`` account; another account's names its own country
#: (:func:`number_required`).
NUMBER = "A valid Indian mobile number is required."
TYPE = "A valid type is required: audio_blast, press1 or otp."
AUDIO_ID = "audio_id must be the numeric id of an audio clip in your library."
AUDIO_REQUIRED = "audio_id is required for audio_blast and press1 calls."
AUDIO_UNKNOWN = "audio_id does not match an audio clip in your library."
DTMF_MAP = "dtmf_map must map keypad keys (0-9, * or #) to an action: connect_agent or hangup."
CALLER_ID = "caller_id must be a verified caller number on your account."
CODE = f"code must be {codes.MIN_LENGTH} to {codes.MAX_LENGTH} digits."
LENGTH = f"length must be a whole number from {codes.MIN_LENGTH} to {codes.MAX_LENGTH}."
TTL = f"ttl must be a whole number of seconds from {MIN_TTL} to {MAX_TTL}."
ATTEMPTS = f"max_attempts must be a whole number from {MIN_ATTEMPTS} to {MAX_ATTEMPTS}."
MESSAGE = f"message must be text of at most {MAX_MESSAGE_LENGTH} characters containing the {{code}} token."
REFERENCE = "reference_id must be a string."
SECRET = "secret must be a string."
PAGE = "page must be a whole number of 1 or more."
PER_PAGE = "per_page must be a whole number from 1 to 100."
DIRECTION = "direction must be inbound or outbound."
STATUS = f"status must be one of {', '.join(CALL_STATUSES)}."
FROM = "from must be an ISO 8601 date or timestamp."
TO = "to must be an ISO 8601 date or timestamp."
LIST_NUMBER = "number must be a valid phone number."

#: What a recipient's number looks like in the document; the numbering plan (an Indian
#: mobile number for an ``IN`` account) is the view's to check, answering ``NUMBER``.
_NUMBER_DOC = {"pattern": PHONE_NUMBER, "maxLength": MAX_INPUT_LENGTH}
#: ``dtmf_map`` in the document: keypad keys to actions, at least one.
_DTMF_MAP_DOC = {"minProperties": 1, "additionalProperties": False,
                 "properties": {key: {"type": "string", "enum": list(DTMF_ACTIONS)} for key in DTMF_KEYS}}

MAX_PAGE = 10_000_000
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 100


def number_required(region: str | None) -> str:
    """What a recipient's number that is not a mobile number of the account's region gets:
    the contract's sentence for India, the same sentence naming the country for any other
    region (``A valid mobile number for Brazil is required.``)."""
    if not region or region.upper() == "IN":
        return NUMBER
    return f"A valid mobile number for {country_name(region)} is required."


def _messages(text: str) -> dict:
    """The same sentence for every way a field can fail (braces escaped: marshmallow
    formats these)."""
    text = text.replace("{", "{{").replace("}", "}}")
    return {key: text for key in ("required", "null", "invalid", "invalid_utf8", "too_large", "type",
                                  "validator_failed")}


class Textual(ma.fields.Field):
    """A string, or a JSON number taken as its decimal text (phone numbers, codes and
    reference ids are often sent as numbers). Control characters are refused; the OpenAPI
    document says so with a pattern, unless the field declares a narrower one."""

    default_error_messages = {"invalid": "Not a valid string."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = {"type": "string", "pattern": NO_CONTROL, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        text = str(value)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise self.make_error("invalid")
        return text


class Reference(ma.fields.Field):
    """``reference_id``: echoed from the raw body by ``envelope``; here only its type."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error("invalid")
        return value


def _text(message: str, *, required: bool = False, **kwargs) -> Textual:
    return Textual(required=required, allow_none=not required, error_messages=_messages(message), **kwargs)


class Whole(ma.fields.Integer):
    """A whole number: a JSON integer, or a number or decimal text with no fraction
    (``12``, ``12.0``, ``"12"``, ASCII digits). marshmallow's ``Integer`` would truncate
    ``1.5`` to 1 and accept it; a fraction is refused here instead (so are NaN and the
    infinities)."""

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        if isinstance(value, str) and not (value.strip().isascii() and value.strip().lstrip("+-").isdigit()):
            raise self.make_error("invalid")
        return super()._validated(value)


def _whole(message: str, low: int, high: int | None = None, **kwargs) -> Whole:
    return Whole(allow_none=True, error_messages=_messages(message),
                 validate=validate.Range(min=low, max=high, error=message), **kwargs)


class BodySchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    reference_id = Reference(allow_none=True, error_messages=_messages(REFERENCE),
                             metadata={"description": "Your own correlation key, echoed back (max 120 characters)",
                                       "type": "string"})
    secret = ma.fields.String(allow_none=True, error_messages=_messages(SECRET), load_only=True,
                              metadata={"description": "Your secret key, if not sent in the x-api-secret header"})


def _code_valid(value: str) -> None:
    if not codes.is_code(value):
        raise ma.ValidationError(CODE)


def _message_valid(value: str) -> None:
    if len(value) > MAX_MESSAGE_LENGTH or codes.CODE_TOKEN not in value:
        raise ma.ValidationError(MESSAGE)


class OtpFieldsMixin(ma.Schema):
    code = _text(CODE, validate=_code_valid,
                 metadata={"description": "otp only: your own numeric code, 4 to 8 digits", "pattern": OTP_CODE})
    length = _whole(LENGTH, codes.MIN_LENGTH, codes.MAX_LENGTH,
                    metadata={"description": "Length of the generated code, 4 to 8. Default 4"})
    ttl = _whole(TTL, MIN_TTL, MAX_TTL, metadata={"description": "Seconds the code stays valid. Default 600"})
    max_attempts = _whole(ATTEMPTS, MIN_ATTEMPTS, MAX_ATTEMPTS,
                          metadata={"description": "How many verify attempts are allowed. Default 3"})
    message = _text(MESSAGE, validate=_message_valid,
                    metadata={"description": "Custom spoken message with a {code} token",
                              "allOf": [{"pattern": OTP_CODE_TOKEN}], "maxLength": MAX_MESSAGE_LENGTH})


class PublicPlaceCallSchema(BodySchema, OtpFieldsMixin):
    type = ma.fields.String(required=True, error_messages=_messages(TYPE),
                            validate=validate.OneOf(RUN_TYPES, error=TYPE),
                            metadata={"description": "One of audio_blast, press1, otp"})
    number = _text(NUMBER, required=True, metadata={
        "description": "The recipient's mobile number, of the account's country (400 if the numbering plan"
                       " says it is none)", **_NUMBER_DOC})
    audio_id = _whole(AUDIO_ID, 1, 2**63 - 1,
                      metadata={"description": "Required for audio_blast and press1: a clip of your audio"
                                               " library (400 if it is not one)"})
    dtmf_map = ma.fields.Dict(allow_none=True, error_messages=_messages(DTMF_MAP),
                              metadata={"description": 'press1 only. Default {"1": "connect_agent"}. A map'
                                                       " that uses connect_agent needs an agent destination"
                                                       " set on the account (400 otherwise)", **_DTMF_MAP_DOC})
    caller_id = _text(CALLER_ID, metadata={"description": "A verified caller number on your account (400 if"
                                                          " it is not one)", "pattern": PHONE_NUMBER})

    class Meta:
        unknown = ma.EXCLUDE

    #: ``audio_id`` is required unless the call is an ``otp`` one.
    OPENAPI_KEYWORDS = {"allOf": [
        {"anyOf": [{"properties": {"type": {"enum": ["otp"]}}}, given("audio_id", {"type": "integer"})]},
    ]}

    #: The order in which fields are checked: the first failure is the answer.
    CHECK_ORDER = ("type", "number", "audio_id", "dtmf_map", "caller_id", "code", "length", "ttl",
                  "max_attempts", "message", "reference_id", "secret")


class OtpSendSchema(BodySchema, OtpFieldsMixin):
    number = _text(NUMBER, required=True, metadata={
        "description": "The recipient's mobile number, of the account's country (400 if the numbering plan"
                       " says it is none)", **_NUMBER_DOC})
    caller_id = _text(CALLER_ID, metadata={"description": "A verified caller number on your account (400 if"
                                                          " it is not one)", "pattern": PHONE_NUMBER})

    class Meta:
        unknown = ma.EXCLUDE

    CHECK_ORDER = ("number", "code", "length", "ttl", "max_attempts", "message", "caller_id", "reference_id",
                  "secret")


class OtpVerifySchema(BodySchema):
    code = _text(MISSING, metadata={"description": "The code the recipient entered", "pattern": NOT_BLANK})
    request_id = _text(MISSING, metadata={"description": "The id returned by send (400 Verification failed."
                                                         " if there is none such)", "pattern": UUID})
    number = _text(MISSING, metadata={"description": "Instead of request_id: the recipient's number, for its"
                                                     " most recent pending request", **_NUMBER_DOC})

    class Meta:
        unknown = ma.EXCLUDE

    #: A code, and request_id or number.
    OPENAPI_KEYWORDS = {"allOf": [
        given("code", {"type": "string"}),
        {"anyOf": [given("request_id", {"type": "string"}), given("number", {"type": "string"})]},
    ]}

    CHECK_ORDER = ("code", "request_id", "number", "reference_id", "secret")


class TriggerSchema(BodySchema):
    # Checked by the view, after the campaign (a missing number of an unknown campaign is a 404).
    number = _text(NUMBER, metadata={"description": "The recipient's mobile number, of the account's country"
                                                    " (400 if the numbering plan says it is none)", **_NUMBER_DOC})

    class Meta:
        unknown = ma.EXCLUDE

    #: ``number`` is required (the schema does not refuse its absence itself, so that an
    #: unknown campaign answers 404 first).
    OPENAPI_KEYWORDS = {"allOf": [given("number", {"type": "string"})]}

    CHECK_ORDER = ("number", "reference_id", "secret")


_INSTANT_DOC = [{"format": "date"}, {"format": "date-time"}]


class ListCallsQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    page = ma.fields.Integer(load_default=1, error_messages=_messages(PAGE),
                             validate=validate.Range(min=1, max=MAX_PAGE, error=PAGE),
                             metadata={"description": "The page of results to return. Default 1"})
    per_page = ma.fields.Integer(load_default=PER_PAGE_DEFAULT, error_messages=_messages(PER_PAGE),
                                 validate=validate.Range(min=1, error=PER_PAGE),
                                 metadata={"description": "Results per page. Default 50, maximum 100"})
    direction = ma.fields.String(error_messages=_messages(DIRECTION),
                                 validate=validate.OneOf(("inbound", "outbound"), error=DIRECTION),
                                 metadata={"description": "inbound or outbound"})
    status = ma.fields.String(error_messages=_messages(STATUS), validate=validate.OneOf(CALL_STATUSES, error=STATUS),
                              metadata={"description": "One of " + ", ".join(CALL_STATUSES)})
    from_ = ma.fields.String(data_key="from", error_messages=_messages(FROM),
                             metadata={"description": "Calls created on or after this ISO 8601 date or timestamp"
                                                      " (a date is midnight, a timestamp without an offset is"
                                                      " local time, both in the account's time zone)",
                                       "anyOf": _INSTANT_DOC})
    to = ma.fields.String(error_messages=_messages(TO),
                          metadata={"description": "Calls created before this ISO 8601 date or timestamp, read"
                                                   " like from", "anyOf": _INSTANT_DOC})
    number = ma.fields.String(error_messages=_messages(LIST_NUMBER),
                              metadata={"description": "Calls where this number is the caller or the recipient"
                                                       " (400 if the numbering plan says it is none)",
                                        **_NUMBER_DOC})
    reference_id = ma.fields.String(metadata={"description": "Calls placed with this reference_id"})


# -- responses -----------------------------------------------------------------------------


class EnvelopeSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": '"success" or "error"'})
    code = ma.fields.Integer(required=True, metadata={"description": "Mirrors the HTTP status"})
    unique_id = ma.fields.String(allow_none=True, required=True)
    reference_id = ma.fields.String(allow_none=True, required=True)
    details = ma.fields.String(required=True)


class ErrorEnvelopeSchema(EnvelopeSchema):
    verified = ma.fields.Boolean(metadata={"description": "verify only"})
    attempts_left = ma.fields.Integer(metadata={"description": "verify only, on a wrong code"})


class PublicCallQueuedSchema(EnvelopeSchema):
    """``audio_blast``/``press1``: the envelope; ``otp``: also ``request_id`` and ``expires_in_sec``."""

    request_id = ma.fields.String(metadata={"description": "otp only: the verification request id"})
    expires_in_sec = ma.fields.Integer(metadata={"description": "otp only: seconds until the code expires"})


class OtpSentSchema(EnvelopeSchema):
    request_id = ma.fields.String(required=True)
    expires_in_sec = ma.fields.Integer(required=True)


class VerifiedSchema(EnvelopeSchema):
    request_id = ma.fields.String(required=True)
    verified = ma.fields.Boolean(required=True)


class CallStatusSchema(EnvelopeSchema):
    """One of two shapes: a call (``duration_sec``) or a verification request
    (``verified``, ``attempts``, ``max_attempts``)."""

    call_status = ma.fields.String(required=True, metadata={
        "description": "call: queued, ringing, answered, completed, failed;"
                       " verification: pending, verified, expired, failed"})
    duration_sec = ma.fields.Integer(metadata={"description": "call only"})
    verified = ma.fields.Boolean(metadata={"description": "verification only"})
    attempts = ma.fields.Integer(metadata={"description": "verification only"})
    max_attempts = ma.fields.Integer(metadata={"description": "verification only"})


class CallObjectSchema(ma.Schema):
    unique_id = ma.fields.String(required=True)
    call_id = ma.fields.String(allow_none=True, required=True)
    direction = ma.fields.String(required=True)
    from_number = ma.fields.String(allow_none=True, required=True)
    to_number = ma.fields.String(allow_none=True, required=True)
    status = ma.fields.String(allow_none=True, required=True)
    end_reason = ma.fields.String(allow_none=True, required=True)
    duration_sec = ma.fields.Integer(allow_none=True, required=True)
    campaign_id = ma.fields.Integer(allow_none=True, required=True)
    reference_id = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.String(allow_none=True, required=True)


class PaginationSchema(ma.Schema):
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    total_pages = ma.fields.Integer(required=True)


class CallListSchema(EnvelopeSchema):
    data = ma.fields.List(ma.fields.Nested(CallObjectSchema), required=True)
    pagination = ma.fields.Nested(PaginationSchema, required=True)


class CampaignSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    type = ma.fields.String(required=True)
    status = ma.fields.String(required=True)


class CampaignListSchema(EnvelopeSchema):
    data = ma.fields.List(ma.fields.Nested(CampaignSchema), required=True)


class WalletSchema(ma.Schema):
    balance_inr = ma.fields.Float(required=True, metadata={"description": "The balance, in the account's currency"})
    currency = ma.fields.String(required=True)


class AccountSchema(EnvelopeSchema):
    data = ma.fields.Nested(WalletSchema, required=True)
