"""Request and response bodies of ``/v1``: both contracts' spellings, and the provider
completion report.

Unknown request fields are ignored (``EXCLUDE``): the surface merges two contracts and
their integrators send fields the other one lacks (``campaign_id`` and the like).
``null`` for an optional field means the same as leaving it out.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import EXCLUDE, INCLUDE, ValidationError, validate, validates_schema

from gateway.api.fields import Text, UTCDateTime
from gateway.api.openapi import NOT_BLANK, PHONE_NUMBER, given
from gateway.webhooks.provider import MAX_PROVIDER_CALL_ID, PROVIDER_STATUSES

MAX_PAGE = 100
DEFAULT_PAGE = 50
_MAX_INT = 2**31 - 1  # ids and offsets are 32-bit on PostgreSQL


class StringOrInt(Text):
    """A string; an integer is taken as its decimal string (``agent_id: 12``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


def _given(data: dict, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if data.get(name) is not None]


class PlaceAgentCallSchema(ma.Schema):
    class Meta:
        unknown = EXCLUDE

    phone = Text(allow_none=True, validate=validate.Length(min=1, max=64),
                 metadata={"description": "Number to call (agent-calls-minimal spelling); send phone or"
                                          " phone_number", "example": "+996700000000", "pattern": PHONE_NUMBER})
    phone_number = Text(allow_none=True, validate=validate.Length(min=1, max=64),
                        metadata={"description": "Number to call; read in the account's region unless it"
                                                 " starts with +. 400 if it is not a valid number there (the"
                                                 " numbering plan, which the pattern cannot tell)",
                                  "example": "+919876543210", "pattern": PHONE_NUMBER})
    agent = Text(allow_none=True, validate=validate.Length(min=1, max=64),
                 metadata={"description": "The agent's internal key", "example": "akylai"})
    agent_name = Text(allow_none=True, validate=validate.Length(min=1, max=255),
                      metadata={"description": "The agent's name", "example": "Home Loan Agent"})
    agent_id = StringOrInt(allow_none=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "The agent's id, as GET /v1/agents lists it (a JSON"
                                                    " integer is read as its digits)"})
    custom_args = ma.fields.Dict(keys=ma.fields.String(), allow_none=True,
                                 metadata={"description": "Passed to the agent and echoed in the call's record"})
    contact_name = Text(allow_none=True, validate=validate.Length(max=255),
                        metadata={"description": "Who is called; defaults to custom_args.name"})

    #: One number, in either spelling, and one way to name the agent (null is not sent).
    OPENAPI_KEYWORDS = {"allOf": [
        {"oneOf": [given("phone", {"type": "string"}), given("phone_number", {"type": "string"})]},
        {"oneOf": [given("agent", {"type": "string"}), given("agent_name", {"type": "string"}),
                   given("agent_id", {"type": "string"})]},
    ]}

    @validates_schema(skip_on_field_errors=True)
    def _one_phone_one_agent(self, data, **kwargs):
        phones = _given(data, ("phone", "phone_number"))
        if not phones:
            raise ValidationError("Missing data for required field (send phone or phone_number).", "phone_number")
        if len({data[name] for name in phones}) > 1:
            raise ValidationError("phone and phone_number differ; send one of them.", "phone_number")
        agents = _given(data, ("agent", "agent_name", "agent_id"))
        if not agents:
            raise ValidationError("Missing data for required field (send agent, agent_name or agent_id).",
                                  "agent")
        if len(agents) > 1:
            raise ValidationError(f"send one of agent, agent_name or agent_id, not {' and '.join(agents)}.",
                                  "agent")


class CallRegisteredSchema(ma.Schema):
    call_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"example": "registered"})


