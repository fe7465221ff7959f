"""Claiming contacts to dial, exactly once across every process sharing the database.

A contact is dialled only through an attempt row that one dialer claimed, in a
transaction that also moves the contact ``pending`` → ``calling``; the call's row and the
attempt's ``call_uuid`` are written later, together, before the originate is sent
(``dialer.Dialer``). So:

* two processes never claim one contact: on PostgreSQL the campaign row is locked
  (``FOR UPDATE``, which also makes the campaign's own limits exact across processes)
  and the due contacts are read ``FOR UPDATE SKIP LOCKED``; on SQLite the transaction
  holds the write lock from its start (``BEGIN IMMEDIATE``, the database's lock type);
  and on both, each claim is a conditional ``UPDATE … WHERE state = 'pending'`` whose
  row count is checked;
* a process killed after its claim and before writing the call leaves an attempt with
  no ``call_uuid``: nothing was dialled, and another dialer takes it over once its lease
  (``claimed_at`` + lease) has run out (:func:`take_over_stale`);
* a process killed after writing the call leaves a call row that the next process to
  connect to the node reconciles with FreeSWITCH (``gateway.calls.reconcile``); its
  final status settles the attempt (``results``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

from peewee import PostgresqlDatabase

from gateway.billing.ledger import rates_of
from gateway.billing.rates import best_rate
from gateway.dialer import campaigns as campaign_rules
from gateway.dialer import events
from gateway.dialer.windows import Window
from gateway.models import Account, CampaignContact, ContactAttempt, DoNotCallEntry, VoiceCampaign, database, utcnow

#: How many due contacts one pass looks at per contact it may claim (some are outside
#: their window, or on the do-not-call list).
LOOKAHEAD = 4
ACTIVE_STATES = ("pending", "calling")


@dataclass(frozen=True)
class Claimed:
    contact: CampaignContact
    attempt: ContactAttempt


def _is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def budget(campaign: VoiceCampaign, now: datetime) -> int:
    """How many more calls the campaign's own limits allow now (its calls per second over
    a sliding window of at least a second, and its concurrent calls), counted over every
    process's attempts."""
    calling = CampaignContact.select().where(
        (CampaignContact.campaign == campaign.id) & (CampaignContact.state == "calling")).count()
    rate = max(campaign.calls_per_second, 0.001)
    window = max(1.0, 1.0 / rate)
    per_window = max(1, math.floor(rate * window))
    recent = ContactAttempt.select().where(
        (ContactAttempt.campaign == campaign.id) & (ContactAttempt.claimed_at > now - timedelta(seconds=window))
    ).count()
    return max(0, min(campaign.max_concurrent - calling, per_window - recent))


def _affordable(balance: Decimal, rates, phone: str) -> bool:
    """A minute to ``phone`` is covered (and the balance is positive)."""
    rate = best_rate(rates, phone)
    return balance > 0 and (rate is None or balance >= rate.cost(60))


