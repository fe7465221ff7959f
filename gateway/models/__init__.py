"""Peewee models and migrations.

Typical use::

    from gateway.models import connect, migrate, Call
    db = connect(settings.database_url)
    migrate(db)

The closed sets of words the columns hold are ``gateway.domain``'s (some are exported
here too, with the models that store them).
"""
from gateway.domain import AGENT_DRIVERS, CALL_DIRECTIONS, CALL_STATUSES, CALL_SURFACES, END_REASONS

from .accounts import (
    ACCOUNT_STATUSES,
    WEBHOOK_SECRET_OVERLAP,
    Account,
    generate_webhook_secret,
)
from .agents import AGENT_TYPES, Agent, clean_agent_fields
from .billing import LEDGER_KINDS, CallRate, LedgerEntry
from .calls import Call, CallEvent, RefusedCall
from .db import BaseModel, connect, database, database_from_url
from .fields import JSONTextField, MoneyField, UTCDateTimeField, utcnow
from .keys import ApiKey
from .migrations import MIGRATIONS, SchemaVersion, migrate
from .numbers import NUMBER_ROUTES, PhoneNumber, clean_route
from .public import (
    CAMPAIGN_STATUSES,
    CAMPAIGN_TYPES,
    DTMF_ACTIONS,
    OTP_STATUSES,
    RUN_TYPES,
    AudioClip,
    CallCountMark,
    CallDayCount,
    OtpGuess,
    OtpRequest,
    PublicRun,
    RateLimitWindow,
    Recording,
    SavedCampaign,
)
from .voice_agents import (
    KNOWLEDGE_KINDS,
    KNOWLEDGE_STATUSES,
    TOOL_KINDS,
    AgentEnvVar,
    AgentKnowledge,
    AgentTool,
    KnowledgeDocument,
    ToolRun,
)
from .voice_campaigns import (
    ACTION_KINDS,
    ACTION_STATUSES,
    CONTACT_STATES,
    FINAL_CONTACT_STATES,
    VOICE_CAMPAIGN_STATUSES,
    CampaignAction,
    CampaignActionEvent,
    CampaignContact,
    ContactAttempt,
    DoNotCallEntry,
    VoiceCampaign,
)
from .webhooks import (
    DELIVERY_STATUSES,
    ProviderCall,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

# Every application model, parents before children (the order create/drop need).
ALL_MODELS = [Account, Agent, ApiKey, PhoneNumber, Call, CallEvent,
              WebhookSubscription, WebhookDelivery, WebhookAttempt, ProviderCall,
              AudioClip, SavedCampaign, PublicRun, OtpRequest, OtpGuess, Recording, RateLimitWindow,
              CallRate, LedgerEntry, CallDayCount, CallCountMark, RefusedCall,
              AgentEnvVar, AgentTool, KnowledgeDocument, AgentKnowledge, ToolRun,
              VoiceCampaign, CampaignContact, ContactAttempt, CampaignAction, CampaignActionEvent, DoNotCallEntry]

__all__ = [
    "ACCOUNT_STATUSES",
    "AGENT_DRIVERS",
    "AGENT_TYPES",
    "ALL_MODELS",
    "Account",
    "Agent",
    "ApiKey",
    "BaseModel",
    "CALL_DIRECTIONS",
    "CALL_STATUSES",
    "CALL_SURFACES",
    "Call",
    "CallEvent",
    "END_REASONS",
    "JSONTextField",
    "MIGRATIONS",
    "MoneyField",
    "NUMBER_ROUTES",
    "PhoneNumber",
    "RefusedCall",
    "SchemaVersion",
    "UTCDateTimeField",
    "WEBHOOK_SECRET_OVERLAP",
    "clean_agent_fields",
    "clean_route",
    "connect",
    "database",
    "database_from_url",
    "generate_webhook_secret",
    "migrate",
    "utcnow",
    "DELIVERY_STATUSES",
    "ProviderCall",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "AudioClip",
    "CAMPAIGN_STATUSES",
    "CAMPAIGN_TYPES",
    "CallCountMark",
    "CallDayCount",
    "CallRate",
    "DTMF_ACTIONS",
    "LEDGER_KINDS",
    "LedgerEntry",
    "OTP_STATUSES",
    "OtpGuess",
    "OtpRequest",
    "PublicRun",
    "RUN_TYPES",
    "RateLimitWindow",
    "Recording",
    "SavedCampaign",
    "AgentEnvVar",
    "AgentKnowledge",
    "AgentTool",
    "KNOWLEDGE_KINDS",
    "KNOWLEDGE_STATUSES",
    "KnowledgeDocument",
    "TOOL_KINDS",
    "ToolRun",
    "ACTION_KINDS",
    "ACTION_STATUSES",
    "CONTACT_STATES",
    "FINAL_CONTACT_STATES",
    "VOICE_CAMPAIGN_STATUSES",
    "CampaignAction",
    "CampaignActionEvent",
    "CampaignContact",
    "ContactAttempt",
    "DoNotCallEntry",
    "VoiceCampaign",
]
