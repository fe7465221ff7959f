"""Request and response bodies of ``/api/agent-api/voice``.

Unknown request fields are refused (marshmallow's ``RAISE``): an autonomous agent that
misspells ``first_mesage`` learns it at once instead of building an agent without one.
Lists are paginated as ``/v1`` does: ``?limit`` (1-100, default 50) and ``?offset``, the
answer carrying ``total``, ``limit`` and ``offset``.
"""
from __future__ import annotations

import math

import marshmallow as ma
from marshmallow import ValidationError, validate

from gateway.api.fields import Text, UTCDateTime
from gateway.api.openapi import NOT_BLANK
from gateway.domain import AGENT_DRIVERS
from gateway.models import AGENT_TYPES
from gateway.voice_agents import profile as limits

MAX_PAGE = 100
DEFAULT_PAGE = 50
_MAX_INT = 2**31 - 1
#: An agent key: what ``gateway.models.validators.check_slug`` takes.
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
#: An env var's name, as tools write it in ``{{env.NAME}}``.
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,63}$"
#: A tool's name, as the agent's LLM calls it.
TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
#: Text that PostgreSQL stores: anything but NUL (prompts have line breaks).
NO_NUL = r"^[^\x00]*$"


class Prose(ma.fields.String):
    """Free text with line breaks (a prompt); NUL refused."""

    default_error_messages = {"nul": "Must not contain NUL characters."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = {"pattern": NO_NUL, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class Scalar(ma.fields.Field):
    """A dynamic variable's value: text, a number or a boolean."""

    default_error_messages = {"invalid": "Must be a string, a number or a boolean."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if "\x00" in value or len(value) > limits.MAX_VARIABLE_VALUE:
                raise ValidationError(f"Must be text of at most {limits.MAX_VARIABLE_VALUE} characters"
                                      " without NUL.")
            return value
        if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
            return value  # NaN and Infinity (which Python's JSON reader takes) are no JSON
        raise self.make_error("invalid")


def _dynamic_variables(**kwargs):
    return ma.fields.Dict(
        keys=ma.fields.String(validate=validate.Regexp(limits.VARIABLE_NAME_PATTERN),
                              metadata={"pattern": limits.VARIABLE_NAME_PATTERN}),
        values=Scalar(metadata={"oneOf": [{"type": "string", "maxLength": limits.MAX_VARIABLE_VALUE,
                                           "pattern": NO_NUL},
                                          {"type": "number"}, {"type": "boolean"}]}),
        validate=validate.Length(max=limits.MAX_DYNAMIC_VARIABLES),
        metadata={"description": "Defaults of the prompt's {{name}} placeholders; a call's variables win",
                  "maxProperties": limits.MAX_DYNAMIC_VARIABLES},
        **kwargs)


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = ma.fields.Integer(load_default=0, validate=validate.Range(min=0, max=_MAX_INT))


class VoiceAgentListArgsSchema(PageArgsSchema):
    owner_agent_id = Text(validate=validate.Regexp(r"^[0-9]{1,18}$"), metadata={
        "pattern": r"^[0-9]{1,18}$",
        "description": "Only the agents this owner created (within what the key may read)"})


class _AgentFields(ma.Schema):
    name = Text(validate=validate.Length(min=1, max=255), metadata={"pattern": NOT_BLANK})
    language = Text(validate=validate.Length(min=2, max=16), metadata={
        "pattern": r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", "example": "en"})
    agent_type = ma.fields.String(validate=validate.OneOf(AGENT_TYPES))
    driver = ma.fields.String(validate=validate.OneOf(AGENT_DRIVERS), metadata={
        "description": "elevenlabs (the default), vapi, or websocket (any bot speaking Twilio Media Streams)"})
    driver_ref = Text(validate=validate.Length(min=1, max=2048), metadata={
        "description": "The ElevenLabs agent id, the Vapi assistant id, or the bot's ws(s):// URL"})
    prompt = Prose(allow_none=True, validate=validate.Length(max=limits.MAX_PROMPT))
    first_message = Prose(allow_none=True, validate=validate.Length(max=limits.MAX_FIRST_MESSAGE))
    voice_id = Text(allow_none=True, validate=validate.Length(min=1, max=limits.MAX_VOICE_ID),
                    metadata={"description": "An ElevenLabs voice id (GET /voices)"})
    llm = Text(allow_none=True, validate=validate.Length(min=1, max=limits.MAX_LLM),
               metadata={"example": "gemini-2.0-flash"})
    dynamic_variables = _dynamic_variables()


class VoiceAgentCreateSchema(_AgentFields):
    name = Text(required=True, validate=validate.Length(min=1, max=255), metadata={"pattern": NOT_BLANK})
    driver_ref = Text(required=True, validate=validate.Length(min=1, max=2048), metadata={
        "description": "The ElevenLabs agent id, the Vapi assistant id, or the bot's ws(s):// URL"})
    key = Text(validate=validate.Regexp(SLUG), metadata={
        "pattern": SLUG, "description": "The internal key /v1 calls it by; derived from the name if absent"})


class VoiceAgentUpdateSchema(_AgentFields):
    pass


class VoiceAgentSchema(ma.Schema):
    id = ma.fields.String(required=True)
    key = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    language = ma.fields.String(required=True)
    agent_type = ma.fields.String(required=True)
    driver = ma.fields.String(required=True)
    driver_ref = ma.fields.String(required=True)
    owner_agent_id = ma.fields.String(allow_none=True, required=True,
                                      metadata={"description": "The agent whose key created it"})
    prompt = ma.fields.String(allow_none=True, required=True)
    first_message = ma.fields.String(allow_none=True, required=True)
    voice_id = ma.fields.String(allow_none=True, required=True)
    llm = ma.fields.String(allow_none=True, required=True)
    dynamic_variables = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(), required=True)
    knowledge = ma.fields.List(ma.fields.String(), required=True,
                               metadata={"description": "Ids of the attached knowledge documents"})
    phone_numbers = ma.fields.List(ma.fields.String(), required=True)
    created_at = UTCDateTime(required=True)


class VoiceAgentListSchema(ma.Schema):
    agents = ma.fields.List(ma.fields.Nested(VoiceAgentSchema), required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)


class DeletedSchema(ma.Schema):
    deleted = ma.fields.Boolean(required=True)


class PhoneNumberSchema(ma.Schema):
    id = ma.fields.String(required=True)
    phone_number = ma.fields.String(required=True, metadata={"example": "+14155550100"})
    agent_id = ma.fields.String(allow_none=True, required=True,
                                metadata={"description": "The agent inbound calls go to, if one"})
    route = ma.fields.String(required=True, metadata={"description": "agent, bot or webhook"})


class PhoneNumberListSchema(ma.Schema):
    phone_numbers = ma.fields.List(ma.fields.Nested(PhoneNumberSchema), required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)


class AttachPhoneSchema(ma.Schema):
    phone_number = Text(validate=validate.Regexp(r"^\+?[0-9]{1,15}$"), metadata={
        "pattern": r"^\+?[0-9]{1,15}$", "description": "The number, E.164; or send phone_number_id"})
    phone_number_id = Text(validate=validate.Regexp(r"^[0-9]{1,18}$"), metadata={"pattern": r"^[0-9]{1,18}$"})

    OPENAPI_KEYWORDS = {"oneOf": [{"required": ["phone_number"]}, {"required": ["phone_number_id"]}]}

    @ma.validates_schema(skip_on_field_errors=True)
    def _one(self, data, **kwargs):
        if ("phone_number" in data) == ("phone_number_id" in data):
            raise ValidationError("send phone_number or phone_number_id (one of them)", "phone_number")


class EnvVarListSchema(ma.Schema):
    env_vars = ma.fields.List(ma.fields.String(), required=True,
                              metadata={"description": "Names only: values are never returned"})


class EnvVarValueSchema(ma.Schema):
    value = Prose(required=True, validate=validate.Length(min=1, max=4096))


class EnvVarSetSchema(ma.Schema):
    name = ma.fields.String(required=True)
    set = ma.fields.Boolean(required=True)


class ToolSchema(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "webhook or calendly"})
    description = ma.fields.String(required=True)
    method = ma.fields.String(required=True)
    url = ma.fields.String(required=True, metadata={"description": "With its {{env.NAME}} placeholders"})
    header_names = ma.fields.List(ma.fields.String(), required=True,
                                  metadata={"description": "The headers sent (their values are not shown)"})
    parameters = ma.fields.Dict(required=True, metadata={"description": "The JSON Schema of the parameters"})
    created_at = UTCDateTime(required=True)


class ToolListSchema(ma.Schema):
    tools = ma.fields.List(ma.fields.Nested(ToolSchema), required=True)


class WebhookToolSchema(ma.Schema):
    name = Text(required=True, validate=validate.Regexp(TOOL_NAME), metadata={"pattern": TOOL_NAME})
    description = Prose(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"description": "What the tool does, for the agent's LLM"})
    method = ma.fields.String(load_default="POST", validate=validate.OneOf(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    url = Text(required=True, validate=[validate.Length(min=1, max=2048), validate.Regexp(r"^https?://[!-~]+$")],
               metadata={"pattern": r"^https?://[!-~]+$",
        "description": "http(s) URL on a public address; {{env.NAME}} allowed in the path and query"})
    headers = ma.fields.Dict(keys=Text(validate=[validate.Length(min=1, max=100),
                                                 validate.Regexp(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")],
                                       metadata={"pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}),
                             values=Text(validate=validate.Length(max=2000)),
                             validate=validate.Length(max=20), load_default=dict,
                             metadata={"description": "{{env.NAME}} allowed in values", "maxProperties": 20})
    parameters = ma.fields.Dict(load_default=lambda: {"type": "object"},
                                metadata={"description": "A JSON Schema (type object) of the parameters"})


class CalendlyToolSchema(ma.Schema):
    event_type = Text(required=True, validate=[validate.Length(min=1, max=512), validate.Regexp(r"^https://[!-~]+$")],
                      metadata={
        "pattern": r"^https://[!-~]+$", "example": "https://api.calendly.com/event_types/AAAA",
        "description": "The Calendly event type's URI"})
    name = Text(load_default="calendly", validate=validate.Regexp(TOOL_NAME), metadata={"pattern": TOOL_NAME})
    token_env = Text(load_default="CALENDLY_TOKEN", validate=validate.Regexp(ENV_NAME),
                     metadata={"pattern": ENV_NAME, "description": "The env var holding the Calendly token"})


class KnowledgeDocumentSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "text or url"})
    url = ma.fields.String(allow_none=True, required=True)
    status = ma.fields.String(required=True, metadata={"description": "processing, ready or failed"})
    failure_reason = ma.fields.String(allow_none=True, required=True)
    content_type = ma.fields.String(allow_none=True, required=True)
    characters = ma.fields.Integer(required=True, metadata={"description": "Length of the extracted text"})
    owner_agent_id = ma.fields.String(allow_none=True, required=True)
    created_at = UTCDateTime(required=True)


class KnowledgeListSchema(ma.Schema):
    documents = ma.fields.List(ma.fields.Nested(KnowledgeDocumentSchema), required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)


class KnowledgeTextSchema(ma.Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=255), metadata={"pattern": NOT_BLANK})
    text = Prose(required=True, validate=validate.Length(min=1, max=60_000))


class KnowledgeUrlSchema(ma.Schema):
    url = Text(required=True, validate=[validate.Length(min=1, max=2048), validate.Regexp(r"^https?://[!-~]+$")],
               metadata={"pattern": r"^https?://[!-~]+$", "description": "http(s) URL on a public address"})
    name = Text(validate=validate.Length(min=1, max=255), metadata={"pattern": NOT_BLANK,
                                                                     "description": "Defaults to the URL"})


class AgentKnowledgeSchema(ma.Schema):
    attach = ma.fields.List(Text(validate=validate.Regexp(r"^[0-9]{1,18}$"), metadata={"pattern": r"^[0-9]{1,18}$"}),
                            validate=validate.Length(max=100), load_default=list,
                            metadata={"description": "Document ids to attach", "maxItems": 100})
    detach = ma.fields.List(Text(validate=validate.Regexp(r"^[0-9]{1,18}$"), metadata={"pattern": r"^[0-9]{1,18}$"}),
                            validate=validate.Length(max=100), load_default=list,
                            metadata={"description": "Document ids to detach", "maxItems": 100})


class AgentKnowledgeListSchema(ma.Schema):
    knowledge = ma.fields.List(ma.fields.String(), required=True)


class VoiceSchema(ma.Schema):
    voice_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    category = ma.fields.String(allow_none=True, required=True)
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    preview_url = ma.fields.String(allow_none=True, required=True)


class VoiceListSchema(ma.Schema):
    voices = ma.fields.List(ma.fields.Nested(VoiceSchema), required=True)


class ToolRunSchema(ma.Schema):
    tool_name = ma.fields.String(required=True)
    parameters = ma.fields.Dict(required=True)
    result = ma.fields.String(required=True)
    is_error = ma.fields.Boolean(required=True)
    duration_ms = ma.fields.Integer(required=True)
    started_at = UTCDateTime(required=True)


class ConversationSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"description": "The call's uuid"})
    agent_id = ma.fields.String(required=True)
    direction = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    end_reason = ma.fields.String(allow_none=True, required=True)
    from_number = ma.fields.String(required=True)
    to_number = ma.fields.String(required=True)
    started_at = UTCDateTime(required=True)
    answered_at = UTCDateTime(allow_none=True, required=True)
    ended_at = UTCDateTime(allow_none=True, required=True)
    duration_seconds = ma.fields.Integer(required=True, metadata={"description": "Seconds from answer to end"})
    transcript = ma.fields.List(ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String()),
                                allow_none=True, required=True)
    recording_url = ma.fields.String(allow_none=True, required=True)
    analysis = ma.fields.Dict(allow_none=True, required=True)
    outcome = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "The conversion outcome from the provider's analysis (its outcome, classification or"
                       " call_successful), null until the post-call report has it"})
    tool_runs = ma.fields.List(ma.fields.Nested(ToolRunSchema), required=True)


class ConversationListSchema(ma.Schema):
    conversations = ma.fields.List(ma.fields.Nested(ConversationSchema), required=True)
    total = ma.fields.Integer(required=True)
    limit = ma.fields.Integer(required=True)
    offset = ma.fields.Integer(required=True)
