"""Request and response bodies of ``/api`` (field names as the contract spells them).

Request bodies refuse unknown fields (400): a misspelt ``socket_url`` would otherwise
silently send the call's media to the account's default. ``null`` for an optional
field means the same as leaving it out.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import RAISE, ValidationError, validate

from gateway.api.openapi import MEDIA_TARGET, PHONE_NUMBER, TRANSFER_DESTINATION, WEBHOOK_URL
from gateway.api.fields import Text, UTCDateTime
from gateway.models.validators import check_media_target, check_webhook_url


class Checked(Text):
    """A text field cleaned by one of ``gateway.models.validators``' checkers."""

    def __init__(self, checker, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.checker = checker

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.checker(text, attr)
        except ValueError as exc:
            message = str(exc)  # "<attr> '<value>' is …": the field name is added once, later
            raise ValidationError(message.removeprefix(f"{attr} ")) from None


class StrictSchema(ma.Schema):
    class Meta:
        unknown = RAISE


class PlaceCallSchema(StrictSchema):
    destination_number = Text(
        required=True, validate=validate.Length(min=1, max=64),
        metadata={"description": "Number to call, in E.164; without + it is read in the account's region"
                                 " if it is a valid number there, else as international digits"
                                 " (5511999999999 is +5511999999999). 400 if it is a valid number neither"
                                 " way (the numbering plan, which the pattern cannot tell)",
                  "example": "5511999999999", "pattern": PHONE_NUMBER})
    caller_id_number = Text(
        allow_none=True, validate=validate.Length(min=1, max=64),
        metadata={"description": "Caller ID; the account's default caller ID if omitted (400 if the account"
                                 " has none). Read like destination_number, but it need only be a"
                                 " possible number (a length its country's numbers have): which caller"
                                 " IDs pass is the carrier's decision",
                  "example": "5511888888888",
                  "pattern": PHONE_NUMBER})
    caller_id_name = Text(allow_none=True, validate=validate.Length(max=64))
    socket_url = Checked(
        check_media_target, allow_none=True, validate=validate.Length(min=1, max=2048),
        metadata={"description": "Where the media goes: a ws:// or wss:// URL, 'elevenlabs', 'vapi',"
                                 " 'elevenlabs&<agent id>' or 'vapi&<assistant id>'. Takes precedence"
                                 " over webhook_url for the media. A URL's host must resolve to public"
                                 " addresses only (loopback, private and link-local ones are refused,"
                                 " 400). With neither socket_url nor webhook_url, the account's defaults"
                                 " apply (400 if it has none).",
                  "example": "wss://my-bot-server.com/media", "pattern": MEDIA_TARGET})
    webhook_url = Checked(
        check_webhook_url, allow_none=True, validate=validate.Length(min=1, max=2048),
        metadata={"description": "Routing webhook consulted when the call starts (if no socket_url),"
                                 " and target of the call's status callbacks. Its host must resolve to"
                                 " public addresses only (400 otherwise).",
                  "example": "https://my-api.com/route-call", "pattern": WEBHOOK_URL})


class CallCreatedSchema(ma.Schema):
    call_uuid = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"example": "queued"})


class CallRefSchema(StrictSchema):
    call_uuid = Text(required=True, validate=validate.Length(min=1, max=64),
                     metadata={"description": "The call_uuid POST /api/calls returned (404 for any other value)",
                               "format": "uuid"})


class TransferSchema(CallRefSchema):
    destination_number = Text(
        required=True, validate=validate.Length(min=1, max=300),
        metadata={"description": "A PSTN number (read in the account's region unless it starts"
                                 " with +), a 3-5 digit extension, or a sip:/sips: URI, as far as the"
                                 " account's transfer policy allows (403 otherwise). A number that is"
                                 " valid in no numbering plan is a 400",
                  "pattern": TRANSFER_DESTINATION})


class RedirectSchema(CallRefSchema):
    media_server = Checked(
        check_media_target, required=True, validate=validate.Length(min=1, max=2048),
        metadata={"description": "'elevenlabs' (native integration) or a ws:// or wss:// URL (its host"
                                 " resolving to public addresses only); also 'vapi',"
                                 " 'elevenlabs&<agent id>', 'vapi&<assistant id>'. A URL whose host does"
                                 " not resolve to public addresses only is a 400",
                  "example": "elevenlabs", "pattern": MEDIA_TARGET})


class ActionResultSchema(ma.Schema):
    call_uuid = ma.fields.String(required=True)
    action = ma.fields.String(required=True, validate=validate.OneOf(["hangup", "transfer", "redirect"]))
    status = ma.fields.String(required=True, metadata={"description": "The call's status when the command was sent"})


class CallSchema(ma.Schema):
    call_uuid = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={
        "description": "queued, ringing, in-progress, completed, busy, no-answer, canceled or failed"})
    direction = ma.fields.String(required=True, metadata={"description": "outbound or inbound"})
    destination_number = ma.fields.String(required=True)
    caller_id_number = ma.fields.String(required=True)
    caller_id_name = ma.fields.String(required=True)
    socket_url = ma.fields.String(allow_none=True, required=True)
    webhook_url = ma.fields.String(allow_none=True, required=True)
    hangup_cause = ma.fields.String(allow_none=True, required=True)
    duration = ma.fields.Integer(required=True, metadata={"description": "Seconds since the answer (0 if never answered)"})
    created_at = UTCDateTime(required=True)
    answered_at = UTCDateTime(allow_none=True, required=True)
    ended_at = UTCDateTime(allow_none=True, required=True)
