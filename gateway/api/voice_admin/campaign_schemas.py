"""Bodies and answers of the voice-admin surface's campaigns and actions."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from gateway.api.fields import Text, UTCDateTime
from gateway.dialer.contacts import MAX_PER_REQUEST
from gateway.dialer.campaigns import LIMITS
from gateway.models import ACTION_KINDS, ACTION_STATUSES, CONTACT_STATES, VOICE_CAMPAIGN_STATUSES

ID_PATTERN = r"^[0-9]{1,18}$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
DEFAULT_PAGE, MAX_PAGE = 50, 100
_MAX_INT = 2**31 - 1


def _range(field: str) -> validate.Range:
    low, high = LIMITS[field]
    return validate.Range(min=low, max=high)


class CampaignPageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = ma.fields.Integer(load_default=0, validate=validate.Range(min=0, max=_MAX_INT))


class CampaignContactListArgsSchema(CampaignPageArgsSchema):
    state = ma.fields.String(validate=validate.OneOf(CONTACT_STATES))


class CallingWindowSchema(ma.Schema):
    days = ma.fields.List(ma.fields.Integer(validate=validate.Range(min=1, max=7), strict=True),
                          validate=validate.Length(min=1, max=7),
                          metadata={"description": "ISO weekdays: 1 Monday … 7 Sunday"})
    start = ma.fields.String(validate=validate.Regexp(CLOCK_PATTERN), metadata={"pattern": CLOCK_PATTERN,
                                                                                   "example": "09:00"})
    end = ma.fields.String(validate=validate.Regexp(CLOCK_PATTERN),
                           metadata={"pattern": CLOCK_PATTERN, "example": "20:00",
                                     "description": "exclusive; before start: the window runs overnight"})


class CreateVoiceCampaignSchema(ma.Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=255))
    agent_id = ma.fields.String(required=True, validate=validate.Regexp(ID_PATTERN),
                                metadata={"pattern": ID_PATTERN, "description": "The voice agent that talks"})
    from_number = Text(validate=validate.Length(min=1, max=64), metadata={
        "description": "The caller ID, E.164 or national in the account's region; default: the account's"})
    calls_per_second = ma.fields.Float(validate=_range("calls_per_second"), allow_nan=False)
    max_concurrent = ma.fields.Integer(strict=True, validate=_range("max_concurrent"))
    max_attempts = ma.fields.Integer(strict=True, validate=_range("max_attempts"))
    retry_backoff_seconds = ma.fields.Integer(strict=True, validate=_range("retry_backoff_seconds"))
    calling_window = ma.fields.Nested(CallingWindowSchema)
    timezone = Text(validate=validate.Length(min=1, max=64), metadata={
        "description": "IANA zone for numbers whose zone phonenumbers cannot tell; default: the account's"})


class VoiceCampaignSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    agent_id = ma.fields.String()
    owner_agent_id = ma.fields.String(allow_none=True)
    from_number = ma.fields.String()
    calls_per_second = ma.fields.Float()
    max_concurrent = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    retry_backoff_seconds = ma.fields.Integer()
    calling_window = ma.fields.Nested(CallingWindowSchema)
    timezone = ma.fields.String()
    status = ma.fields.String(validate=validate.OneOf(VOICE_CAMPAIGN_STATUSES))
    status_reason = ma.fields.String(allow_none=True)
    contacts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(),
                              metadata={"description": "How many contacts are in each state"})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    started_at = UTCDateTime(allow_none=True)
    completed_at = UTCDateTime(allow_none=True)


class VoiceCampaignListSchema(ma.Schema):
    campaigns = ma.fields.List(ma.fields.Nested(VoiceCampaignSchema))
    total = ma.fields.Integer()
    limit = ma.fields.Integer()
    offset = ma.fields.Integer()


class LoadCampaignContactsSchema(ma.Schema):
    contacts = ma.fields.List(
        ma.fields.Raw(metadata={"type": "object", "description": "{phone, name?, variables?}"}),
        required=True,
        validate=validate.Length(min=1, max=MAX_PER_REQUEST,
                                 error=f"Between 1 and {MAX_PER_REQUEST} contacts per request."),
        metadata={"description": "Each row: phone (E.164, or national in the account's region), an optional"
                                 " name, optional variables for the agent (names to strings, numbers,"
                                 " booleans or null)"})


class RejectedContactSchema(ma.Schema):
    index = ma.fields.Integer()
    phone = ma.fields.String(allow_none=True)
    reason = ma.fields.String()


class CampaignContactsReportSchema(ma.Schema):
    loaded = ma.fields.Integer()
    duplicates_skipped = ma.fields.Integer()
    do_not_call = ma.fields.Integer()
    rejected = ma.fields.List(ma.fields.Nested(RejectedContactSchema))


class CampaignContactSchema(ma.Schema):
    id = ma.fields.String()
    phone = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    variables = ma.fields.Dict()
    timezone = ma.fields.String(allow_none=True)
    state = ma.fields.String(validate=validate.OneOf(CONTACT_STATES))
    attempts = ma.fields.Integer()
    last_call_id = ma.fields.String(allow_none=True)
    last_outcome = ma.fields.String(allow_none=True)
    next_attempt_at = UTCDateTime(allow_none=True)


class CampaignContactListSchema(ma.Schema):
    contacts = ma.fields.List(ma.fields.Nested(CampaignContactSchema))
    total = ma.fields.Integer()
    limit = ma.fields.Integer()
    offset = ma.fields.Integer()


class CampaignActionRequestedSchema(ma.Schema):
    action_id = ma.fields.String()
    kind = ma.fields.String(validate=validate.OneOf(ACTION_KINDS))
    status = ma.fields.String(validate=validate.OneOf(ACTION_STATUSES))
    campaign_id = ma.fields.String()


class CampaignActionStepSchema(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(ACTION_STATUSES))
    by = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    at = UTCDateTime()


class CampaignActionSchema(ma.Schema):
    id = ma.fields.String()
    kind = ma.fields.String(validate=validate.OneOf(ACTION_KINDS))
    status = ma.fields.String(validate=validate.OneOf(ACTION_STATUSES))
    reason = ma.fields.String(allow_none=True)
    campaign_id = ma.fields.String()
    requested_by = ma.fields.String()
    created_at = UTCDateTime()
    decided_by = ma.fields.String(allow_none=True)
    decided_at = UTCDateTime(allow_none=True)
    executed_at = UTCDateTime(allow_none=True)
    history = ma.fields.List(ma.fields.Nested(CampaignActionStepSchema))
