"""The webhook outbox and its configuration.

``WebhookSubscription``  which events an account receives for calls of one surface, and where.
``WebhookDelivery``      one event to deliver to one URL: the exact body that is sent,
                         written in the transaction of the state change that causes it.
``WebhookAttempt``       one HTTP attempt at a delivery (code, latency, error).
``ProviderCall``         a provider's id for a call (an ElevenLabs conversation, a Vapi
                         call), so that its completion webhook finds the call, and
                         is processed once.

How deliveries move (``gateway.webhooks.dispatcher``)::

    pending ──claim──▶ delivering ──2xx──▶ delivered
     ▲ ▲                  │ ├──410──▶ stopped
     │ └─retry (backoff)──┘ └──retry window over, URL refused──▶ dead
     │                                                          │
     └────────────── replay (voicegw webhooks replay) ──────────┘

``dead`` is the dead-letter state: the delivery is kept with its attempts until an
operator replays it (or purges it); ``delivered`` and ``stopped`` ones can be replayed too.

While a delivery is ``delivering``, ``next_attempt_at`` is the end of the claimer's
lease: a dispatcher that died mid-request leaves the row ``delivering``, and it is
claimed again once the lease has run out. One ``(status, next_attempt_at)`` index
serves both the due and the expired-lease lookups.
"""
from __future__ import annotations

from peewee import SQL, AutoField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from .accounts import Account
from .calls import Call
from .db import BaseModel
from .fields import JSONTextField, UTCDateTimeField, utcnow

DELIVERY_STATUSES = ("pending", "delivering", "delivered", "dead", "stopped")
#: A later delivery of the same call waits while an earlier one is in one of these.
OPEN_STATUSES = ("pending", "delivering")
#: ``webhooks replay`` accepts a delivery in one of these.
CLOSED_STATUSES = ("delivered", "dead", "stopped")
#: The headers of a subscription that chose none: the gateway's own.
HEADER_PROFILE_DEFAULT = "gateway"


class WebhookSubscription(BaseModel):
    """An account's settings for the events of calls placed through one surface.

    ``surface`` is a ``Call.surface`` value (``api``, ``v1``, ``public``); ``events``
    None means every event type of that surface, else a list of them; ``url`` None
    means the surface's default (for ``api``: the call's own ``webhook_url``, else the
    account's ``default_webhook_url``; the other surfaces have none). An inactive
    subscription turns the surface's events off. ``header_profile`` names the headers its
    requests carry (``gateway.webhooks.profiles``: ``gateway``, ``contract``,
    ``standard-webhooks``); the ``api`` one applies to the routing webhook too.
    """

    id = AutoField()
    # Indexed through the unique (account, surface) index, which leads with it.
    account = ForeignKeyField(Account, backref="webhook_subscriptions", on_delete="CASCADE", index=False)
    surface = CharField(max_length=16)
    url = TextField(null=True)
    events = JSONTextField(null=True)
    active = BooleanField(default=True)
    header_profile = CharField(max_length=32, default=HEADER_PROFILE_DEFAULT,
                               constraints=[SQL(f"DEFAULT '{HEADER_PROFILE_DEFAULT}'")])
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_subscriptions"
        indexes = ((("account", "surface"), True),)


class WebhookDelivery(BaseModel):
    """One event for one URL. ``body`` is the exact text sent (canonical JSON, UTF-8 on
    the wire); ``headers`` the fixed headers of its ``header_profile`` (the subscription's
    when it was queued); the signature headers of that profile are computed at each
    attempt with the account's secret of the moment."""

    id = AutoField()
    event_id = CharField(max_length=40, unique=True)  # evt_…, the same on every attempt and replay
    # Indexed through the (account, id) index, which leads with it.
    account = ForeignKeyField(Account, backref="webhook_deliveries", on_delete="CASCADE", index=False)
    call_uuid = CharField(max_length=36, null=True)
    surface = CharField(max_length=16)
    event_type = CharField(max_length=64)
    url = TextField()
    body = TextField()
    headers = JSONTextField(default=dict)
    header_profile = CharField(max_length=32, default=HEADER_PROFILE_DEFAULT,
                               constraints=[SQL(f"DEFAULT '{HEADER_PROFILE_DEFAULT}'")])
    status = CharField(max_length=16, default="pending")
    attempts = IntegerField(default=0)
    next_attempt_at = UTCDateTimeField(default=utcnow)
    last_code = IntegerField(null=True)
    last_error = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    # When it was (re)queued: the start of its retry age (a replay restarts it).
    queued_at = UTCDateTimeField(default=utcnow)
    delivered_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "webhook_deliveries"
        indexes = (
            (("status", "next_attempt_at"), False),  # the dispatcher's claim
            (("call_uuid", "id"), False),  # per-call order; a call's deliveries
            (("account", "id"), False),  # an account's deliveries, newest first
        )


class WebhookAttempt(BaseModel):
    id = AutoField()
    delivery = ForeignKeyField(WebhookDelivery, backref="attempt_log", on_delete="CASCADE")
    number = IntegerField()  # the delivery's attempt count when it was made
    at = UTCDateTimeField(default=utcnow)
    code = IntegerField(null=True)  # None: no HTTP response (refused, timeout, connection error)
    latency_ms = IntegerField()
    error = TextField(null=True)

    class Meta:
        table_name = "webhook_attempts"


class ProviderCall(BaseModel):
    """A native provider's id for one of our calls (``POST /v1/webhooks/call-completed``
    names the call by it; a plain-WebSocket agent names it by the call's uuid).
    ``completed_at`` is set by the first completion report; a repeated report finds it
    set and changes nothing. ``duration`` is the seconds the report said, kept beside
    the call's own measure (``Call.billsec``), which FreeSWITCH's wins."""

    id = AutoField()
    provider_call_id = CharField(max_length=128, unique=True)
    call = ForeignKeyField(Call, backref="provider_calls", on_delete="CASCADE")
    provider = CharField(max_length=32, null=True)  # "elevenlabs", "vapi", …
    created_at = UTCDateTimeField(default=utcnow)
    completed_at = UTCDateTimeField(null=True)
    status = CharField(max_length=32, null=True)  # as the provider reported it
    payload = JSONTextField(null=True)  # the completion report as received
    duration = IntegerField(null=True)  # the report's duration, whole seconds

    class Meta:
        table_name = "provider_calls"
