"""What a voice agent holds besides its profile: env vars (secrets its tools use), tools,
knowledge-base documents, and the record of every tool run.

Env vars and tools are parts of one agent: who may see or change them is who may see
or change the agent. Knowledge-base documents stand on their own (one may be attached to
several agents), so they carry ``account`` and ``owner_agent`` like an agent does.
"""
from __future__ import annotations

from peewee import AutoField, BooleanField, CharField, CompositeKey, ForeignKeyField, IntegerField, TextField

from .accounts import Account
from .agents import Agent
from .calls import Call
from .db import BaseModel
from .fields import EncryptedTextField, JSONTextField, UTCDateTimeField, utcnow

TOOL_KINDS = ("webhook", "calendly")
KNOWLEDGE_KINDS = ("text", "url")
KNOWLEDGE_STATUSES = ("processing", "ready", "failed")


class AgentEnvVar(BaseModel):
    """One secret of an agent (``CALENDLY_TOKEN``), encrypted at rest, never shown."""

    id = AutoField()
    # Indexed through the unique (agent, name) index, which leads with it.
    agent = ForeignKeyField(Agent, backref="env_vars", on_delete="CASCADE", index=False)
    name = CharField(max_length=64)
    value = EncryptedTextField()
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "agent_env_vars"
        indexes = ((("agent", "name"), True),)


class AgentTool(BaseModel):
    """A tool the agent may call during a conversation: a webhook (``method`` to ``url``
    with ``headers``, ``{{env.NAME}}`` substituted) or the Calendly preset (its calls are
    Calendly's API; ``config`` holds the event type and the token's env var name)."""

    id = AutoField()
    agent = ForeignKeyField(Agent, backref="tools", on_delete="CASCADE", index=False)
    name = CharField(max_length=64)
    kind = CharField(max_length=16)
    description = TextField(default="")
    method = CharField(max_length=8, default="POST")
    url = TextField(default="")
    headers = JSONTextField(default=dict)
    parameters = JSONTextField(default=dict)  # a JSON Schema of the parameters
    config = JSONTextField(default=dict)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "agent_tools"
        indexes = ((("agent", "name"), True),)


class KnowledgeDocument(BaseModel):
    """A knowledge-base document: text given, or a URL the gateway fetched and reduced to
    text. ``status`` is processing until a URL's fetch ends (ready, or failed with
    ``failure_reason``)."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="knowledge_documents", on_delete="CASCADE", index=False)
    owner_agent = ForeignKeyField(Agent, backref="owned_knowledge", null=True, on_delete="SET NULL")
    name = CharField(max_length=255)
    kind = CharField(max_length=8)
    url = TextField(null=True)
    status = CharField(max_length=16, default="processing")
    failure_reason = TextField(null=True)
    text = TextField(default="")
    content_type = CharField(max_length=128, null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "knowledge_documents"
        indexes = ((("account", "created_at"), False),)


class AgentKnowledge(BaseModel):
    """A document attached to an agent: its text reaches the agent's conversations."""

    agent = ForeignKeyField(Agent, backref="knowledge_links", on_delete="CASCADE")
    document = ForeignKeyField(KnowledgeDocument, backref="agent_links", on_delete="CASCADE")

    class Meta:
        table_name = "agent_knowledge"
        primary_key = CompositeKey("agent", "document")


class ToolRun(BaseModel):
    """One run of an agent's tool, on the call it ran in (if known)."""

    id = AutoField()
    agent = ForeignKeyField(Agent, backref="tool_runs", on_delete="CASCADE")
    call = ForeignKeyField(Call, backref="tool_runs", null=True, on_delete="CASCADE")
    tool_name = CharField(max_length=64)
    parameters = JSONTextField(default=dict)
    result = TextField(default="")
    is_error = BooleanField(default=False)
    duration_ms = IntegerField(default=0)
    started_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "tool_runs"
