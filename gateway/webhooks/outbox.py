"""The durable outbox: webhooks are rows, written in the transaction that causes them.

A status change and the webhooks announcing it commit together or not at all, so a
crash can neither lose an announced change nor announce one that never happened. The
dispatcher (``gateway.webhooks.dispatcher``) delivers the rows afterwards, from any
process.

Wiring with the call controller::

    controller.transaction_hooks.append(outbox_hook)
    controller.log_hooks.append(outbox_log_hook)  # call.answered: the media session is up

Every function here must run inside the caller's transaction (``outbox_hook`` is
called inside the controller's) and only writes rows: no HTTP, no waiting.

A call announces each event type once per URL: a transition that repeats (a provider's
completion report racing FreeSWITCH's hangup) does not enqueue its event again.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Iterable

from peewee import JOIN

from gateway.domain import MEDIA_ESTABLISHED, Transition
from gateway.models import Account, Agent, Call, WebhookDelivery, database, utcnow
from gateway.models.webhooks import CLOSED_STATUSES
from gateway.webhooks import events as ev
from gateway.webhooks.signing import canonical_json
from gateway.webhooks.subscriptions import subscriptions_for

logger = logging.getLogger(__name__)

_INSERT_CHUNK = 100  # rows per INSERT: stays far below SQLite's bound-parameter limit


def delivery_row(event: ev.OutgoingEvent, account_id: int, now: datetime) -> dict:
    return {
        "event_id": event.event_id,
        "account": account_id,
        "call_uuid": event.call_uuid,
        "surface": event.surface,
        "event_type": event.event_type,
        "url": event.url,
        "body": canonical_json(event.payload).decode("utf-8"),
        "headers": event.headers,
        "header_profile": event.profile,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "queued_at": now,
    }


def _insert(rows: list[dict]) -> None:
    for start in range(0, len(rows), _INSERT_CHUNK):
        WebhookDelivery.insert_many(rows[start:start + _INSERT_CHUNK]).execute()


def _already_sent(call_uuids: Iterable[str]) -> set[tuple[str, str, str]]:
    uuids = sorted(set(call_uuids))
    if not uuids:
        return set()
    query = (WebhookDelivery
             .select(WebhookDelivery.call_uuid, WebhookDelivery.event_type, WebhookDelivery.url)
             .where(WebhookDelivery.call_uuid.in_(uuids)))
    return set(query.tuples())


def enqueue(events: Iterable[ev.OutgoingEvent], account_id: int, now: datetime | None = None) -> list[str]:
    """Write ``events`` as pending deliveries (no de-duplication); return their event ids."""
    now = now or utcnow()
    rows = [delivery_row(event, account_id, now) for event in events]
    _insert(rows)
    return [row["event_id"] for row in rows]


def _calls(call_uuids: Iterable[str]) -> dict[str, Call]:
    query = (Call.select(Call, Account, Agent)
             .join(Account, on=(Call.account == Account.id))
             .switch(Call)
             .join(Agent, JOIN.LEFT_OUTER, on=(Call.agent == Agent.id))
             .where(Call.uuid.in_(sorted(set(call_uuids)))))
    return {call.uuid: call for call in query}


def outbox_hook(changes: list[tuple[str, str, int, Transition]]) -> None:
    """``CallController.transaction_hooks`` entry: enqueue the webhooks a batch of
    status changes causes, inside the batch's transaction. Three queries per batch
    (calls, subscriptions, already-enqueued events) and one INSERT per 100 rows."""
    if not changes:
        return
    calls = _calls(change[0] for change in changes)
    if not calls:
        return
    subscriptions = subscriptions_for(call.account_id for call in calls.values())
    sent = _already_sent(calls)
    now = utcnow()
    rows = []
    for call_uuid, _from_status, _seq, transition in changes:
        call = calls.get(call_uuid)
        if call is None:
            continue
        surface = ev.call_surface(call)
        subscription = subscriptions.get((call.account_id, surface))
        try:
            events = ev.for_transition(call, call.account, transition, subscription)
        except Exception:
            # A bug in building one call's body must not roll back (and so stall) the
            # status changes of the whole batch; database errors still propagate.
            logger.exception("webhook events for call %s (%s) could not be built", call_uuid,
                             transition.to_status.value)
            continue
        for event in events:
            key = (call_uuid, event.event_type, event.url)
            if key in sent:
                continue
            sent.add(key)
            rows.append(delivery_row(event, call.account_id, now))
    _insert(rows)


def outbox_log_hook(entries: list[dict]) -> None:
    """``CallController.log_hooks`` entry: ``call.answered`` for the calls whose media
    session the batch's log entries say is established (``MEDIA_ESTABLISHED``), inside
    the batch's transaction. An entry logged after the call ended announces nothing."""
    established = [entry for entry in entries
                   if entry["kind"] == "media" and entry["to_status"] == "in_progress"
                   and (entry.get("detail") or {}).get("event") == MEDIA_ESTABLISHED]
    if not established:
        return
    calls = _calls(entry["call"] for entry in established)
    subscriptions = subscriptions_for(call.account_id for call in calls.values())
    sent = _already_sent(calls)
    now = utcnow()
    rows = []
    for entry in established:
        call = calls.get(entry["call"])
        if call is None:
            continue
        subscription = subscriptions.get((call.account_id, ev.call_surface(call)))
        try:
            events = ev.for_media_established(call, call.account, entry["at"], subscription)
        except Exception:  # as in outbox_hook: one call's bad body must not stall the batch
            logger.exception("call.answered for call %s could not be built", call.uuid)
            continue
        for event in events:
            key = (call.uuid, event.event_type, event.url)
            if key not in sent:
                sent.add(key)
                rows.append(delivery_row(event, call.account_id, now))
    _insert(rows)


