"""The dispatcher against real receivers: retries, backoff, 410, bounds, per-call order,
leases, concurrent claims, attempt records; and the ``webhooks`` CLI."""
import re
from datetime import datetime, timedelta, timezone

import gevent
import pytest

from gateway.models import Account, WebhookAttempt, WebhookDelivery, utcnow
from gateway.webhooks import urls
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.subscriptions import set_subscription
from webhook_support import (  # noqa: F401
    Reply,
    answered,
    completed,
    make_call,
    move,
    receiver,
    ringing,
    wait_until,
)
from cli_support import cli  # noqa: F401 -- fixture

T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 9, 14, 30, 50, tzinfo=timezone.utc)


def fast(database, **kwargs):
    options = {"backoff_base": 0.02, "backoff_cap": 0.1, "request_timeout": 2.0, "lease": 5.0,
               "poll_interval": 0.02, **kwargs}
    return Dispatcher(database, **options)


def api_call(account, receiver, path="/hook"):
    return make_call(account, surface="api", webhook_url=receiver.url(path))


def deliveries():
    return list(WebhookDelivery.select().order_by(WebhookDelivery.id))


def attempts(delivery):
    return list(WebhookAttempt.select().where(WebhookAttempt.delivery == delivery.id).order_by(WebhookAttempt.id))


def settled():
    return not WebhookDelivery.select().where(WebhookDelivery.status.in_(["pending", "delivering"])).exists()


@pytest.fixture
def running(database):
    started = []

    def start(dispatcher):
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        dispatcher.stop(timeout=1)


pytestmark = pytest.mark.usefixtures("loopback_allowed")


