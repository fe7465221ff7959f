"""One bad input costs at most itself: deeply nested or mistyped JSON, non-numeric
lengths and failing writes, at every surface that reads a peer (the ESL reader and the
controller's worker, the bot protocol, the provider ingest)."""
from __future__ import annotations

import json
import time

import gevent
import pytest
from flask import Flask

from gateway import peer_json
from gateway.calls.controller import CallController
from gateway.calls.messages import OriginateFailed
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings, NodeConfig
from gateway.esl.protocol import Event, MessageReader, ProtocolError, encode_plain_event, frame_event
from gateway.media.twilio import BotStream, Mark, ProtocolIssue
from gateway.models import Account, Agent, Call, CallEvent, ProviderCall
from gateway.simulator.audio_stream import heard_pcm
from gateway.api.agents import ingest
from gateway.api.surface import init_app
from gateway.webhooks import signing
from gateway.webhooks.provider import register_provider_call
from media_support import MediaRig
from webhook_support import answered, make_call, move

CALLER = "+15550009999"
RINGS_FOREVER = "+15550100480"  # the simulator's far end rings and never answers

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEPER_ARRAY = "[" * 100_000 + "]" * 100_000


# -- the shared JSON reader ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [DEEP_ARRAY, DEEPER_ARRAY, '{"a":' * 5000 + "1" + "}" * 5000,
                                  '{"a":' + "[" * 65 + "]" * 65 + "}", b"[" * 3000 + b"]" * 3000])
def test_deep_json_is_a_value_error(text):
    with pytest.raises(ValueError, match="nested deeper than 64"):
        peer_json.loads(text)


def test_json_within_the_bound_and_brackets_in_strings_are_fine():
    at_the_bound = "[" * 64 + "]" * 64
    assert peer_json.loads(at_the_bound) == json.loads(at_the_bound)
    assert peer_json.loads(json.dumps({"text": "[" * 5000})) == {"text": "[" * 5000}
    assert peer_json.depth({"a": [1, {"b": []}]}) == 4 and peer_json.depth(5) == 0


# -- the bot protocol ------------------------------------------------------------------------------


def stream():
    return BotStream("MZ0123", "CA4567", "AC89")


@pytest.mark.parametrize("text", [DEEP_ARRAY, DEEPER_ARRAY, '{"event":"mark","mark":' + DEEP_ARRAY + "}",
                                  '{"event":' + "[" * 900 + "]" * 900 + "}",
                                  '{"event":"media","streamSid":' + "[" * 950 + "]" * 950 + "}"])
def test_the_twilio_parser_reports_deep_json_and_never_raises(text):
    (issue,) = stream().receive(text)
    assert isinstance(issue, ProtocolIssue) and issue.reason == "JSON nested deeper than 64 levels"
    assert issue.text == text[:120]


def test_a_huge_peer_value_is_shown_cut_short():
    (issue,) = stream().receive(json.dumps({"event": "x" * 100_000}))
    assert issue.reason.startswith("unknown event 'xxx") and len(issue.reason) <= 100
    (issue,) = stream().receive(json.dumps({"event": "mark", "streamSid": ["MZ"] * 20_000}))  # under the size limit
    assert issue.reason.startswith("wrong streamSid ['MZ'") and len(issue.reason) <= 100
    assert stream().receive(json.dumps({"event": "mark", "mark": {"name": "ok"}})) == [Mark("ok")]


@pytest.mark.usefixtures("loopback_allowed")
def test_a_bot_sending_deep_json_is_reported_and_its_stream_goes_on(database, sim, bot):
    account = Account.create(name="acme")
    rig = MediaRig(sim, settings=MediaSettings(playback="stream"))
    try:
        call = rig.controller.originate(account.id, "+15550100001", CALLER, socket_url=bot.url())
        rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        bot.stream_sid()
        bot.peers[-1].send_text(DEEP_ARRAY)
        bot.peers[-1].send_text('{"event":' + "[" * 900 + "]" * 900 + "}")
        bot.send_media(b"\xff" * 1600)
        channel = sim.channels[call.uuid]
        sim.wait_for(lambda: len(heard_pcm(channel)) >= 3200, timeout=5)  # the reader lived on
        deadline = time.monotonic() + 5
        while True:
            skipped = [e.detail["reason"] for e in CallEvent.select().where(CallEvent.call == call.uuid,
                                                                            CallEvent.kind == "media")
                       if e.detail.get("event") == "bot_message_skipped"]
            if len(skipped) >= 2 or time.monotonic() > deadline:
                break
            gevent.sleep(0.02)
        assert skipped == ["JSON nested deeper than 64 levels"] * 2
        assert Call.get_by_id(call.uuid).status == "in_progress"
        rig.controller.hangup(call.uuid)
        rig.controller.wait_status(call.uuid, FINAL, 5)
    finally:
        rig.stop()


