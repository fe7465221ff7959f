"""Voice campaigns: a voice agent calling a contact list, started, paused and stopped only
through human-approved actions (voice-agent-admin.txt's ``va_campaign_actions``).

``VoiceCampaign``       the agent, the number it calls from, its limits (calls per second,
                        concurrent calls), retries (attempts, backoff), calling windows and
                        its status: ``draft`` → ``running`` ⇄ ``paused`` → ``stopped``, or
                        ``completed`` once every contact is final.
``CampaignContact``     one number to call, its variables for the agent and its state.
``ContactAttempt``      one dial of a contact, written (claimed) before its call is placed;
                        ``call_uuid`` is set in the transaction that writes the call's row.
``CampaignAction``      a requested start, pause or stop and its approval status.
``CampaignActionEvent`` one step of an action's history: the status it reached, who, when.
``DoNotCallEntry``      a number of the account that no campaign calls.

Campaigns and actions carry ``account`` and ``owner_agent`` (the creating key's owner
agent), which the voice-admin surface's ownership rules apply to
(``gateway.api.voice_admin.ownership``).
"""
from __future__ import annotations

from peewee import AutoField, CharField, FloatField, ForeignKeyField, IntegerField, TextField

from .accounts import Account
from .agents import Agent
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow
from .keys import ApiKey

VOICE_CAMPAIGN_STATUSES = ("draft", "running", "paused", "stopped", "completed")
CONTACT_STATES = ("pending", "calling", "completed", "no_answer", "busy", "failed", "do_not_call", "cancelled")
#: States a contact never leaves.
FINAL_CONTACT_STATES = ("completed", "no_answer", "busy", "failed", "do_not_call", "cancelled")
ACTION_KINDS = ("start", "pause", "stop")
ACTION_STATUSES = ("awaiting_approval", "approved", "rejected", "executed", "failed")


class VoiceCampaign(BaseModel):
    id = AutoField()
    account = ForeignKeyField(Account, backref="voice_campaigns", on_delete="CASCADE")
    owner_agent = ForeignKeyField(Agent, null=True, on_delete="SET NULL", backref="owned_campaigns")
    agent = ForeignKeyField(Agent, backref="campaigns", on_delete="CASCADE")
    name = CharField(max_length=255)
    from_number = CharField(max_length=32)
    calls_per_second = FloatField(default=1.0)
    max_concurrent = IntegerField(default=5)
    max_attempts = IntegerField(default=1)
    retry_backoff_sec = IntegerField(default=300)
    # Calling windows (``gateway.dialer.windows``): ISO weekdays 1-7 and "HH:MM" bounds.
    window_days = JSONTextField(default=lambda: [1, 2, 3, 4, 5, 6, 7])
    window_start = CharField(max_length=5, default="00:00")
    window_end = CharField(max_length=5, default="24:00")
    timezone = CharField(max_length=64, default="UTC")  # for numbers phonenumbers cannot place
    status = CharField(max_length=16, default="draft")
    status_reason = TextField(null=True)  # why the dialer stopped it (the wallet), for people
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    started_at = UTCDateTimeField(null=True)
    completed_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "voice_campaigns"
        indexes = ((("status",), False),)


class CampaignContact(BaseModel):
    id = AutoField()
    campaign = ForeignKeyField(VoiceCampaign, backref="contacts", on_delete="CASCADE", index=False)
    phone = CharField(max_length=32)  # E.164
    name = CharField(max_length=255, null=True)
    variables = JSONTextField(default=dict)
    timezone = CharField(max_length=64, null=True)  # from the number; None: the campaign's
    state = CharField(max_length=16, default="pending")
    attempts = IntegerField(default=0)
    last_call_uuid = CharField(max_length=36, null=True)
    last_outcome = CharField(max_length=32, null=True)
    next_attempt_at = UTCDateTimeField(default=utcnow)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "campaign_contacts"
        indexes = (
            (("campaign", "phone"), True),
            (("campaign", "state", "next_attempt_at"), False),  # the dialer's due contacts
        )


class ContactAttempt(BaseModel):
    id = AutoField()
    contact = ForeignKeyField(CampaignContact, backref="attempt_rows", on_delete="CASCADE")
    campaign = ForeignKeyField(VoiceCampaign, on_delete="CASCADE", index=False)
    number = IntegerField()  # 1 for the first dial of the contact
    claimed_by = CharField(max_length=64)  # the dialer (process) that claimed it
    claimed_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)  # its call row written, handed to the controller
    call_uuid = CharField(max_length=36, null=True, unique=True)
    outcome = CharField(max_length=32, null=True)
    ended_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "contact_attempts"
        indexes = ((("campaign", "claimed_at"), False),)


class CampaignAction(BaseModel):
    id = AutoField()
    account = ForeignKeyField(Account, on_delete="CASCADE")
    owner_agent = ForeignKeyField(Agent, null=True, on_delete="SET NULL", backref="campaign_actions")
    campaign = ForeignKeyField(VoiceCampaign, backref="actions", on_delete="CASCADE")
    kind = CharField(max_length=8)
    status = CharField(max_length=20, default="awaiting_approval")
    reason = TextField(null=True)  # a rejection's or a failure's
    requested_by_key = ForeignKeyField(ApiKey, null=True, on_delete="SET NULL")
    requested_by = CharField(max_length=255)  # how the requester is shown
    decided_by = CharField(max_length=255, null=True)
    created_at = UTCDateTimeField(default=utcnow)
    decided_at = UTCDateTimeField(null=True)
    executed_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "campaign_actions"
        indexes = ((("status", "created_at"), False),)


class CampaignActionEvent(BaseModel):
    id = AutoField()
    action = ForeignKeyField(CampaignAction, backref="events", on_delete="CASCADE")
    status = CharField(max_length=20)
    by = CharField(max_length=255)
    reason = TextField(null=True)
    at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "campaign_action_events"


class DoNotCallEntry(BaseModel):
    id = AutoField()
    account = ForeignKeyField(Account, on_delete="CASCADE", index=False)
    phone = CharField(max_length=32)
    note = CharField(max_length=255, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "do_not_call"
        indexes = ((("account", "phone"), True),)