def test_retries_with_backoff_until_delivered_and_records_every_attempt(database, receiver, running):
    account = Account.create(name="acme")
    call = api_call(account, receiver)
    move(call, answered(T1))
    receiver.script(Reply(500, b"boom"), Reply(503, b""), Reply(200))
    running(fast(database))
    wait_until(settled, what="delivery")
    (d,) = deliveries()
    assert (d.status, d.attempts, d.last_code, d.last_error) == ("delivered", 3, 200, None)
    assert d.delivered_at is not None
    log = attempts(d)
    assert [(a.number, a.code, a.error) for a in log] == [(1, 500, "HTTP 500: boom"), (2, 503, "HTTP 503"),
                                                          (3, 200, None)]
    assert all(a.latency_ms >= 0 for a in log)
    bodies = {r.body for r in receiver.requests}
    ids = {r.headers["x-webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 3 and len(bodies) == 1 and ids == {d.event_id}


def test_backoff_is_exponential_with_equal_jitter(database):
    dispatcher = Dispatcher(database, backoff_base=10, backoff_cap=3600, rng=lambda: 1.0)
    assert [dispatcher.backoff(n) for n in (1, 2, 3, 4, 9, 10, 500)] == [10, 20, 40, 80, 2560, 3600, 3600]
    dispatcher.rng = lambda: 0.0
    assert [dispatcher.backoff(n) for n in (1, 3, 10)] == [5, 20, 1800]
    jittered = Dispatcher(database, backoff_base=10)
    values = {jittered.backoff(5) for _ in range(50)}
    assert all(80 <= v <= 160 for v in values) and len(values) > 40


def test_410_stops_the_delivery(database, receiver, running):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    receiver.default = Reply(410, b"gone")
    running(fast(database))
    wait_until(settled, what="delivery")
    (d,) = deliveries()
    assert (d.status, d.attempts, d.last_code) == ("stopped", 1, 410)
    gevent.sleep(0.2)
    assert len(receiver.requests) == 1


def test_attempts_can_be_bounded_too(database, receiver, running):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    receiver.default = Reply(500, b"")
    running(fast(database, max_attempts=3))
    wait_until(settled, what="failure")
    (d,) = deliveries()
    assert (d.status, d.attempts, d.last_code, d.last_error) == ("dead", 3, 500, "HTTP 500")
    assert len(attempts(d)) == len(receiver.requests) == 3


def test_age_is_bounded(database, receiver):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    WebhookDelivery.update(queued_at=utcnow() - timedelta(hours=25)).execute()
    receiver.default = Reply(500, b"")
    assert fast(database).run_once() == 1  # an old delivery still gets its attempt…
    (d,) = deliveries()
    assert (d.status, d.attempts) == ("dead", 1)  # …but no retry


def test_timeouts_and_connection_errors_are_retried(database, receiver):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    receiver.script(Reply(200, delay=1.0))
    dispatcher = fast(database, request_timeout=0.3, backoff_base=60, backoff_cap=60, rng=lambda: 1.0)
    dispatcher.run_once()
    (d,) = deliveries()
    assert (d.status, d.last_code, d.last_error) == ("pending", None, "timed out after 0.3s")
    assert d.next_attempt_at > utcnow()
    receiver.down()
    WebhookDelivery.update(next_attempt_at=utcnow()).execute()
    dispatcher.run_once()
    (d,) = deliveries()
    assert d.status == "pending" and d.last_error.startswith("connection error:")
    assert [a.code for a in attempts(d)] == [None, None]


def test_a_refused_url_fails_at_once(database, receiver, monkeypatch):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    monkeypatch.setattr(urls.policy, "allowlist", ())  # 127.0.0.1 is not allowed any more
    fast(database).run_once()
    (d,) = deliveries()
    assert d.status == "dead" and d.attempts == 1
    assert "127.0.0.1, a loopback address; refused" in d.last_error
    assert receiver.requests == []


def test_a_call_waits_for_its_earlier_event_and_other_calls_do_not(database, receiver, running):
    account = Account.create(name="acme")
    slow = api_call(account, receiver, "/slow")
    other = api_call(account, receiver, "/other")
    move(slow, answered(T1))
    move(slow, completed(T2))
    move(other, answered(T1))
    move(other, completed(T2))
    receiver.script(Reply(500, b""), Reply(500, b""))  # the first two requests fail
    running(fast(database, backoff_base=0.3, backoff_cap=0.3, rng=lambda: 1.0))
    wait_until(settled, what="deliveries")
    order = [(r.path, r.json()["event_type"]) for r in receiver.requests]
    for path in ("/slow", "/other"):
        mine = [event for p, event in order if p == path]
        first_completed = mine.index("call.completed")
        assert "call.answered" not in mine[first_completed:], order  # never out of order
        assert mine[-1] == "call.completed"
    assert all(d.status == "delivered" for d in deliveries())


def test_a_receiver_that_was_down_gets_everything_in_order(database, receiver, running):
    account = Account.create(name="acme")
    set_subscription(account, "public", url=receiver.url("/events"))
    calls = [make_call(account, surface="public") for _ in range(4)]
    for call in calls:
        move(call, ringing())
        move(call, answered(T1))
        move(call, completed(T2))
    receiver.down()
    running(fast(database, max_attempts=1000, backoff_cap=0.05))
    wait_until(lambda: WebhookAttempt.select().count() >= 8, what="failed attempts")
    receiver.up()
    wait_until(settled, what="deliveries")
    assert all(d.status == "delivered" for d in deliveries())
    received = {}
    for request in receiver.requests:
        body = request.json()
        received.setdefault(body["data"]["call_id"], []).append(body["event"])
    assert received == {call.uuid: ["call.ringing", "call.in_progress", "call.completed"] for call in calls}


def test_an_expired_lease_is_claimed_again_and_a_late_result_is_ignored(database, receiver):
    account = Account.create(name="acme")
    move(api_call(account, receiver), answered(T1))
    dead = fast(database, request_timeout=0.2, lease=0.4)
    (claimed,) = dead.claim()  # …and the process dies before posting
    (d,) = deliveries()
    assert (d.status, d.attempts) == ("delivering", 1)
    alive = fast(database, request_timeout=0.2, lease=0.4)
    assert alive.run_once() == 0  # the lease still holds
    gevent.sleep(0.45)
    assert alive.run_once() == 1
    (d,) = deliveries()
    assert (d.status, d.attempts) == ("delivered", 2)
    # The dead claimer's attempt, finishing late, is recorded but does not change the row.
    dead.deliver(claimed)
    (d,) = deliveries()
    assert (d.status, d.attempts) == ("delivered", 2)
    assert len(attempts(d)) == 2


def test_concurrent_dispatchers_claim_disjoint_deliveries(database, receiver):
    account = Account.create(name="acme")
    for _ in range(60):
        move(api_call(account, receiver), answered(T1))
    dispatchers = [fast(database, concurrency=7) for _ in range(4)]
    claimed = []

    def claim_all(dispatcher):
        with database.connection_context():
            while True:
                batch = dispatcher.claim()
                if not batch:
                    return
                claimed.extend(d.id for d in batch)
                gevent.sleep(0)

    gevent.joinall([gevent.spawn(claim_all, d) for d in dispatchers], raise_error=True)
    assert len(claimed) == len(set(claimed)) == 60


def test_run_forever_picks_up_new_work_and_stops(database, receiver):
    account = Account.create(name="acme")
    dispatcher = fast(database, poll_interval=0.05)
    dispatcher.start()
    try:
        move(api_call(account, receiver), answered(T1))
        receiver.wait_for(1, timeout=3)
    finally:
        dispatcher.stop(timeout=1)
    wait_until(settled)


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_list_show_and_replay(database, receiver, cli):
    account = Account.create(name="acme")
    call = api_call(account, receiver)
    move(call, answered(T1))
    receiver.default = Reply(410, b"")
    fast(database).run_once()

    listed = cli.json("webhooks", "list", "--account", "acme", "--status", "stopped")["deliveries"]
    assert [(d["event_type"], d["status"], d["attempts"], d["last_code"]) for d in listed] == \
        [("call.answered", "stopped", 1, 410)]
    event_id = listed[0]["event_id"]
    assert cli.json("webhooks", "list", "--call", call.uuid)["deliveries"][0]["event_id"] == event_id
    assert cli.json("webhooks", "list", "--status", "pending")["deliveries"] == []
    text = cli("webhooks", "list")
    assert event_id in text and "call.answered" in text

    shown = cli.json("webhooks", "show", event_id)
    assert shown["body"]["event_type"] == "call.answered"
    assert shown["headers"]["User-Agent"] == "VoiceAPI/1.0"
    assert [(a["number"], a["code"]) for a in shown["attempt_log"]] == [(1, 410)]
    assert "attempts:" in cli("webhooks", "show", str(listed[0]["id"]))

    receiver.default = Reply(200)
    replayed = cli.json("webhooks", "replay", event_id)
    assert (replayed["status"], replayed["attempts"], replayed["event_id"]) == ("pending", 0, event_id)
    assert re.search("only a delivered", cli("webhooks", "replay", event_id, status=2))
    fast(database).run_once()
    (d,) = deliveries()
    assert (d.status, d.attempts, d.event_id) == ("delivered", 1, event_id)
    assert [r.headers["x-webhook-id"] for r in receiver.requests] == [event_id, event_id]
    assert len(attempts(d)) == 2  # the history is kept
    assert "no webhook delivery" in cli("webhooks", "show", "evt_nope", status=2)

    move(api_call(account, receiver), answered(T1))  # pending: never purged
    assert cli.json("webhooks", "purge", "--older-than-days", "1") == {"deleted": 0}
    assert cli.json("webhooks", "purge", "--older-than-days", "0") == {"deleted": 1}
    assert [x.status for x in deliveries()] == ["pending"]
    assert WebhookAttempt.select().count() == 0


def test_cli_subscriptions(database, cli):
    Account.create(name="acme")
    out = cli.json("webhooks", "subscribe", "acme", "v1", "--url", "http://127.0.0.1:9/v1",
                   "--events", "call_completed,all_processing_completed")
    assert (out["url"], out["events"], out["active"]) == (
        "http://127.0.0.1:9/v1", ["call_completed", "all_processing_completed"], True)
    out = cli.json("webhooks", "subscribe", "acme", "v1", "--events", "all", "--disable")
    assert (out["url"], out["events"], out["active"]) == ("http://127.0.0.1:9/v1", None, False)
    listed = cli.json("webhooks", "subscriptions", "acme")["subscriptions"]
    assert [(s["surface"], s["active"]) for s in listed] == [("v1", False)]
    assert "unknown event type" in cli("webhooks", "subscribe", "acme", "v1", "--events", "call.answered", status=2)
    assert "private address" in cli("webhooks", "subscribe", "acme", "api", "--url", "http://10.1.1.1/", status=2)
