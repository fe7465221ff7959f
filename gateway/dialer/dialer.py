"""The campaign dialer: one greenlet per gateway process that dials running campaigns.

Every ``interval``, while some campaign is ``running``, it takes over the claims of dialers
that died before writing their call (``claims.take_over_stale``), then, for each running
campaign, claims the contacts its limits, calling windows and the wallet allow
(``claims.claim``) and places each one's call
with ``gateway.calls.placement``: the call's row and the attempt's ``call_uuid`` in one
transaction, then the originate, which waits its turn in the node's admission line with
every other call of the process (``gateway.calls.admission``). It claims nothing while
the lines already hold a second of the nodes' budget, so a campaign never crowds out the
other surfaces' calls. The call goes to the campaign's agent as a ``/v1`` agent call does
(its media target; the contact's name; the contact's variables as custom arguments).

Outcomes come back through ``results.results_hook``, whichever process ends the call.
``clock`` gives the time calling windows, due dates and retries are measured on (tests
fix it); claims and leases use the real time.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import datetime, timezone
from typing import Callable

import gevent
from gevent.event import Event as Flag

from gateway.calls.placement import PlacementFailed, originate, prepare
from gateway.dialer import campaigns as campaign_rules
from gateway.dialer import events
from gateway.dialer.claims import Claimed, claim, release, take_over_stale
from gateway.domain import Surface
from gateway.models import Account, Agent, CampaignContact, ContactAttempt, VoiceCampaign, database, utcnow
from gateway.models.db import connection_scope

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.5
#: Seconds after which an attempt claimed but not yet written is another dialer's to take.
DEFAULT_LEASE = 30.0


class LostClaim(Exception):
    """The attempt was taken over by another dialer before this one wrote its call."""


def _real_clock() -> datetime:
    return datetime.now(timezone.utc)


class Dialer:
    def __init__(self, controller, *, clock: Callable[[], datetime] = _real_clock, interval: float = DEFAULT_INTERVAL,
                 lease: float = DEFAULT_LEASE) -> None:
        self.controller = controller
        self.clock = clock
        self.interval = interval
        self.lease = lease
        self.dialer_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = Flag()
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._greenlet = gevent.spawn(self._run)

    def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; a pass under way ends (up to ``grace``), then the greenlet is killed."""
        self._stopping = True
        self._wake.set()
        if self._greenlet is not None:
            self._greenlet.join(grace)
            self._greenlet.kill(block=True, timeout=grace)
            self._greenlet = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                with connection_scope():
                    self.tick()
            except Exception:  # a database hiccup must not end the dialer
                logger.exception("campaign dialer: a pass failed")
            self._wake.wait(self.interval)

    # -- one pass --------------------------------------------------------------------------
    def tick(self) -> int:
        """One pass over the running campaigns; returns how many calls it placed."""
        if not any(node.connected.is_set() for node in self.controller.nodes.values()):
            return 0
        running = [cid for (cid,) in VoiceCampaign.select(VoiceCampaign.id)
                   .where(VoiceCampaign.status == "running").order_by(VoiceCampaign.id).tuples()]
        if not running:
            return 0  # an idle gateway costs one query a pass
        placed = 0
        for claimed in take_over_stale(self.dialer_id, self.lease):
            placed += self._place(claimed)
        for campaign_id in running:
            if self._stopping:
                break
            room = self._room()
            if room <= 0:
                break
            for claimed in claim(campaign_id, self.dialer_id, self.clock, room):
                placed += self._place(claimed)
        return placed

    def _room(self) -> int:
        """How many more calls may join the nodes' lines: a second's worth of their budget."""
        room = 0
        for pacer in self.controller.pacers.values():
            if pacer.node.connected.is_set():
                room += max(0, pacer.admission.rate - len(pacer.admission))
        return room

    def _place(self, claimed: Claimed) -> int:
        contact, attempt = claimed.contact, claimed.attempt
        campaign = VoiceCampaign.get_by_id(attempt.campaign_id)
        account = Account.get_by_id(campaign.account_id)
        agent = Agent.get_or_none(Agent.id == campaign.agent_id)
        if agent is None or not agent.active:
            release(claimed, "agent_unavailable")
            with database.atomic():
                campaign_rules.set_status(campaign, "paused", "its agent is deleted or inactive")
                events.announce("campaign.paused", campaign)
            return 0
        dialer_id = self.dialer_id

        def link_attempt(call_uuid: str) -> None:
            taken = (ContactAttempt.update(call_uuid=call_uuid, sent_at=utcnow())
                     .where((ContactAttempt.id == attempt.id) & (ContactAttempt.claimed_by == dialer_id)
                            & ContactAttempt.call_uuid.is_null()).execute())
            if taken != 1:
                raise LostClaim(f"attempt {attempt.id} was taken over")
            CampaignContact.update(last_call_uuid=call_uuid).where(CampaignContact.id == contact.id).execute()

        custom_args = {**(contact.variables or {}), "campaign_id": str(campaign.id), "contact_id": str(contact.id)}
        try:
            call, node = prepare(self.controller, account, contact.phone, campaign.from_number,
                                 surface=Surface.VOICE.value, before=link_attempt, socket_url=agent.media_target,
                                 custom_args=custom_args, agent=agent.id, contact_name=contact.name)
        except PlacementFailed as exc:
            logger.warning("campaign %s: contact %s not dialled: %s", campaign.id, contact.id, exc)
            release(claimed, "no_node")
            return 0
        except LostClaim:
            return 0
        try:
            originate(self.controller, call, node)
        except PlacementFailed as exc:  # the controller marks the call failed; its outcome settles the attempt
            logger.warning("campaign %s: call %s to contact %s failed: %s", campaign.id, call.uuid, contact.id, exc)
        return 1