def enqueue_state(call: Call, state: ev.CallState) -> list[str]:
    """Enqueue the events for ``call`` reaching ``state`` outside the controller (the
    provider ingest), with the same de-duplication as :func:`outbox_hook`."""
    account = call.account
    surface = ev.call_surface(call)
    subscription = subscriptions_for([call.account_id]).get((call.account_id, surface))
    sent = _already_sent([call.uuid])
    fresh = [e for e in ev.for_state(call, account, state, subscription)
             if (call.uuid, e.event_type, e.url) not in sent]
    return enqueue(fresh, call.account_id)


def enqueue_processing_completed(call: Call, at: datetime | None = None) -> list[str]:
    """Enqueue ``all_processing_completed`` for ``call`` (``v1`` calls only)."""
    account = call.account
    surface = ev.call_surface(call)
    subscription = subscriptions_for([call.account_id]).get((call.account_id, surface))
    sent = _already_sent([call.uuid])
    fresh = [e for e in ev.for_processing(call, account, subscription, at)
             if (call.uuid, e.event_type, e.url) not in sent]
    return enqueue(fresh, call.account_id)


# -- inspection and replay (CLI) -------------------------------------------------------------


def find_delivery(ref: str | int) -> WebhookDelivery | None:
    """A delivery by its numeric id or its ``evt_…`` event id."""
    text = str(ref).strip()
    if text.startswith("evt_"):
        return WebhookDelivery.get_or_none(WebhookDelivery.event_id == text)
    if text.isascii() and text.isdigit() and int(text) < 2 ** 31:  # ids are 32-bit integers on PostgreSQL
        return WebhookDelivery.get_or_none(WebhookDelivery.id == int(text))
    return None


def _requeued(now: datetime) -> dict:
    """The fields of a delivery queued again: a fresh attempt count and retry window;
    the event id, body and attempt history stay."""
    return {"status": "pending", "attempts": 0, "next_attempt_at": now, "queued_at": now,
            "delivered_at": None, "last_code": None, "last_error": None}


def replay(ref: str | int, now: datetime | None = None) -> WebhookDelivery:
    """Queue a delivered, dead or stopped delivery again: same event id and body, a
    fresh attempt count and retry window. Raise ``LookupError`` / ``ValueError``."""
    now = now or utcnow()
    with database.atomic():
        delivery = find_delivery(ref)
        if delivery is None:
            raise LookupError(f"no webhook delivery {ref}")
        if delivery.status not in CLOSED_STATUSES:
            raise ValueError(f"delivery {delivery.id} is {delivery.status}; only a delivered, dead"
                             " or stopped one can be replayed")
        updated = (WebhookDelivery
                   .update(**_requeued(now))
                   .where((WebhookDelivery.id == delivery.id)
                          & WebhookDelivery.status.in_(CLOSED_STATUSES))
                   .execute())
        if not updated:
            raise ValueError(f"delivery {delivery.id} changed meanwhile; try again")
    return WebhookDelivery.get_by_id(delivery.id)


def replay_dead(since: datetime | None = None, account_id: int | None = None,
                now: datetime | None = None) -> int:
    """Queue every dead delivery again, as :func:`replay` does one: those whose event was
    created at or after ``since``, of one account if given. Return how many. A call's
    deliveries still go out in order (the dispatcher's per-call rule)."""
    D = WebhookDelivery
    condition = D.status == "dead"
    if since is not None:
        condition &= D.created_at >= since
    if account_id is not None:
        condition &= D.account == account_id
    return D.update(**_requeued(now or utcnow())).where(condition).execute()


def purge(older_than: timedelta, now: datetime | None = None) -> int:
    """Delete closed deliveries (and their attempts) created more than ``older_than`` ago."""
    cutoff = (now or utcnow()) - older_than
    return (WebhookDelivery.delete()
            .where(WebhookDelivery.status.in_(CLOSED_STATUSES) & (WebhookDelivery.created_at < cutoff))
            .execute())
