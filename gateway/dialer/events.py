"""Campaign progress webhooks, written to the durable outbox in the transaction of the
change they announce (``gateway.webhooks.outbox``).

==============================  ================================================
event                           when
==============================  ================================================
``campaign.started``            an approved start set the campaign running
``campaign.paused``             an approved pause, or the dialer (the wallet)
``campaign.stopped``            an approved stop: what was pending is cancelled
``campaign.completed``          every contact reached a final state
``campaign.contact_result``     a contact's attempt ended (its outcome, its state)
==============================  ================================================

They go to the account's ``voice`` webhook subscription's URL (``voicegw webhooks
subscribe ACCOUNT voice …``; its ``events`` filter applies), else to its
``default_webhook_url``; nowhere if neither is set or the subscription is inactive.
Body: ``{"id", "event", "created_at", "data": {"campaign": …, "contact": …}}``.
"""
from __future__ import annotations

from datetime import datetime

from gateway.domain import Surface
from gateway.models import Account, CampaignContact, VoiceCampaign, WebhookSubscription, utcnow
from gateway.webhooks import outbox, profiles
from gateway.webhooks.events import OutgoingEvent, iso_z, new_event_id

SURFACE = Surface.VOICE.value


def campaign_data(campaign: VoiceCampaign) -> dict:
    return {"id": str(campaign.id), "name": campaign.name, "status": campaign.status,
            "status_reason": campaign.status_reason, "agent_id": str(campaign.agent_id)}


def contact_data(contact: CampaignContact, outcome: str | None = None) -> dict:
    return {"id": str(contact.id), "phone": contact.phone, "name": contact.name, "state": contact.state,
            "attempts": contact.attempts, "outcome": outcome, "call_id": contact.last_call_uuid}


def _destination(account_id: int, event_type: str) -> tuple[str | None, str]:
    """Where the account's campaign events go, and with which header profile."""
    subscription = WebhookSubscription.get_or_none(
        (WebhookSubscription.account == account_id) & (WebhookSubscription.surface == SURFACE))
    if subscription is not None:
        if not subscription.active or (subscription.events is not None and event_type not in subscription.events):
            return None, subscription.header_profile
        if subscription.url:
            return subscription.url, subscription.header_profile
    profile = subscription.header_profile if subscription is not None else profiles.GATEWAY
    return Account.select(Account.default_webhook_url).where(Account.id == account_id).scalar(), profile


def announce(event_type: str, campaign: VoiceCampaign, contact: CampaignContact | None = None,
             outcome: str | None = None, now: datetime | None = None) -> str | None:
    """Enqueue one campaign event (inside the caller's transaction); its id, or None when
    the account receives campaign events nowhere."""
    url, profile = _destination(campaign.account_id, event_type)
    if not url:
        return None
    now = now or utcnow()
    event_id = new_event_id()
    data = {"campaign": campaign_data(campaign)}
    if contact is not None:
        data["contact"] = contact_data(contact, outcome)
    payload = {"id": event_id, "event": event_type, "created_at": iso_z(now), "data": data}
    call_uuid = contact.last_call_uuid if contact is not None else None
    headers = profiles.event_headers(profile, SURFACE, event_type, event_id, call_uuid)
    outbox.enqueue([OutgoingEvent(SURFACE, event_type, url, payload, headers, event_id, call_uuid, profile)],
                   campaign.account_id, now)
    return event_id
