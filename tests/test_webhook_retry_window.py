"""Webhook retries over the whole 24-hour window, with a controllable clock (a day of
retries runs in seconds against a real receiver on 127.0.0.1), the dead-letter state
and its replay, one by one and in bulk."""
import random
from datetime import datetime, timedelta, timezone

import pytest

from gateway.models import Account, WebhookAttempt, WebhookDelivery, migrate, utcnow
from gateway.models.migrations import MIGRATIONS, SchemaVersion
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.subscriptions import set_subscription
from webhook_support import Reply, answered, completed, make_call, move, receiver, ringing  # noqa: F401
from cli_support import Cli, cli  # noqa: F401 -- fixture

WINDOW = timedelta(hours=24)
CAP = timedelta(hours=1)

pytestmark = pytest.mark.usefixtures("loopback_allowed")


class Clock:
    """The dispatcher's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def dispatcher_with(database, clock, **kwargs):
    return Dispatcher(database, clock=clock, request_timeout=2.0, lease=5.0, **kwargs)


def open_deliveries():
    return WebhookDelivery.select().where(WebhookDelivery.status.in_(["pending", "delivering"]))


def run(dispatcher, clock, until: datetime, at=()):
    """Deliver what is due; when nothing is, move the clock to the next retry; until
    nothing is open or the clock passes ``until``. ``at``: ``(moment, action)`` pairs,
    each run once when the clock reaches its moment (a receiver coming back, say)."""
    actions = sorted(at, key=lambda pair: pair[0])
    while clock.now <= until:
        while actions and clock.now >= actions[0][0]:
            actions.pop(0)[1]()
        if dispatcher.run_once():
            continue  # a call's next event may be due now
        later = [d.next_attempt_at for d in open_deliveries() if d.next_attempt_at > clock.now]
        later += [moment for moment, _ in actions[:1]]
        if not later:
            return
        clock.now = min(later)


def attempt_times(delivery):
    return [a.at for a in WebhookAttempt.select().where(WebhookAttempt.delivery == delivery.id)
            .order_by(WebhookAttempt.id)]


# -- the schedule ------------------------------------------------------------------------------


@pytest.mark.parametrize("draw", ["shortest", "longest", "random"])
def test_the_schedule_covers_the_window_with_gaps_of_at_most_an_hour(draw):
    rng = {"shortest": lambda: 0.0, "longest": lambda: 1.0, "random": random.Random(19).random}[draw]
    dispatcher = Dispatcher(rng=rng)
    queued = datetime(2026, 2, 9, 14, 30, tzinfo=timezone.utc)
    times, attempts = [queued], 1
    while (following := dispatcher.retry_at(queued, attempts, times[-1])) is not None:
        times.append(following)
        attempts += 1
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times[-1] == queued + WINDOW  # the last attempt is at the very end of the window
    assert max(gaps) <= CAP
    assert all(gap >= timedelta(minutes=30) for gap in gaps[9:-1])  # once capped: at most two an hour
    assert 30 <= len(times) <= 60
    assert dispatcher.retry_at(queued, attempts, queued + WINDOW) is None


def test_the_window_and_the_backoff_are_checked():
    with pytest.raises(ValueError, match="window"):
        Dispatcher(max_age=timedelta(0))
    with pytest.raises(ValueError, match="backoff"):
        Dispatcher(backoff_base=0)
    with pytest.raises(ValueError, match="backoff"):
        Dispatcher(backoff_base=100, backoff_cap=10)
    with pytest.raises(ValueError, match="max_attempts"):
        Dispatcher(max_attempts=0)


# -- a receiver that is down ---------------------------------------------------------------------


def test_events_survive_a_two_hour_outage_and_arrive_in_order_after_it(database, receiver):
    account = Account.create(name="acme")
    set_subscription(account, "public", url=receiver.url("/events"))
    calls = [make_call(account, surface="public") for _ in range(3)]
    for call in calls:
        move(call, ringing(), answered(), completed())
    receiver.down()
    clock = Clock(utcnow())
    back = clock.now + timedelta(hours=2)
    run(dispatcher_with(database, clock, rng=random.Random(2).random), clock, until=clock.now + WINDOW,
        at=[(back, receiver.up)])

    rows = list(WebhookDelivery.select().order_by(WebhookDelivery.id))
    assert len(rows) == 9 and {d.status for d in rows} == {"delivered"}
    received = {}
    for request in receiver.requests:
        body = request.json()
        received.setdefault(body["data"]["call_id"], []).append(body["event"])
    assert received == {call.uuid: ["call.ringing", "call.in_progress", "call.completed"] for call in calls}
    for delivery in rows:
        assert back <= delivery.delivered_at <= back + CAP  # within the hour after the receiver is back
    for first in rows[::3]:  # each call's first event was tried all through the outage
        times = attempt_times(first)
        assert len([t for t in times if t < back]) >= 10
        assert max(b - a for a, b in zip(times, times[1:])) <= CAP


# -- past the window: dead, listed, replayed ------------------------------------------------------


def test_an_event_past_the_window_is_dead_and_can_be_replayed(database, receiver, cli):
    account = Account.create(name="acme")
    call = make_call(account, surface="api", webhook_url=receiver.url())
    move(call, completed())
    receiver.default = Reply(500, b"down for maintenance")
    clock = Clock(utcnow())
    (queued,) = WebhookDelivery.select()
    dispatcher = dispatcher_with(database, clock)
    run(dispatcher, clock, until=clock.now + 2 * WINDOW)

    (dead,) = WebhookDelivery.select()
    times = attempt_times(dead)
    assert (dead.status, dead.last_code, dead.last_error) == ("dead", 500, "HTTP 500: down for maintenance")
    assert times[-1] == queued.queued_at + WINDOW and 30 <= len(times) <= 60
    assert len(receiver.requests) == len(times) == dead.attempts
    assert max(b - a for a, b in zip(times, times[1:])) <= CAP

    listed = cli.json("webhooks", "list", "--dead")["deliveries"]
    assert [(d["event_id"], d["status"], d["last_code"]) for d in listed] == [(dead.event_id, "dead", 500)]
    assert cli.json("webhooks", "list", "--status", "dead", "--since", "1h")["deliveries"] == listed
    text = cli("webhooks", "list", "--dead")
    assert dead.event_id in text and " dead " in text

    receiver.default = Reply(200)
    replayed = cli.json("webhooks", "replay", "--dead", "--since", "1d")
    assert replayed == {"replayed": 1, "since": replayed["since"], "account_id": None}
    (again,) = WebhookDelivery.select()
    assert (again.status, again.attempts, again.last_error) == ("pending", 0, None)
    assert dispatcher.run_once() == 1
    (delivered,) = WebhookDelivery.select()
    assert (delivered.status, delivered.event_id) == ("delivered", dead.event_id)
    assert receiver.requests[-1].headers["x-webhook-id"] == dead.event_id
    assert len(attempt_times(delivered)) == len(times) + 1  # the history is kept


def test_bulk_replay_takes_only_the_dead_ones_asked_for(database, receiver, cli):
    acme, other = Account.create(name="acme"), Account.create(name="other")
    rows = {}
    for name, account in (("old", acme), ("new", acme), ("other", other), ("delivered", acme)):
        move(make_call(account, surface="api", webhook_url=receiver.url(f"/{name}")), completed())
        rows[name] = WebhookDelivery.get(WebhookDelivery.url == receiver.url(f"/{name}"))
    WebhookDelivery.update(status="dead", attempts=40, last_code=500).where(
        WebhookDelivery.id != rows["delivered"].id).execute()
    WebhookDelivery.update(status="delivered").where(WebhookDelivery.id == rows["delivered"].id).execute()
    WebhookDelivery.update(created_at=utcnow() - timedelta(days=3)).where(
        WebhookDelivery.id == rows["old"].id).execute()

    def statuses():
        return {name: WebhookDelivery.get_by_id(row.id).status for name, row in rows.items()}

    assert cli.json("webhooks", "replay", "--dead", "--since", "1d", "--account", "acme")["replayed"] == 1
    assert statuses() == {"old": "dead", "new": "pending", "other": "dead", "delivered": "delivered"}
    since = (utcnow() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")  # ISO, no offset: UTC
    assert cli.json("webhooks", "replay", "--dead", "--since", since)["replayed"] == 2
    assert statuses() == {"old": "pending", "new": "pending", "other": "pending", "delivered": "delivered"}
    assert "queued 0 dead deliveries" in cli("webhooks", "replay", "--dead")


def test_replay_refuses_unclear_requests(database, cli):
    assert "give a delivery id" in cli("webhooks", "replay", status=2)
    assert "not both" in cli("webhooks", "replay", "1", "--dead", status=2)
    assert "go with --dead" in cli("webhooks", "replay", "1", "--since", "1h", status=2)
    assert "ISO 8601" in cli("webhooks", "replay", "--dead", "--since", "yesterday", status=2)
    assert "ISO 8601" in cli("webhooks", "list", "--since", "99999999999999d", status=2)
    assert "no account" in cli("webhooks", "replay", "--dead", "--account", "nobody", status=2).lower()
    assert "no webhook delivery" in cli("webhooks", "replay", "99999999999999999999", status=2)
    with pytest.raises(SystemExit):
        cli.parser.parse_args(["webhooks", "list", "--dead", "--status", "pending"])


@pytest.mark.parametrize("hours", ["0", "-1", "1e308", "nan"])
def test_dispatch_refuses_a_window_that_is_not_one(capsys, hours):
    parser = Cli(capsys).parser
    args = parser.parse_args(["webhooks", "dispatch", "--max-age-hours", hours])
    with pytest.raises(ValueError, match="--max-age-hours must be more than 0"):
        args.func(args)


def test_the_migration_turns_failed_deliveries_into_dead_ones(database, receiver):
    account = Account.create(name="acme")
    move(make_call(account, surface="api", webhook_url=receiver.url()), completed())
    WebhookDelivery.update(status="failed").execute()
    step = MIGRATIONS.index(next(m for m in MIGRATIONS if m.__name__ == "_dead_webhook_deliveries")) + 1
    SchemaVersion.delete().where(SchemaVersion.version == step).execute()
    assert migrate(database) == [step]
    assert [d.status for d in WebhookDelivery.select()] == ["dead"]
