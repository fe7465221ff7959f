"""Voice campaigns: creating one (its settings checked), and the status changes an
executed action makes.

============  ======================  ==========================================
action        from                    effect
============  ======================  ==========================================
``start``     draft, paused           running: the dialer places calls
``pause``     running                 paused: no new dial; live calls end as they will
``stop``      draft, running, paused  stopped: pending contacts cancelled, no retry
============  ======================  ==========================================

Any other pair fails the action with a reason (``ActionFailed``). A campaign whose
contacts are all final is ``completed`` (the dialer sees to it).
"""
from __future__ import annotations

from dataclasses import dataclass

from peewee import fn

from gateway.dialer import events
from gateway.dialer.windows import Window, check_zone
from gateway.models import Account, Agent, CampaignContact, VoiceCampaign, utcnow
from gateway.numbering import normalize

LIMITS = {
    "calls_per_second": (0.1, 30.0),
    "max_concurrent": (1, 1000),
    "max_attempts": (1, 10),
    "retry_backoff_seconds": (0, 7 * 86400),
}
STARTABLE = ("draft", "paused")
PAUSABLE = ("running",)
STOPPABLE = ("draft", "running", "paused")


class ActionFailed(Exception):
    """The action cannot be executed on the campaign as it is; the message says why."""


@dataclass(frozen=True)
class CampaignSettings:
    name: str
    agent: Agent
    from_number: str
    calls_per_second: float = 1.0
    max_concurrent: int = 5
    max_attempts: int = 1
    retry_backoff_seconds: int = 300
    window: Window = Window(frozenset(range(1, 8)), 0, 24 * 60)
    timezone: str = "UTC"


def clean_settings(account: Account, agent: Agent, *, name: str, from_number: str | None, window: dict | None,
                   timezone: str | None, **limits) -> CampaignSettings:
    """Check a new campaign's settings; ``ValueError`` names the first one wrong."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise ValueError("name: 1 to 255 characters")
    number = from_number or account.default_caller_id
    if not number:
        raise ValueError("from_number: the account has no default caller ID; send from_number")
    number = normalize(number, account.region)
    for field, value in limits.items():
        low, high = LIMITS[field]
        if value is not None and not low <= value <= high:
            raise ValueError(f"{field}: between {low:g} and {high:g}")
    spans = window or {}
    parsed = Window.of(spans.get("days", list(range(1, 8))), spans.get("start", "00:00"), spans.get("end", "24:00"))
    zone = check_zone(timezone or account.timezone or "UTC")
    given = {field: value for field, value in limits.items() if value is not None}
    return CampaignSettings(name=name, agent=agent, from_number=number, window=parsed, timezone=zone, **given)


def create(account: Account, settings: CampaignSettings, owner_agent_id: int | None) -> VoiceCampaign:
    window = settings.window
    return VoiceCampaign.create(
        account=account.id, owner_agent=owner_agent_id, agent=settings.agent.id, name=settings.name,
        from_number=settings.from_number, calls_per_second=settings.calls_per_second,
        max_concurrent=settings.max_concurrent, max_attempts=settings.max_attempts,
        retry_backoff_sec=settings.retry_backoff_seconds, window_days=sorted(window.days),
        window_start=_clock(window.start), window_end=_clock(window.end), timezone=settings.timezone,
    )


def window_of(campaign: VoiceCampaign) -> Window:
    return Window.of(campaign.window_days, campaign.window_start, campaign.window_end)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def counts(campaign_id: int) -> dict[str, int]:
    """How many contacts are in each state."""
    rows = (CampaignContact.select(CampaignContact.state, fn.COUNT(CampaignContact.id).alias("n"))
            .where(CampaignContact.campaign == campaign_id).group_by(CampaignContact.state).tuples())
    return {state: n for state, n in rows}


def set_status(campaign: VoiceCampaign, status: str, reason: str | None = None, **fields) -> None:
    now = utcnow()
    campaign.status, campaign.status_reason, campaign.updated_at = status, reason, now
    for name, value in fields.items():
        setattr(campaign, name, value)
    (VoiceCampaign.update(status=status, status_reason=reason, updated_at=now, **fields)
     .where(VoiceCampaign.id == campaign.id).execute())


def execute(campaign: VoiceCampaign, kind: str) -> None:
    """Apply an approved action (inside the caller's transaction), with its webhook; or
    ``ActionFailed``."""
    now = utcnow()
    if kind == "start":
        if campaign.status not in STARTABLE:
            raise ActionFailed(f"the campaign is {campaign.status}; only a draft or paused campaign starts")
        set_status(campaign, "running", None, started_at=campaign.started_at or now)
        events.announce("campaign.started", campaign, now=now)
    elif kind == "pause":
        if campaign.status not in PAUSABLE:
            raise ActionFailed(f"the campaign is {campaign.status}; only a running campaign pauses")
        set_status(campaign, "paused", None)
        events.announce("campaign.paused", campaign, now=now)
    elif kind == "stop":
        if campaign.status not in STOPPABLE:
            raise ActionFailed(f"the campaign is {campaign.status} already")
        set_status(campaign, "stopped", None, completed_at=now)
        (CampaignContact.update(state="cancelled", updated_at=now)
         .where((CampaignContact.campaign == campaign.id) & (CampaignContact.state == "pending")).execute())
        events.announce("campaign.stopped", campaign, now=now)
    else:
        raise ActionFailed(f"unknown action {kind!r}")