# -- the ESL parser ----------------------------------------------------------------------------------


def plain(headers: bytes, body: bytes = b"") -> bytes:
    return frame_event(headers + b"\n" + body)


BAD_EVENTS = {
    "inner Content-Length not a number": plain(b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: abc\n",
                                               b"+OK\n"),
    "inner Content-Length with a sign": plain(b"Event-Name: BACKGROUND_JOB\nContent-Length: +3\n", b"+OK"),
    "JSON nested deeply": frame_event(DEEPER_ARRAY.encode(), "json"),
    "JSON value nested deeply": frame_event(b'{"Event-Name":' + b"[" * 900 + b"]" * 900 + b"}", "json"),
    "JSON array of numbers": frame_event(b'{"Event-Name":"CHANNEL_ANSWER","Unique-ID":["a",1]}', "json"),
    "JSON number": frame_event(b'{"Event-Name":"CHANNEL_ANSWER","Event-Sequence":5}', "json"),
    "JSON body not a string": frame_event(b'{"Event-Name":"CUSTOM","_body":{"a":1}}', "json"),
    "JSON not an object": frame_event(b'["Event-Name"]', "json"),
    "JSON not UTF-8": frame_event(b'{"Event-Name":"\xff"}', "json"),
}
GOOD = frame_event(encode_plain_event([("Event-Name", "HEARTBEAT"), ("Event-Info", "System Ready")]))


@pytest.mark.parametrize("name", BAD_EVENTS)
def test_a_malformed_event_raises_protocol_error_only_and_the_stream_goes_on(name):
    messages = MessageReader().feed(BAD_EVENTS[name] + GOOD)
    assert len(messages) == 2
    bad, good = (Event.from_message(m) for m in messages)
    with pytest.raises(ProtocolError):
        bad.headers
    with pytest.raises(ProtocolError):
        bad.body
    assert good.name == "HEARTBEAT" and good.headers["Event-Info"] == "System Ready"


@pytest.mark.parametrize("length", [b"abc", b"+5", b"1_0", b"\xd9\xa3", b"-1", b" ", b"99999999999999999999"])
def test_an_outer_content_length_that_is_not_decimal_digits_is_a_protocol_error(length):
    with pytest.raises(ProtocolError):
        MessageReader().feed(b"Content-Type: api/response\nContent-Length: " + length + b"\n\n+OK")


def test_json_array_headers_still_join():
    event = Event(b'{"Event-Name":"CHANNEL_DATA","variable_list":["a","b"],"_body":"x"}', is_json=True)
    assert event.headers == {"Event-Name": "CHANNEL_DATA", "variable_list": "a|b"} and event.body == "x"


def node_config(sim):
    return NodeConfig(f"127.0.0.1:{sim.port}", "127.0.0.1", sim.port, "ClueCon")


@pytest.fixture
def controller(database, sim):
    controller = CallController([node_config(sim)], command_timeout=2.0)
    controller.start()
    assert controller.wait_connected(5)
    yield controller
    controller.stop()


def ringing_call(controller, account):
    call = controller.originate(account.id, RINGS_FOREVER, CALLER, timeout=30)
    controller.wait_status(call.uuid, [Status.RINGING], 5)
    return call


def test_malformed_events_on_the_wire_cost_only_themselves(controller, sim):
    account = Account.create(name="acme")
    call = ringing_call(controller, account)
    (node,) = controller.nodes.values()
    generation = node.generation
    answer = frame_event(encode_plain_event([
        ("Event-Name", "CHANNEL_ANSWER"), ("Unique-ID", call.uuid),
        ("Event-Date-Timestamp", str(int(time.time() * 1_000_000)))]))
    (gateway_link,) = [listener for listener in sim.listeners if listener.authed]
    # One write: the reader frames all four from one recv, the worker gets them in one batch.
    gateway_link.write(BAD_EVENTS["JSON nested deeply"] + BAD_EVENTS["JSON array of numbers"]
                       + BAD_EVENTS["inner Content-Length not a number"] + answer)
    assert controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    assert Call.get_by_id(call.uuid).status == "in_progress"
    assert node.generation == generation and node.wait_connected(0)  # the link stayed up
    controller.hangup(call.uuid)
    assert controller.wait_status(call.uuid, FINAL, 5) in FINAL