class AgentCallSchema(ma.Schema):
    call_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={
        "description": "registered, ringing, in_progress, completed, no_answer, busy, canceled or failed"})
    direction = ma.fields.String(required=True, metadata={"description": "outbound or inbound"})
    phone_number = ma.fields.String(required=True, metadata={"description": "The contact's number, E.164"})
    phone = ma.fields.String(required=True, metadata={"description": "Same as phone_number"})
    agent = ma.fields.String(allow_none=True, required=True, metadata={"description": "The agent's internal key"})
    agent_id = ma.fields.String(allow_none=True, required=True)
    agent_name = ma.fields.String(allow_none=True, required=True)
    contact_name = ma.fields.String(allow_none=True, required=True)
    custom_args = ma.fields.Dict(keys=ma.fields.String(), required=True)
    duration_seconds = ma.fields.Integer(required=True, metadata={"description": "Seconds since the answer"})
    duration = ma.fields.Integer(required=True, metadata={"description": "Same as duration_seconds"})
    provider_duration_seconds = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "The duration the agent's provider reported (POST /v1/webhooks/call-completed), as it"
                       " reported it; null until then. duration_seconds is the gateway's own measure"})
    recording_url = ma.fields.String(allow_none=True, required=True)
    transcript = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String()), allow_none=True, required=True,
        metadata={"description": 'Turns in order, [{"bot": "…"}, {"user": "…"}]; null until processed'})
    analysis = ma.fields.Dict(keys=ma.fields.String(), allow_none=True, required=True,
                              metadata={"description": "e.g. summary and classification; null until processed"})
    called_at = UTCDateTime(required=True)
    ended_at = UTCDateTime(allow_none=True, required=True)


class AgentListArgsSchema(ma.Schema):
    class Meta:
        unknown = EXCLUDE

    limit = ma.fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = ma.fields.Integer(load_default=0, validate=validate.Range(min=0, max=_MAX_INT))


class AgentSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"description": "Use as agent_id"})
    key = ma.fields.String(required=True, metadata={"description": "Internal key; use as agent",
                                                     "example": "akylai"})
    name = ma.fields.String(required=True)
    language = ma.fields.String(required=True, metadata={"example": "hi-IN"})
    agent_type = ma.fields.String(required=True, metadata={"description": "inbound or outbound"})


class AgentListSchema(ma.Schema):
    agents = ma.fields.List(ma.fields.Nested(AgentSchema), required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)


class ProviderReportSchema(ma.Schema):
    """A provider's completion report (agent-calls-minimal); what is checked once its
    signature is, with the messages ``gateway.webhooks.provider.clean_completion`` gives.
    Other fields are kept with the report."""

    class Meta:
        unknown = INCLUDE

    event_type = ma.fields.String(validate=validate.OneOf(["call.completed"]),
                                  metadata={"description": "call.completed (the default)"})
    provider_call_id = ma.fields.String(required=True, validate=validate.Length(max=MAX_PROVIDER_CALL_ID),
                                        metadata={"pattern": NOT_BLANK,
                                                  "description": "The provider's id of the call"})
    status = ma.fields.String(required=True, validate=validate.OneOf(sorted(PROVIDER_STATUSES)))
    transcript = ma.fields.Raw(allow_none=True, metadata={
        "description": 'Text ("agent: Hello\\nuser: Hi") or turns ([{"bot": "…"}, {"user": "…"}])'})
    duration = ma.fields.Float(allow_none=True, validate=validate.Range(min=0, max=10 ** 7, max_inclusive=False),
                               metadata={"description": "Talk seconds"})
    analysis = ma.fields.Dict(keys=ma.fields.String(), allow_none=True)
    recording_url = ma.fields.String(allow_none=True, validate=validate.Length(max=2048))


class ReportReceivedSchema(ma.Schema):
    received = ma.fields.Boolean(required=True)
    call_id = ma.fields.String(required=True, metadata={"description": "The call the report was for"})
    duplicate = ma.fields.Boolean(required=True, metadata={
        "description": "true: a report for this provider_call_id was received before; nothing changed"})
