"""The human-approval queue of campaign actions (voice-agent-admin.txt's
``va_campaign_actions``): no autonomous agent starts, pauses or stops a campaign itself.

An API key *requests* an action: it is ``awaiting_approval``. A person (a CLI user, a
dashboard user) approves or rejects it; no API endpoint does, whatever a key's scopes. An
approved action is executed at once, in the same transaction (``campaigns.execute``):
``executed``, or ``failed`` with the reason (a start of a stopped campaign). Every step
is a history row naming who and when::

    awaiting_approval ──approve──▶ approved ──▶ executed | failed
            └────────reject (reason)──▶ rejected

A decision is taken once: two approvers racing on one action are told which came first.
"""
from __future__ import annotations

from decimal import Decimal

from gateway.billing.ledger import rates_of
from gateway.billing.rates import best_rate
from gateway.dialer import campaigns
from gateway.models import (
    Agent,
    ApiKey,
    CampaignAction,
    CampaignActionEvent,
    CampaignContact,
    VoiceCampaign,
    database,
    utcnow,
)

MAX_NAME = 255
#: Minutes of talk a contact is estimated at (the estimate is per answered minute).
ESTIMATED_MINUTES = 1


class DecisionRefused(ValueError):
    """The action cannot be decided (unknown, decided already, no approver name)."""


def requester_label(api_key: ApiKey) -> str:
    owner = f", owner agent {api_key.owner_agent_id}" if api_key.owner_agent_id is not None else ""
    name = f" {api_key.name!r}" if api_key.name else ""
    return f"API key{name} {api_key.publishable_id}{owner}"[:MAX_NAME]


def request(campaign: VoiceCampaign, kind: str, api_key: ApiKey) -> CampaignAction:
    """An API key asks for ``kind`` on ``campaign``: the action, awaiting approval."""
    now = utcnow()
    with database.atomic():
        action = CampaignAction.create(
            account=campaign.account_id, owner_agent=api_key.owner_agent_id, campaign=campaign.id, kind=kind,
            status="awaiting_approval", requested_by_key=api_key.id, requested_by=requester_label(api_key),
            created_at=now)
        CampaignActionEvent.create(action=action.id, status="awaiting_approval", by=action.requested_by, at=now)
    return action


def _approver(name: str) -> str:
    text = (name or "").strip()
    if not text or len(text) > MAX_NAME or any(ord(ch) < 32 for ch in text):
        raise DecisionRefused("the approver's name is required (1 to 255 printable characters)")
    return text


def _decide(action_id: int, to_status: str, by: str, reason: str | None) -> CampaignAction:
    """Move an awaiting action to ``to_status``, once: a conditional update decides a race."""
    now = utcnow()
    taken = (CampaignAction.update(status=to_status, decided_by=by, decided_at=now, reason=reason)
             .where((CampaignAction.id == action_id) & (CampaignAction.status == "awaiting_approval")).execute())
    action = CampaignAction.get_or_none(CampaignAction.id == action_id)
    if action is None:
        raise DecisionRefused(f"no campaign action {action_id}")
    if not taken:
        raise DecisionRefused(f"action {action_id} is {action.status} already (by {action.decided_by})")
    CampaignActionEvent.create(action=action_id, status=to_status, by=by, reason=reason, at=now)
    return action


def approve(action_id: int, approver: str) -> CampaignAction:
    """Approve and execute; the action as it ended (``executed`` or ``failed``)."""
    by = _approver(approver)
    with database.atomic():
        action = _decide(action_id, "approved", by, None)
        campaign = VoiceCampaign.get_by_id(action.campaign_id)
        now = utcnow()
        try:
            campaigns.execute(campaign, action.kind)
        except campaigns.ActionFailed as exc:
            status, reason = "failed", str(exc)
        else:
            status, reason = "executed", None
        CampaignAction.update(status=status, reason=reason, executed_at=now).where(
            CampaignAction.id == action_id).execute()
        CampaignActionEvent.create(action=action_id, status=status, by="gateway", reason=reason, at=now)
    return CampaignAction.get_by_id(action_id)


def reject(action_id: int, approver: str, reason: str) -> CampaignAction:
    by = _approver(approver)
    text = (reason or "").strip()
    if not text:
        raise DecisionRefused("a rejection needs a reason")
    with database.atomic():
        _decide(action_id, "rejected", by, text[:1000])
    return CampaignAction.get_by_id(action_id)


def history(action: CampaignAction) -> list[CampaignActionEvent]:
    return list(CampaignActionEvent.select().where(CampaignActionEvent.action == action.id)
                .order_by(CampaignActionEvent.at, CampaignActionEvent.id))


def estimated_cost(campaign: VoiceCampaign) -> tuple[Decimal, int]:
    """What calling the contacts not yet called would cost at the account's rates, each
    for ``ESTIMATED_MINUTES`` answered; and how many of them have no rate (cost nothing)."""
    rates = rates_of([campaign.account_id])[campaign.account_id]
    total, unrated = Decimal("0"), 0
    phones = (CampaignContact.select(CampaignContact.phone)
              .where((CampaignContact.campaign == campaign.id) & (CampaignContact.state == "pending")).tuples())
    for (phone,) in phones.iterator():
        rate = best_rate(rates, phone)
        if rate is None:
            unrated += 1
        else:
            total += rate.cost(60 * ESTIMATED_MINUTES)
    return total, unrated


def describe(action: CampaignAction) -> dict:
    """What an approver sees of an action."""
    campaign = VoiceCampaign.get_by_id(action.campaign_id)
    agent = Agent.get_or_none(Agent.id == campaign.agent_id)
    counts = campaigns.counts(campaign.id)
    cost, unrated = estimated_cost(campaign)
    return {
        "id": str(action.id),
        "kind": action.kind,
        "status": action.status,
        "reason": action.reason,
        "requested_by": action.requested_by,
        "requested_at": action.created_at,
        "decided_by": action.decided_by,
        "decided_at": action.decided_at,
        "executed_at": action.executed_at,
        "campaign": {"id": str(campaign.id), "name": campaign.name, "status": campaign.status,
                     "status_reason": campaign.status_reason, "from_number": campaign.from_number,
                     "calls_per_second": campaign.calls_per_second, "max_concurrent": campaign.max_concurrent,
                     "max_attempts": campaign.max_attempts},
        "agent": {"id": str(agent.id), "key": agent.key, "name": agent.name} if agent else None,
        "contacts_not_yet_called": counts.get("pending", 0),
        "contacts": counts,
        "calling_window": {"days": list(campaign.window_days), "start": campaign.window_start,
                           "end": campaign.window_end, "timezone": campaign.timezone,
                           "evaluated_in": "each contact's time zone (from its number), else the campaign's"},
        "estimated_cost": {"amount": str(cost.quantize(Decimal("0.0001"))), "currency": campaign.account.currency,
                           "basis": f"{ESTIMATED_MINUTES} answered minute per contact not yet called",
                           "contacts_without_rate": unrated},
    }


def listed(status: str | None = "awaiting_approval", account_id: int | None = None) -> list[CampaignAction]:
    query = CampaignAction.select()
    if status is not None:
        query = query.where(CampaignAction.status == status)
    if account_id is not None:
        query = query.where(CampaignAction.account == account_id)
    return list(query.order_by(CampaignAction.created_at, CampaignAction.id))
