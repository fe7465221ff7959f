"""The campaign dialer in one gateway process against the simulator: every contact dialled
once per attempt, retries, the approval gate, pause and stop, calling windows on a fixed
clock, the wallet, the do-not-call list and the take-over of a dead dialer's claim."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from dialer_support import *  # noqa: F401,F403 -- fixtures
from dialer_support import contact_states, load, make_campaign, originates, start, wait_until
from gateway.auth.keys import create_key
from gateway.billing.ledger import credit
from gateway.dialer import approvals, claims, contacts
from gateway.models import (
    Call,
    CallRate,
    CampaignContact,
    ContactAttempt,
    VoiceCampaign,
    WebhookDelivery,
)
from gateway.simulator.outcomes import Outcome
from gateway.webhooks.subscriptions import set_subscription

ANSWERS = Outcome(final=200, hangup_after=0.2)
BUSY = Outcome(final=486, delay=0.05)
NO_ANSWER = Outcome(final=480, delay=0.1, cause="NO_ANSWER")
DECLINES = Outcome(final=603, delay=0.05)
MIX = (ANSWERS, BUSY, NO_ANSWER, DECLINES)
EXPECTED = {ANSWERS: "completed", BUSY: "busy", NO_ANSWER: "no_answer", DECLINES: "failed"}


def numbers(n, start=2000000):
    return [f"+1212{start + i:07d}" for i in range(n)]


def _final(campaign):
    return lambda: VoiceCampaign.get_by_id(campaign.id).status == "completed"


def test_every_contact_is_dialled_once_per_attempt_and_retried_as_configured(gw, sim, account, agent):
    phones = numbers(40)
    for index, phone in enumerate(phones):
        sim.set_outcome(phone, MIX[index % 4])
    campaign = make_campaign(account, agent, calls_per_second=20, max_concurrent=10, max_attempts=2,
                             retry_backoff_seconds=0)
    load(account, campaign, phones, name="Ada", variables={"plan": "gold"})
    action = start(account, campaign)
    assert action.status == "executed"
    wait_until(_final(campaign), 30, "the campaign to complete")

    dialled = originates(sim)
    states = contact_states(campaign)
    for index, phone in enumerate(phones):
        outcome = MIX[index % 4]
        assert states[phone] == EXPECTED[outcome], phone
        assert dialled[phone] == (1 if outcome is ANSWERS else 2), phone
    attempts = list(ContactAttempt.select())
    assert len(attempts) == sum(dialled.values())
    assert all(a.outcome and a.call_uuid and a.sent_at for a in attempts)
    assert {a.call_uuid for a in attempts} == {ch.uuid for ch in sim.history.values() if ch.direction == "outbound"}
    call = Call.get_by_id(attempts[0].call_uuid)
    assert call.surface == "voice" and call.agent_id == agent.id and call.contact_name == "Ada"
    assert call.custom_args["plan"] == "gold" and call.socket_url == agent.media_target
    assert call.from_number == account.default_caller_id

    sent = [d.event_type for d in WebhookDelivery.select().order_by(WebhookDelivery.id)]
    assert sent[0] == "campaign.started" and sent[-1] == "campaign.completed"
    assert sent.count("campaign.contact_result") == len(attempts)


def test_no_call_before_approval_and_none_after_a_rejection(manual_gw, sim, account, agent):
    campaign = make_campaign(account, agent)
    load(account, campaign, numbers(3))
    api_key, _ = create_key(account, ["voice:campaign:execute"])
    action = approvals.request(campaign, "start", api_key)
    assert manual_gw.dialer.tick() == 0
    approvals.reject(action.id, "Dana (ops)", "not this week")
    assert manual_gw.dialer.tick() == 0
    assert VoiceCampaign.get_by_id(campaign.id).status == "draft"
    assert not originates(sim) and Call.select().count() == 0
    steps = [(e.status, e.by) for e in approvals.history(action)]
    assert steps[0][0] == "awaiting_approval" and steps[1] == ("rejected", "Dana (ops)")


def test_pause_stops_new_dials_at_once_and_stop_cancels_what_is_pending(manual_gw, sim, account, agent):
    phones = numbers(6)
    for phone in phones:
        sim.set_outcome(phone, Outcome(final=200, hangup_after=0.5))
    campaign = make_campaign(account, agent, calls_per_second=30, max_concurrent=2)
    load(account, campaign, phones)
    start(account, campaign)
    assert manual_gw.dialer.tick() == 2  # the concurrency limit
    api_key, _ = create_key(account, ["voice:campaign:execute"])
    pause = approvals.approve(approvals.request(campaign, "pause", api_key).id, "Dana")
    assert pause.status == "executed"
    live = [a.call_uuid for a in ContactAttempt.select()]
    wait_until(lambda: all(Call.get_by_id(u).status == "completed" for u in live), 10, "the live calls to end")
    assert manual_gw.dialer.tick() == 0
    assert sum(originates(sim).values()) == 2

    resume = approvals.approve(approvals.request(campaign, "start", api_key).id, "Dana")
    assert resume.status == "executed" and manual_gw.dialer.tick() == 2
    stop = approvals.approve(approvals.request(campaign, "stop", api_key).id, "Dana")
    assert stop.status == "executed"
    states = contact_states(campaign)
    assert sorted(states.values()).count("cancelled") == 2
    assert manual_gw.dialer.tick() == 0
    again = approvals.approve(approvals.request(campaign, "start", api_key).id, "Dana")
    assert again.status == "failed" and "stopped" in again.reason


def test_calling_windows_are_kept_in_each_contacts_time_zone(manual_gw, sim, clock, account, agent):
    new_york, kolkata, london = "+12125550111", "+919812345678", "+442071234567"
    for phone in (new_york, kolkata, london):
        sim.set_outcome(phone, ANSWERS)
    clock.now = datetime(2030, 1, 7, 12, 0, tzinfo=timezone.utc)  # Monday: 07:00 NY, 17:30 Kolkata, 12:00 London
    campaign = make_campaign(account, agent, calls_per_second=30, max_concurrent=10,
                             window={"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "20:00"})
    load(account, campaign, [new_york, kolkata, london])
    start(account, campaign)
    assert manual_gw.dialer.tick() == 2
    wait_until(lambda: set(originates(sim)) == {kolkata, london}, 5, "Kolkata and London to be dialled")
    waiting = CampaignContact.get(CampaignContact.phone == new_york)
    assert waiting.state == "pending" and waiting.next_attempt_at == datetime(2030, 1, 7, 14, tzinfo=timezone.utc)

    clock.now = datetime(2030, 1, 7, 13, 59, tzinfo=timezone.utc)
    assert manual_gw.dialer.tick() == 0
    clock.now = datetime(2030, 1, 7, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York
    assert manual_gw.dialer.tick() == 1
    wait_until(lambda: originates(sim)[new_york] == 1, 5, "New York to be dialled")


def test_the_dialer_stops_when_the_wallet_cannot_pay_a_minute(manual_gw, sim, account, agent):
    account.balance = Decimal("0")
    account.save()
    credit(account, Decimal("1.50"))
    CallRate.create(account=account, prefix="+1", per_minute=Decimal("1.00"), pulse_sec=60)
    phones = numbers(3)
    for phone in phones:
        sim.set_outcome(phone, Outcome(final=200, hangup_after=1.2))  # billed one minute
    campaign = make_campaign(account, agent, calls_per_second=30, max_concurrent=1)
    load(account, campaign, phones)
    start(account, campaign)
    assert manual_gw.dialer.tick() == 1
    first = ContactAttempt.get()
    wait_until(lambda: ContactAttempt.get_by_id(first.id).outcome == "completed", 10, "the first call to end")
    assert manual_gw.dialer.tick() == 0
    campaign = VoiceCampaign.get_by_id(campaign.id)
    assert campaign.status == "paused" and "insufficient funds" in campaign.status_reason
    assert sum(originates(sim).values()) == 1
    assert WebhookDelivery.select().where(WebhookDelivery.event_type == "campaign.paused").count() == 1


def test_the_do_not_call_list_is_honoured_at_load_and_at_dial_time(manual_gw, sim, account, agent):
    blocked_first, blocked_later, allowed = numbers(3)
    sim.set_outcome(allowed, ANSWERS)
    with manual_gw.db.atomic():
        contacts.block(account, blocked_first)
    campaign = make_campaign(account, agent, calls_per_second=30)
    report = load(account, campaign, [blocked_first, blocked_later, allowed])
    assert report.do_not_call == 1 and report.loaded == 3
    with manual_gw.db.atomic():
        contacts.block(account, blocked_later)
    start(account, campaign)
    assert manual_gw.dialer.tick() == 1
    wait_until(lambda: set(originates(sim)) == {allowed}, 5, "the allowed number to be dialled")
    states = contact_states(campaign)
    assert states[blocked_first] == states[blocked_later] == "do_not_call"


def test_a_claim_left_by_a_dead_dialer_is_taken_over_and_dialled_once(manual_gw, sim, clock, account, agent):
    phone = numbers(1)[0]
    sim.set_outcome(phone, ANSWERS)
    campaign = make_campaign(account, agent)
    load(account, campaign, [phone])
    start(account, campaign)
    [claimed] = claims.claim(campaign.id, "dead-process", clock, 1)  # it died before writing its call
    assert manual_gw.dialer.tick() == 0  # its lease has not run out: nobody else dials
    ContactAttempt.update(claimed_at=claimed.attempt.claimed_at - timedelta(seconds=5)).execute()
    assert manual_gw.dialer.tick() == 1
    attempt = ContactAttempt.get_by_id(claimed.attempt.id)
    assert attempt.claimed_by == manual_gw.dialer.dialer_id and attempt.call_uuid
    wait_until(lambda: contact_states(campaign)[phone] == "completed", 10, "the call to end")
    assert originates(sim)[phone] == 1 and ContactAttempt.select().count() == 1


def test_campaign_events_follow_the_accounts_voice_subscription(manual_gw, account, agent):
    set_subscription(account, "voice", url="https://hooks.example.com/voice", events=["campaign.completed"],
                     resolve_host=False)
    campaign = make_campaign(account, agent)
    start(account, campaign)  # no contacts: it completes at the first pass
    assert manual_gw.dialer.tick() == 0
    assert VoiceCampaign.get_by_id(campaign.id).status == "completed"
    [delivery] = WebhookDelivery.select()
    assert delivery.event_type == "campaign.completed" and delivery.url == "https://hooks.example.com/voice"
    assert delivery.surface == "voice" and '"event":"campaign.completed"' in delivery.body
