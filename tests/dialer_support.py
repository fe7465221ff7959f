"""Fixtures for the campaign dialer tests: a gateway over the test database whose dialer
runs on a clock the test holds, an account with a voice agent, and helpers to build,
start and watch a campaign against the simulator.

``gw`` dials by itself every 50 ms; ``manual_gw``'s dialer makes one pass when the test
calls ``manual_gw.dialer.tick()`` (and once at start, before anything exists)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import gevent
import pytest

from gateway import models
from gateway.auth.keys import create_key
from gateway.config import HttpAddress, MediaSettings, NodeConfig, Settings
from gateway.dialer import approvals, campaigns, contacts
from gateway.models import Account, Agent, CampaignContact, VoiceCampaign
from gateway.runtime import Gateway

CALLER_ID = "+12125550100"

__all__ = ["Clock", "CALLER_ID", "account", "agent", "clock", "gw", "manual_gw", "make_campaign", "load",
           "start", "wait_until", "originates", "contact_states"]


class Clock:
    """The dialer's clock: the real time until a test sets ``now``."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(timezone.utc)


@pytest.fixture
def clock():
    return Clock()


def _gateway(database_url, sim, clock, interval):
    node = NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")
    settings = Settings(database_url=database_url, http=HttpAddress("127.0.0.1", 0), freeswitch_nodes=(node,),
                        media=MediaSettings(enabled=False))
    gateway = Gateway(settings, originate_timeout=5,
                      dialer_options={"clock": clock, "interval": interval, "lease": 1.0})
    gateway.start(http=False)
    assert gateway.controller.wait_connected(5), "the gateway did not connect to the simulator"
    return gateway


@pytest.fixture
def gw(database_url, sim, clock):
    gateway = _gateway(database_url, sim, clock, 0.05)
    yield gateway
    gateway.stop()
    models.database.initialize(None)


@pytest.fixture
def manual_gw(database_url, sim, clock):
    gateway = _gateway(database_url, sim, clock, 3600)
    yield gateway
    gateway.stop()
    models.database.initialize(None)


@pytest.fixture
def account(request):
    gateway = request.getfixturevalue("manual_gw" if "manual_gw" in request.fixturenames else "gw")
    assert gateway
    return Account.create(name="acme", region="US", default_caller_id=CALLER_ID, balance=Decimal("100"),
                          default_webhook_url="https://hooks.invalid/campaigns")


@pytest.fixture
def agent(account):
    return Agent.create(account=account, key="closer", name="Closer", driver="websocket",
                        driver_ref="wss://agents.example.com/closer")


def make_campaign(account, agent, **settings) -> VoiceCampaign:
    window = settings.pop("window", None)
    zone = settings.pop("timezone", None)
    clean = campaigns.clean_settings(account, agent, name=settings.pop("name", "Renewals"),
                                     from_number=None, window=window, timezone=zone, **settings)
    return campaigns.create(account, clean, None)


def load(account, campaign, phones, **extra) -> contacts.LoadReport:
    with models.database.atomic():
        return contacts.load(account, campaign, [{"phone": p, **extra} for p in phones])


def start(account, campaign, approver="Dana (ops)"):
    """Request a start with an account key and approve it, as a person does."""
    api_key, _secret = create_key(account, ["voice:campaign:execute"])
    action = approvals.request(campaign, "start", api_key)
    return approvals.approve(action.id, approver)


def wait_until(predicate, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        gevent.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def originates(sim) -> Counter:
    """How many times each number was dialled, by the simulator's own record."""
    return Counter(ch.initial_profile.destination_number for ch in sim.history.values() if ch.direction == "outbound")


def contact_states(campaign) -> dict[str, str]:
    return {c.phone: c.state for c in CampaignContact.select().where(CampaignContact.campaign == campaign.id)}
