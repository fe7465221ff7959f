"""Calls and their append-only event log."""
from peewee import SQL, AutoField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from .accounts import Account
from .agents import Agent
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow


class Call(BaseModel):
    """One FreeSWITCH channel we placed or received.

    The primary key is the channel uuid, chosen before ``originate`` so that the
    row exists before any event about it can arrive.
    """

    uuid = CharField(max_length=36, primary_key=True)
    # Indexed through the two composite indexes below, which both lead with it.
    account = ForeignKeyField(Account, backref="calls", index=False)
    direction = CharField(max_length=8)
    from_number = CharField(max_length=32)
    to_number = CharField(max_length=32)
    caller_id_name = CharField(max_length=64, default="")
    status = CharField(max_length=16, default="queued")
    end_reason = CharField(max_length=16, null=True)
    hangup_cause = CharField(max_length=64, null=True)
    node = CharField(max_length=255)
    job_uuid = CharField(max_length=36, null=True)
    # Nullable: the media target may be decided only on answer (routing webhook, defaults).
    socket_url = TextField(null=True)
    webhook_url = TextField(null=True)
    custom_args = JSONTextField(default=dict)
    duration_sec = IntegerField(null=True)
    billsec = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    ringing_at = UTCDateTimeField(null=True)
    answered_at = UTCDateTimeField(null=True)
    ended_at = UTCDateTimeField(null=True)
    # True when the call ended while the gateway was not listening (``hangup_cause``
    # CHANNEL_GONE): ``ended_at`` is when it found the channel gone, and ``billsec`` and
    # ``duration_sec``, measured to then, are the longest the call can have lasted.
    ended_at_upper_bound = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])  # rows written by older code
    updated_at = UTCDateTimeField(default=utcnow)
    # The agent the call was handed to (/v1); the call outlives the agent's deletion.
    agent = ForeignKeyField(Agent, backref="calls", null=True, on_delete="SET NULL", index=False)
    contact_name = CharField(max_length=255, null=True)
    # [{"bot": "…"}, {"user": "…"}, …] once the conversation is processed; None before.
    transcript = JSONTextField(null=True)
    analysis = JSONTextField(null=True)  # e.g. {"summary": …, "classification": …}
    recording_url = TextField(null=True)
    surface = CharField(max_length=16, null=True)  # gateway.domain.Surface
    # Public calling API: the run (``public_runs.id``) the call belongs to, the digits of
    # its ``run_<n>`` unique id; and the client's own correlation key.
    campaign_id = IntegerField(null=True)
    reference_id = CharField(max_length=120, null=True)

    class Meta:
        table_name = "calls"
        indexes = (
            (("account", "created_at"), False),  # an account's calls, newest first
            (("account", "status", "created_at"), False),  # the same, filtered by status
            # The public API's list filters (direction, number as caller or recipient)
            # and its look-up by reference_id.
            (("account", "direction", "created_at"), False),
            (("account", "to_number", "created_at"), False),
            (("account", "from_number", "created_at"), False),
            (("account", "reference_id"), False),
        )

    def save(self, *args, **kwargs):
        """Stamp ``updated_at``; bulk ``Call.update()`` queries must set it themselves."""
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)


class CallEvent(BaseModel):
    """One entry of a call's event log; ``seq`` orders the entries of a call."""

    id = AutoField()
    # Indexed through the unique (call, seq) index, which leads with it.
    call = ForeignKeyField(Call, backref="events", on_delete="CASCADE", index=False)
    seq = IntegerField()
    kind = CharField(max_length=16)  # e.g. "status", "command", "esl"
    from_status = CharField(max_length=16, null=True)
    to_status = CharField(max_length=16, null=True)
    detail = JSONTextField(default=dict)
    at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "call_events"
        indexes = ((("call", "seq"), True),)


class RefusedCall(BaseModel):
    """An inbound call the gateway refused without answering it, and why.

    Kept apart from ``Call`` because a call to a number nobody owns has no account to
    belong to; a refused call to an account's number also has its ``Call`` row (failed,
    with the Hangup-Cause it was refused with) and event log, under ``call_uuid``.
    """

    id = AutoField()
    call_uuid = CharField(max_length=36)
    account = ForeignKeyField(Account, backref="refused_calls", null=True, on_delete="CASCADE", index=False)
    node = CharField(max_length=255)
    did = CharField(max_length=32)
    from_number = CharField(max_length=32)
    caller_id_name = CharField(max_length=64, default="")
    reason = CharField(max_length=255)  # e.g. unknown_number, business_hours_closed
    hangup_cause = CharField(max_length=64)  # what FreeSWITCH answered the caller with
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "refused_calls"
        indexes = (
            (("created_at",), False),  # newest first, every account
            (("account", "created_at"), False),
        )
