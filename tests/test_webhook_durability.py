"""Durability: a dispatcher process killed (SIGKILL) in the middle of deliveries, then
restarted. Every event is delivered at least once, none is lost, a duplicate carries the
same ``evt_…`` id and body, and each call's events arrive in order."""
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone

import gevent
import pytest
from peewee import OperationalError

from gateway.models import Account, WebhookDelivery
from gateway.webhooks.subscriptions import set_subscription
from webhook_support import Reply, answered, completed, make_call, move, receiver, ringing, wait_until  # noqa: F401,E501

T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 9, 14, 30, 50, tzinfo=timezone.utc)


def spawn_dispatcher(database_url, log_path):
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_WEBHOOK_ALLOWLIST": "127.0.0.1"}
    env.pop("GATEWAY_CONFIG", None)
    command = [sys.executable, "-m", "gateway.webhooks", "-v", "--concurrency", "4", "--timeout", "5",
               "--lease", "5.5", "--backoff-base", "0.05", "--backoff-cap", "0.2", "--poll", "0.05"]
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def statuses():
    """The deliveries' statuses; a read that meets the other process's lock is retried
    (SQLite: a reader may see SQLITE_BUSY while a crashed writer's journal is recovered)."""
    for _ in range(50):
        try:
            return [d.status for d in WebhookDelivery.select()]
        except OperationalError:
            gevent.sleep(0.1)
    return [d.status for d in WebhookDelivery.select()]


@pytest.mark.usefixtures("loopback_allowed")
def test_sigkill_mid_delivery_loses_nothing(database, database_url, receiver, tmp_path):
    account = Account.create(name="acme")
    set_subscription(account, "public", url=receiver.url("/public"))
    public_calls = [make_call(account, surface="public") for _ in range(5)]
    api_calls = [make_call(account, surface="api", webhook_url=receiver.url("/api")) for _ in range(3)]
    for call in public_calls:
        move(call, ringing())
        move(call, answered(T1))
        move(call, completed(T2))
    for call in api_calls:
        move(call, answered(T1))
        move(call, completed(T2))
    expected = {d.event_id: d for d in WebhookDelivery.select()}
    assert len(expected) == 5 * 3 + 3 * 2

    # The first three requests hang (longer than the process will live).
    receiver.script(Reply(200, delay=30), Reply(200, delay=30), Reply(200, delay=30))
    log = tmp_path / "dispatcher.log"
    first = spawn_dispatcher(database_url, log)
    try:
        receiver.wait_for(3, timeout=20)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=5) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    arrived_before_kill = {r.headers["x-webhook-id"] for r in receiver.requests}
    # Deliveries the kill interrupted while the receiver was holding their request.
    interrupted = {d.event_id for d in WebhookDelivery.select().where(WebhookDelivery.status == "delivering")
                   if d.event_id in arrived_before_kill}
    assert len(interrupted) >= 3, (statuses(), log.read_text())

    second = spawn_dispatcher(database_url, log)
    try:
        try:
            wait_until(lambda: all(s == "delivered" for s in statuses()), timeout=30, what="every delivery")
        except AssertionError:
            raise AssertionError(f"not all delivered: {statuses()}\n{log.read_text()}") from None
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0, log.read_text()
    finally:
        if second.poll() is None:
            second.kill()

    by_id = {}
    for request in receiver.requests:
        by_id.setdefault(request.headers["x-webhook-id"], []).append(request)
    assert set(by_id) == set(expected)  # none lost, nothing unknown
    for event_id, requests in by_id.items():
        assert {r.body for r in requests} == {expected[event_id].body.encode()}  # a duplicate is identical
        if requests[0].path == "/public":
            assert requests[0].json()["id"] == event_id
    duplicated = {event_id for event_id, requests in by_id.items() if len(requests) > 1}
    assert interrupted <= duplicated  # sent again after the restart

    # Per call, the first arrival of each event follows the order the events happened.
    for call in public_calls + api_calls:
        wanted = [d.event_id for d in WebhookDelivery.select().where(WebhookDelivery.call_uuid == call.uuid)
                  .order_by(WebhookDelivery.id)]
        arrivals = []
        for request in receiver.requests:
            event_id = request.headers["x-webhook-id"]
            if event_id in wanted and event_id not in arrivals:
                arrivals.append(event_id)
        assert arrivals == wanted
