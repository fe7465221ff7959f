"""``call.answered`` (call-control contract: "sent when the media session is established")
comes from the media session's ``session_established`` log entry, written with it in one
transaction by the controller's write path (``store.apply`` + ``outbox_log_hook``); an
answer alone sends nothing.  End to end over the simulator: tests/test_inbound.py."""
from datetime import datetime, timezone

import pytest

from gateway.calls import store
from gateway.models import Account, CallEvent, WebhookDelivery
from gateway.webhooks import signing
from gateway.webhooks.outbox import outbox_hook, outbox_log_hook
from webhook_support import answered, completed, established_entry, make_call, move

T1 = datetime(2026, 2, 9, 14, 30, 5, tzinfo=timezone.utc)
T2 = datetime(2026, 2, 9, 14, 30, 7, tzinfo=timezone.utc)
T3 = datetime(2026, 2, 9, 14, 30, 50, tzinfo=timezone.utc)
HOOK = "https://hooks.example.com/status"


def types(call):
    return [d.event_type for d in WebhookDelivery.select().where(WebhookDelivery.call_uuid == call.uuid)
            .order_by(WebhookDelivery.id)]


@pytest.fixture
def account(database):
    return Account.create(name="acme", default_webhook_url=HOOK)


def test_an_answer_without_a_media_session_sends_no_call_answered(account):
    call = make_call(account, surface="api")
    move(call, answered(T1), media=False)
    assert types(call) == []
    move(call, completed(T3))
    assert types(call) == ["call.completed"]


def test_call_answered_is_sent_when_the_media_session_is_established(account):
    call = make_call(account, surface="api")
    store.apply([(call.uuid, "queued", 1, answered(T1))], [], [outbox_hook], [outbox_log_hook])
    assert types(call) == []
    store.apply([], [established_entry(call, T2, 2)], [outbox_hook], [outbox_log_hook])
    (delivery,) = WebhookDelivery.select()
    assert (delivery.event_type, delivery.url) == ("call.answered", HOOK)
    assert delivery.body == signing.canonical_json(
        {"event_type": "call.answered", "call_uuid": call.uuid, "timestamp": "2026-02-09T14:30:07Z",
         "call_status": "in-progress"}).decode()


def test_the_webhook_commits_with_the_log_entry_or_not_at_all(account):
    call = make_call(account, surface="api")
    store.apply([(call.uuid, "queued", 1, answered(T1))], [], [outbox_hook], [outbox_log_hook])

    def broken(entries):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.apply([], [established_entry(call, T2, 2)], [outbox_hook], [outbox_log_hook, broken])
    assert WebhookDelivery.select().count() == 0
    assert CallEvent.select().where(CallEvent.kind == "media").count() == 0


def test_an_entry_logged_after_the_call_ended_announces_nothing(account):
    call = make_call(account, surface="api")
    move(call, answered(T1), completed(T3), media=False)
    late = {**established_entry(call, T3, 3), "from_status": "completed", "to_status": "completed"}
    store.apply([], [late], [outbox_hook], [outbox_log_hook])
    assert types(call) == ["call.completed"]


def test_in_one_batch_call_answered_comes_before_call_completed(account):
    call = make_call(account, surface="api")
    store.apply([(call.uuid, "queued", 1, answered(T1)), (call.uuid, "in_progress", 3, completed(T3))],
                [established_entry(call, T2, 2)], [outbox_hook], [outbox_log_hook])
    assert types(call) == ["call.answered", "call.completed"]


def test_a_second_media_session_does_not_send_it_again(account):
    call = make_call(account, surface="api")
    move(call, answered(T1))
    store.apply([], [established_entry(call, T2, 3)], [outbox_hook], [outbox_log_hook])
    assert types(call) == ["call.answered"]


@pytest.mark.parametrize("surface", ["v1", "public", "voice"])
def test_other_surfaces_do_not_get_call_answered(account, surface):
    call = make_call(account, surface=surface)
    store.apply([], [established_entry(call, T2, 1)], [], [outbox_log_hook])
    assert "call.answered" not in types(call)


def test_a_body_that_cannot_be_built_does_not_stall_the_batch(account, monkeypatch, caplog):
    good, bad = make_call(account, surface="api"), make_call(account, surface="api")
    from gateway.webhooks import events

    real = events.control_payload

    def fragile(event_type, call, state):
        if call.uuid == bad.uuid:
            raise KeyError("bug")
        return real(event_type, call, state)

    monkeypatch.setattr(events, "control_payload", fragile)
    store.apply([], [established_entry(good, T2, 1), established_entry(bad, T2, 1)], [], [outbox_log_hook])
    assert [d.call_uuid for d in WebhookDelivery.select()] == [good.uuid]
    assert CallEvent.select().count() == 2
    assert f"call.answered for call {bad.uuid} could not be built" in caplog.text
