"""What the schemathesis runs share: the check that requests valid by the OpenAPI document
are accepted, the refusals each operation's 400 describes, and a resolver that answers
for no name (generated URLs must not send the test to DNS).

A positive case (generated from the document's schemas, or one of its examples) may be
refused with a 400 only for a reason the schema cannot express, which the operation's 400
description names: ``BUSINESS_REFUSALS`` lists each such reason as a pattern of the
error's text, per operation. Any other 400 or 422 for a positive case means that the
document says less than what the view checks: a constraint to declare.
"""
from __future__ import annotations

import re

import pytest

from gateway import net_policy
from gateway.api.public import calls as public_calls
from gateway.api.public import common, schemas
from gateway.campaigns import saved
from gateway.otp import service as otp_service
from net_support import fake_resolver

__all__ = ["BUSINESS_REFUSALS", "hosts_do_not_resolve", "valid_requests_are_accepted"]

# What the numbering plan refuses in a number the pattern lets through (gateway.numbering).
_NUMBER = (r"'[^']*' (is too short|is too long|is not a valid number|is not a mobile number"
           r"|has an unknown country code|is not a phone number$)")
# A URL whose host is an address the outbound policy refuses (gateway.net_policy).
_ADDRESS = r"'[^']*': .* resolves to .*; refused$"
# A bare provider target whose agent id (or Vapi key) is in no setting (gateway.calls.bot_target).
_NOT_CONFIGURED = r"^no (ElevenLabs agent id|Vapi assistant id|Vapi API key) is configured for this account; "


def _exactly(*texts: str) -> list[str]:
    return [f"^{re.escape(text)}$" for text in texts]


BUSINESS_REFUSALS: dict[str, list[str]] = {
    "POST /api/calls": [
        rf"^(destination_number|caller_id_number): {_NUMBER}",
        rf"^(socket_url|webhook_url): {_ADDRESS}",
        r"^caller_id_number is required: the account has no default caller ID$",
        r"^socket_url or webhook_url is required: the account has no default for either$",
        _NOT_CONFIGURED,
    ],
    "POST /api/calls/transfer": [rf"^destination_number: {_NUMBER}"],
    "POST /api/calls/redirect": [rf"^media_server: {_ADDRESS}", _NOT_CONFIGURED],
    "POST /v1/calls": [
        rf"^(phone|phone_number): {_NUMBER}",
        r"^agent_name: several agents have this name; send agent \(the key\) or agent_id$",
    ],
    # Read before the signature is checked, so refused even in a report nobody could sign.
    "POST /v1/webhooks/call-completed": _exactly("The body contains a NUL character",
                                                 "The body contains an unpaired surrogate"),
    "GET /api/public/v1/calls": _exactly(schemas.LIST_NUMBER),
    "POST /api/public/v1/calls": _exactly(schemas.NUMBER, schemas.AUDIO_UNKNOWN, schemas.CALLER_ID,
                                          common.NO_CALLER_ID, public_calls.NO_AGENT_DESTINATION),
    "POST /api/public/v1/otp/send": _exactly(schemas.NUMBER, schemas.CALLER_ID, common.NO_CALLER_ID),
    "POST /api/public/v1/otp/verify": _exactly(otp_service.NOT_FOUND, otp_service.EXPIRED, otp_service.TOO_MANY,
                                               otp_service.USED, schemas.NUMBER),
    "POST /api/public/v1/campaigns/{campaign_id}/trigger": _exactly(
        saved.IS_OTP, saved.NOT_SINGLE, saved.NO_AUDIO, saved.PAUSED, schemas.NUMBER, schemas.CALLER_ID,
        common.NO_CALLER_ID, public_calls.NO_AGENT_DESTINATION),
}

# The voice-agent admin surface (gateway.api.voice_admin): what a map's keys must be (OpenAPI
# 3.0 has no propertyNames), a driver's reference, a URL's host, a tool's JSON Schema.
_VOICE = "/api/agent-api/voice"
_VOICE_AGENT = [r"^dynamic_variables\..*\.key: String does not match expected pattern\.$",
                r"^(elevenlabs|vapi) id '.*' is invalid$", r"^the websocket driver's URL ", _ADDRESS]
BUSINESS_REFUSALS.update({
    f"POST {_VOICE}/agents": _VOICE_AGENT,
    f"PATCH {_VOICE}/agents/{{agent_id}}": _VOICE_AGENT,
    f"POST {_VOICE}/knowledge/url": [rf"^url: URL {_ADDRESS}", r"^url: URL '[^']*' "],
    f"POST {_VOICE}/agents/{{agent_id}}/tools": [
        r"^headers\..*\.key: (String does not match expected pattern|Must not contain control characters"
        r"|Length must be between 1 and 100)\.$",
        rf"^url: URL {_ADDRESS}", r"^url: URL '[^']*' ", r"^url: env vars may be used",
        r"^parameters: not a valid JSON Schema", r"^parameters: the schema must describe an object"],
})

# The /api and /v1 surfaces join several fields' messages with "; " (gateway.api.errors).
_NEXT_FIELD = re.compile(r"; (?=[a-z_.]+: )")


def _error_text(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        return str(body.get("error") or body.get("details") or body)
    return str(body)


def valid_requests_are_accepted(ctx, response, case):
    """A schemathesis check: a positive case is not refused with 400 or 422, unless with a
    400 that the operation documents and whose every message is a reason in
    ``BUSINESS_REFUSALS``."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status not in (400, 422):
        return None
    label = case.operation.label
    text = _error_text(response)
    reasons = BUSINESS_REFUSALS.get(label, [])
    documented = str(status) in case.operation.definition.raw.get("responses", {})
    if documented and status == 400 and all(any(re.search(reason, part) for reason in reasons)
                                            for part in _NEXT_FIELD.split(text)):
        return None
    raise AssertionError(
        f"{label}: a request valid by the OpenAPI document was refused with {status}: {text!r}\n"
        f"path {case.path_parameters!r}, query {case.query!r}, body {case.body!r}")


@pytest.fixture
def hosts_do_not_resolve(monkeypatch):
    """Generated URLs name random hosts: none resolves (so none is looked up in DNS, and a
    given URL is judged by its literal address alone, as ``net_policy`` does for a name
    that does not resolve)."""
    monkeypatch.setattr(net_policy.policy, "resolver", fake_resolver({}))