def test_a_write_that_fails_for_one_call_costs_only_that_call(controller, sim):
    account = Account.create(name="acme")
    calls = [ringing_call(controller, account) for _ in range(3)]
    poisoned = calls[1].uuid

    def hook(changes):
        if any(change[0] == poisoned for change in changes):
            raise ValueError("a bug that bites one call")

    controller.transaction_hooks.append(hook)
    for call in calls:  # one batch: the worker does not run until this greenlet waits
        controller.worker.submit(OriginateFailed(call.uuid, "-ERR USER_BUSY\n"))
    controller.flush(timeout=3)
    assert [Call.get_by_id(call.uuid).status for call in calls] == ["failed", "ringing", "failed"]
    controller.transaction_hooks.remove(hook)


# -- the provider ingest -----------------------------------------------------------------------------


@pytest.fixture
def client(database):
    app = Flask("test")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    init_app(app)
    app.register_blueprint(ingest.blp)
    return app.test_client()


@pytest.fixture
def account(database):
    account = Account.create(name="acme")
    agent = Agent.create(account=account, key="akylai", name="Akylai", driver="elevenlabs", driver_ref="ag_1")
    call = make_call(account, surface="v1", agent=agent, to_number="+996700000000")
    move(call, answered())
    register_provider_call(call.uuid, "prov-1", "elevenlabs")
    return account


def post(client, raw: bytes, headers=None):
    return client.post("/v1/webhooks/call-completed", data=raw, headers=headers or {},
                       content_type="application/json")


@pytest.mark.parametrize("raw", [DEEP_ARRAY.encode(), DEEPER_ARRAY.encode(), b'{"a":' * 3000 + b"1" + b"}" * 3000,
                                 b'{"provider_call_id":"prov-1","analysis":' + b"[" * 900 + b"]" * 900 + b"}"])
def test_ingest_answers_deep_json_with_a_400(client, account, raw):
    response = post(client, raw)
    assert (response.status_code, response.get_json()) == (400, {"error": "The body is nested too deeply"})


@pytest.mark.parametrize("text, fault", [("prov\\u00001", "a NUL character"), ("\\ud800", "an unpaired surrogate")])
@pytest.mark.parametrize("field", ["provider_call_id", "transcript", "recording_url", "analysis key"])
def test_ingest_refuses_text_that_cannot_be_stored(client, account, text, fault, field):
    if field == "analysis key":
        raw = '{"provider_call_id":"prov-1","status":"completed","analysis":{"%s":1}}' % text
    elif field == "provider_call_id":
        raw = '{"provider_call_id":"%s","status":"completed"}' % text
    else:
        raw = '{"provider_call_id":"prov-1","status":"completed","%s":"%s"}' % (field, text)
    raw = raw.encode()
    response = post(client, raw, {"X-Signature": signing.sign(account.webhook_secret, raw)})
    assert (response.status_code, response.get_json()) == (400, {"error": f"The body contains {fault}"})
    assert ProviderCall.get(ProviderCall.provider_call_id == "prov-1").completed_at is None


def test_ingest_still_takes_a_long_unknown_id_and_real_unicode(client, account):
    long = post(client, json.dumps({"provider_call_id": "p" * 5000, "status": "completed"}).encode())
    # Unsigned: refused as any unsigned report is, saying nothing of whether the id exists.
    assert (long.status_code, long.get_json()) == (401, {"error": "Invalid signature"})
    raw = json.dumps({"provider_call_id": "prov-1", "status": "completed", "transcript": "agent: Привет 👋"}).encode()
    response = post(client, raw, {"X-Signature": signing.sign(account.webhook_secret, raw)})
    assert response.status_code == 200
    assert Call.get_by_id(response.get_json()["call_id"]).transcript == [{"bot": "Привет 👋"}]