def claim(campaign_id: int, dialer_id: str, clock: Callable[[], datetime], limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due contacts of a running campaign, within its limits, its
    calling windows and the account's balance. One transaction."""
    claimed: list[Claimed] = []
    with database.atomic():
        query = VoiceCampaign.select().where(VoiceCampaign.id == campaign_id)
        if _is_postgres():
            query = query.for_update()
        campaign = query.first()
        if campaign is None or campaign.status != "running":
            return []
        real_now, now = utcnow(), clock()
        allowed = min(limit, budget(campaign, real_now))
        if allowed <= 0:
            return []
        due = (CampaignContact.select()
               .where((CampaignContact.campaign == campaign.id) & (CampaignContact.state == "pending")
                      & (CampaignContact.next_attempt_at <= now))
               .order_by(CampaignContact.next_attempt_at, CampaignContact.id)
               .limit(allowed * LOOKAHEAD))
        if _is_postgres():
            due = due.for_update(skip_locked=True)
        candidates = list(due)
        if not candidates:
            _complete_if_done(campaign, now)
            return []
        window = campaign_rules.window_of(campaign)
        blocked = {phone for (phone,) in DoNotCallEntry.select(DoNotCallEntry.phone).where(
            (DoNotCallEntry.account == campaign.account_id)
            & DoNotCallEntry.phone.in_([c.phone for c in candidates])).tuples()}
        balance = Account.select(Account.balance).where(Account.id == campaign.account_id).scalar()
        balance = Account.balance.python_value(balance) if balance is not None else Decimal("0")
        rates = rates_of([campaign.account_id])[campaign.account_id]
        for contact in candidates:
            if len(claimed) >= allowed:
                break
            if contact.phone in blocked:
                _set_contact(contact.id, state="do_not_call")
                continue
            if not _in_window(window, contact, campaign, now):
                _set_contact(contact.id, next_attempt_at=window.next_open(now, contact.timezone or campaign.timezone))
                continue
            if not _affordable(balance, rates, contact.phone):
                campaign_rules.set_status(campaign, "paused", f"insufficient funds: the balance ({balance} "
                                          f"{campaign.account.currency}) cannot pay a minute to {contact.phone}")
                events.announce("campaign.paused", campaign, now=real_now)
                break
            taken = (CampaignContact.update(state="calling", attempts=CampaignContact.attempts + 1,
                                            updated_at=real_now)
                     .where((CampaignContact.id == contact.id) & (CampaignContact.state == "pending")).execute())
            if taken != 1:
                continue  # claimed by another dialer meanwhile
            contact.state, contact.attempts = "calling", contact.attempts + 1
            attempt = ContactAttempt.create(contact=contact.id, campaign=campaign.id, number=contact.attempts,
                                            claimed_by=dialer_id, claimed_at=real_now)
            claimed.append(Claimed(contact, attempt))
    return claimed


def _in_window(window: Window, contact: CampaignContact, campaign: VoiceCampaign, now: datetime) -> bool:
    return window.open_at(now.astimezone(ZoneInfo(contact.timezone or campaign.timezone)))


def _set_contact(contact_id: int, **fields) -> None:
    CampaignContact.update(updated_at=utcnow(), **fields).where(
        (CampaignContact.id == contact_id) & (CampaignContact.state == "pending")).execute()


def _complete_if_done(campaign: VoiceCampaign, now: datetime) -> None:
    active = CampaignContact.select().where(
        (CampaignContact.campaign == campaign.id) & CampaignContact.state.in_(ACTIVE_STATES)).exists()
    if not active:
        campaign_rules.set_status(campaign, "completed", None, completed_at=utcnow())
        events.announce("campaign.completed", campaign)


def take_over_stale(dialer_id: str, lease: float) -> list[Claimed]:
    """Attempts claimed by a dialer that died before writing their call (no ``call_uuid``,
    lease run out): this dialer takes them over, each with a conditional update."""
    cutoff = utcnow() - timedelta(seconds=lease)
    stale = list(ContactAttempt.select().where(ContactAttempt.call_uuid.is_null()
                                               & ContactAttempt.outcome.is_null()
                                               & (ContactAttempt.claimed_at < cutoff)).limit(100))
    taken = []
    for attempt in stale:
        with database.atomic():
            moved = (ContactAttempt.update(claimed_by=dialer_id, claimed_at=utcnow())
                     .where((ContactAttempt.id == attempt.id) & (ContactAttempt.claimed_by == attempt.claimed_by)
                            & ContactAttempt.call_uuid.is_null() & (ContactAttempt.claimed_at == attempt.claimed_at))
                     .execute())
        if moved == 1:
            attempt = ContactAttempt.get_by_id(attempt.id)
            taken.append(Claimed(CampaignContact.get_by_id(attempt.contact_id), attempt))
    return taken


def release(claimed: Claimed, reason: str) -> None:
    """Give back a claim whose call could not be written (no FreeSWITCH node): nothing was
    dialled, so the contact is pending again and the attempt is not counted."""
    with database.atomic():
        deleted = ContactAttempt.delete().where(
            (ContactAttempt.id == claimed.attempt.id) & ContactAttempt.call_uuid.is_null()).execute()
        if deleted:
            (CampaignContact.update(state="pending", attempts=CampaignContact.attempts - 1,
                                    last_outcome=reason[:32], updated_at=utcnow())
             .where(CampaignContact.id == claimed.contact.id).execute())
