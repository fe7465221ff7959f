"""Which events an account receives, and where: one ``WebhookSubscription`` per surface.

Without a subscription, a surface's default applies: ``api`` calls send every event to
the call's ``webhook_url`` or the account's ``default_webhook_url``; ``v1`` and
``public`` calls send nothing until a URL is set.
"""
from __future__ import annotations

from typing import Iterable

from gateway.models import Account, WebhookSubscription, utcnow
from gateway.webhooks.events import EVENT_TYPES, SUBSCRIBABLE
from gateway.webhooks.profiles import GATEWAY, check_profile
from gateway.webhooks.urls import check_url

_UNSET = object()


def clean_events(surface: str, events: Iterable[str] | None) -> list[str] | None:
    """``events`` checked against the surface's event types (None: all of them)."""
    if events is None:
        return None
    events = list(dict.fromkeys(e.strip() for e in events if e and e.strip()))
    unknown = [e for e in events if e not in EVENT_TYPES[surface]]
    if unknown:
        raise ValueError(
            f"unknown event type(s) for surface {surface}: {', '.join(unknown)};"
            f" expected some of {', '.join(EVENT_TYPES[surface])}"
        )
    return events


def check_surface(surface: str) -> str:
    if surface not in SUBSCRIBABLE:
        raise ValueError(f"surface {surface!r} is invalid; expected one of {', '.join(SUBSCRIBABLE)}")
    return surface


def set_subscription(account: Account | int, surface: str, *, url=_UNSET, events=_UNSET,
                     active=_UNSET, header_profile=_UNSET, resolve_host: bool = True) -> WebhookSubscription:
    """Create or update the account's subscription for ``surface``; only the given
    fields change. ``url`` is checked against the URL policy (``urls.check_url``),
    ``header_profile`` against the profiles the surface offers (``profiles.check_profile``)."""
    check_surface(surface)
    account_id = account if isinstance(account, int) else account.id
    changes = {}
    if url is not _UNSET:
        changes["url"] = None if url in (None, "") else check_url(url, resolve_host=resolve_host)
    if events is not _UNSET:
        changes["events"] = clean_events(surface, events)
    if active is not _UNSET:
        changes["active"] = bool(active)
    if header_profile is not _UNSET:
        changes["header_profile"] = check_profile(surface, header_profile or GATEWAY)
    subscription = WebhookSubscription.get_or_none(
        (WebhookSubscription.account == account_id) & (WebhookSubscription.surface == surface))
    if subscription is None:
        return WebhookSubscription.create(account=account_id, surface=surface, **changes)
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.updated_at = utcnow()
    subscription.save()
    return subscription


def subscriptions_for(account_ids: Iterable[int]) -> dict[tuple[int, str], WebhookSubscription]:
    """``{(account id, surface): subscription}`` for these accounts, in one query."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = WebhookSubscription.select().where(WebhookSubscription.account.in_(ids))
    return {(row.account_id, row.surface): row for row in rows}


def header_profile_of(account_id: int, surface: str) -> str:
    """The header profile of the account's subscription for ``surface`` (ours without one)."""
    row = (WebhookSubscription.select(WebhookSubscription.header_profile)
           .where((WebhookSubscription.account == account_id) & (WebhookSubscription.surface == surface))
           .first())
    return row.header_profile if row is not None else GATEWAY
