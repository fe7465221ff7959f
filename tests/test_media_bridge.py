"""The media bridge end to end, over real sockets on 127.0.0.1: the simulator (ESL and
mod_audio_stream), the call controller, the bridge, MediaSessions, and local bots."""

from __future__ import annotations

import base64
import json
import re
import time
from types import SimpleNamespace

import gevent
import gevent.event
import pytest

from gateway.calls.controller import CallError
from gateway.calls.media_session import transcript
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings
from gateway.media import codec
from gateway.media.twilio import account_sid, call_sid
from gateway.models import Account, Agent, Call, CallEvent
from gateway.simulator.audio_stream import heard_pcm, module
from media_support import MediaRig, TwilioBot, WsServer
from provider_standins import ElevenLabsStandIn, VapiStandIn

CALLER = "+15550009999"
CALLEE = "+15550100001"

# The bots listen on 127.0.0.1, which customer bot URLs may not reach unless allow-listed.
pytestmark = pytest.mark.usefixtures("loopback_allowed")


@pytest.fixture
def rig(database, sim):
    rigs = []

    def make(**kwargs):
        kwargs.setdefault("settings", MediaSettings(playback="stream"))
        made = MediaRig(sim, **kwargs)
        rigs.append(made)
        return made
    yield make
    for made in rigs:
        made.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def media_log(call_uuid):
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "media")
            .order_by(CallEvent.seq)]


def wait_log(rig, call_uuid, event, timeout=5.0):
    return _poll(lambda: [d for d in media_log(call_uuid) if d.get("event") == event], timeout, event)


def _poll(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        gevent.sleep(0.02)  # the log is written by the controller's worker: poll the table
    raise TimeoutError(f"no {what} in the call log")


def answered_call(r, account, sim, bot_url, **kwargs):
    # the node's mod_audio_stream build as the playback form expects it
    module(sim).build = "bidirectional" if r.settings.playback == "stream" else "community"
    call = r.controller.originate(account.id, CALLEE, CALLER, socket_url=bot_url, **kwargs)
    r.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    return call


def end(r, call):
    try:
        r.controller.hangup(call.uuid)
    except CallError:
        pass
    r.controller.wait_status(call.uuid, FINAL, 5)


def ulaw_tone(seconds, freq=1000):
    return codec.l16_to_ulaw(codec.tone(seconds, freq))


def test_caller_audio_reaches_the_bot_as_twilio_media(rig, sim, bot, account):
    r = rig(settings=MediaSettings(playback="stream"))
    call = answered_call(r, account, sim, bot.url("/media"), custom_args={"FirstName": "Jane", "order": 42})
    tone = codec.tone(2.0, 440)
    sim.set_caller_audio(call.uuid, tone)
    start = bot.wait_event("start")[0]
    assert [m["event"] for m in bot.events()[:2]] == ["connected", "start"]
    assert "streamSid" not in bot.events()[0]
    # Twilio-shaped SIDs, stable per call and per account; the gateway's own ids in the parameters
    assert re.fullmatch("CA[0-9a-f]{32}", start["start"]["callSid"]) and start["start"]["callSid"] == call_sid(call.uuid)
    assert re.fullmatch("AC[0-9a-f]{32}", start["start"]["accountSid"])
    assert start["start"]["accountSid"] == account_sid(account.id)
    params = start["start"]["customParameters"]
    assert params["call_uuid"] == call.uuid and params["account_id"] == str(account.id)
    assert params["FirstName"] == "Jane" and params["order"] == "42"
    assert params["from_number"] == CALLER and params["to_number"] == CALLEE
    assert start["start"]["tracks"] == ["inbound"]
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = bot.wait_event("media", count=60, timeout=5)
    assert [m["sequenceNumber"] for m in media[:3]] == ["2", "3", "4"]
    assert [m["media"]["chunk"] for m in media[:3]] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert all(m["media"]["track"] == "inbound" and m["streamSid"] == start["streamSid"] for m in media)
    # the tone arrives intact, frame-aligned, as G.711 mu-law
    received = bot.caller_audio()
    expected = codec.l16_to_ulaw(tone)
    first = next(i for i in range(0, len(received), 160) if received[i:i + 160] != b"\xff" * 160)
    got = received[first:first + 4000]
    assert got == expected[:len(got)] and len(got) >= 1600
    # 20 ms apart, paced in real time (the simulator sends like mod_audio_stream)
    times = bot.media_times()[-40:]
    spacing = (times[-1] - times[0]) / (len(times) - 1)
    assert 0.015 < spacing < 0.025
    # the bridge got mod_audio_stream's metadata frame first
    stream = r.bridge.streams[call.uuid]
    assert json.loads(stream.fs_metadata)["call_uuid"] == call.uuid
    end(r, call)
    bot.wait_event("stop")
    assert bot.events()[-1]["event"] == "stop"
    assert any(d["event"] == "bot_connected" for d in media_log(call.uuid))


def test_dtmf_reaches_the_bot(rig, sim, bot, account):
    r = rig()
    call = answered_call(r, account, sim, bot.url())
    bot.wait_event("start")
    r.bridge.streams[call.uuid].fs_connected.wait(5)
    sim.press(call.uuid, "1#")
    dtmf = bot.wait_event("dtmf", count=2)
    assert [d["dtmf"] for d in dtmf] == [{"track": "inbound_track", "digit": "1"},
                                         {"track": "inbound_track", "digit": "#"}]
    end(r, call)


def test_redirect_swaps_the_bot_without_hanging_up(rig, sim, bot, account):
    second = TwilioBot()
    try:
        r = rig()
        call = answered_call(r, account, sim, bot.url("/first"))
        bot.wait_event("media", count=10)
        result = r.media.redirect(call.uuid, second.url("/second"))
        assert result["connector"] == "websocket"
        bot.wait_event("stop")
        second.wait_event("start")
        assert [m["event"] for m in second.events()[:2]] == ["connected", "start"]
        second.wait_event("media", count=10)
        gap = second.media_times()[0] - bot.media_times()[-1]
        assert gap < 0.1  # caller audio keeps flowing
        assert Call.get_by_id(call.uuid).status == "in_progress"
        # the new bot is heard, the old one no more
        second.send_media(ulaw_tone(0.1))
        ch = sim.channels[call.uuid]
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 1600, timeout=5)
        logged = wait_log(r, call.uuid, "redirect")
        assert logged[0]["caller_audio_gap_ms"] is not None and logged[0]["caller_audio_gap_ms"] < 100
        with pytest.raises(CallError) as bad:
            r.media.redirect(call.uuid, "bot")
        assert bad.value.code == 400
        end(r, call)
    finally:
        second.stop()


def test_unreachable_bot_falls_back_then_hangs_up_with_a_reason(rig, sim, bot, account):
    dead = WsServer()
    dead_url = dead.url("/gone")
    dead.stop()
    r = rig()
    account.default_socket_url = bot.url("/fallback")
    account.save()
    call = answered_call(r, account, sim, dead_url)
    bot.wait_event("start")  # the fallback took the call
    log = wait_log(r, call.uuid, "bot_connected")
    failed = [d for d in media_log(call.uuid) if d["event"] == "bot_connect_failed"]
    assert failed and failed[0]["error"] == "bot unreachable: connection failed"  # not "refused"
    assert [d for d in media_log(call.uuid) if d["event"] == "fallback"]
    assert log[0]["target"].endswith("/fallback")
    end(r, call)
    # no fallback left: the call is hung up, the reason in its log
    account.default_socket_url = dead_url
    account.save()
    call = answered_call(r, account, sim, dead_url)
    r.controller.wait_status(call.uuid, FINAL, 10)
    row = Call.get_by_id(call.uuid)
    assert row.hangup_cause == "SERVICE_UNAVAILABLE"
    hangup = wait_log(r, call.uuid, "hangup")
    assert hangup[0]["reason"] == "bot_unreachable"


def test_slow_bot_is_a_connect_timeout(rig, sim, account):
    slow = WsServer(accept_delay=2.0)
    try:
        r = rig(settings=MediaSettings(bot_connect_timeout=0.3))
        call = answered_call(r, account, sim, slow.url())
        r.controller.wait_status(call.uuid, FINAL, 10)
        failed = wait_log(r, call.uuid, "bot_connect_failed")
        # A timeout reads like a refusal: the log does not tell which ports answer.
        assert failed[0]["error"] == "bot unreachable: connection failed"
        assert wait_log(r, call.uuid, "hangup")[0]["reason"] == "bot_unreachable"
    finally:
        slow.stop()


def test_bot_breaking_mid_call_falls_back_and_a_clean_close_ends_the_call(rig, sim, bot, account):
    backup = TwilioBot()
    try:
        r = rig()
        account.default_socket_url = backup.url("/backup")
        account.save()
        call = answered_call(r, account, sim, bot.url())
        bot.wait_event("media", count=5)
        bot.peers[-1].abort()  # no close frame: a crash
        backup.wait_event("start", timeout=5)
        backup.wait_event("media", count=5)
        closed = wait_log(r, call.uuid, "bot_closed")
        assert closed[0]["clean"] is False
        # the backup says goodbye properly: its last words play, then the call ends
        backup.send_media(ulaw_tone(0.3))
        backup.peers[-1].close(1000, "bye")
        r.controller.wait_status(call.uuid, FINAL, 5)
        assert Call.get_by_id(call.uuid).hangup_cause == "NORMAL_CLEARING"
        assert wait_log(r, call.uuid, "hangup")[0]["reason"] == "bot_ended"
        ch = sim.history[call.uuid]
        assert len(heard_pcm(ch)) >= 4000  # the 0.3 s were played before the hangup
    finally:
        backup.stop()


def test_a_bot_that_stops_reading_is_found_out_and_the_call_ends(rig, sim, bot, account, monkeypatch):
    """Its socket stays open and the kernel takes minutes of audio, so only its silence to
    pings tells: the link pings, and a ping left unanswered ends it (10 s in production:
    PING_INTERVAL + READ_STALL_LIMIT; shortened here), then the failure policy applies."""
    from gateway.media.connectors import base
    monkeypatch.setattr(base, "PING_INTERVAL", 0.2)
    monkeypatch.setattr(base, "READ_STALL_LIMIT", 0.8)
    stuck = gevent.event.Event()
    bot.on_message = lambda peer, kind, data: stuck.wait() if '"event":"media"' in data else None
    try:
        r = rig()
        call = answered_call(r, account, sim, bot.url())
        closed = wait_log(r, call.uuid, "bot_closed", timeout=10)
        assert closed[0]["clean"] is False and "stopped reading" in closed[0]["reason"]
        r.controller.wait_status(call.uuid, FINAL, 5)
        assert wait_log(r, call.uuid, "hangup")[0]["reason"] == "bot_disconnected"
    finally:
        stuck.set()


def test_malformed_bot_messages_are_logged_and_skipped(rig, sim, bot, account):
    r = rig()
    call = answered_call(r, account, sim, bot.url())
    sid = bot.stream_sid()
    peer = bot.peers[-1]
    for junk in ("not json", "[1,2]", json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "@@@"}}),
                 json.dumps({"event": "media", "streamSid": "MZother", "media": {"payload": "AAAA"}}),
                 json.dumps({"event": "mark", "streamSid": sid}), json.dumps({"event": "dance"})):
        peer.send_text(junk)
    peer.send_bytes(b"\x00\x01binary")
    bot.send_media(ulaw_tone(0.2))
    ch = sim.channels[call.uuid]
    sim.wait_for(lambda: len(heard_pcm(ch)) >= 3200, timeout=5)
    skipped = _poll(lambda: [d for d in media_log(call.uuid) if d["event"] == "bot_message_skipped"]
                    if len([d for d in media_log(call.uuid) if d["event"] == "bot_message_skipped"]) >= 7 else None,
                    5, "skipped messages")
    reasons = [d["reason"] for d in skipped]
    assert "not JSON" in reasons and "wrong streamSid 'MZother'" in reasons
    assert Call.get_by_id(call.uuid).status == "in_progress"
    end(r, call)


def test_routing_webhook_decides_the_bot(rig, sim, bot, account):
    asked = []

    def request_route(**kwargs):
        asked.append(kwargs)
        return SimpleNamespace(action="connect", socket_url=bot.url("/routed"), timeout=None, reason=None, detail="")
    r = rig(request_route=request_route)
    call = r.controller.originate(account.id, CALLEE, CALLER, webhook_url="https://customer.example/route")
    r.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    bot.wait_event("start")
    assert asked[0]["url"] == "https://customer.example/route" and asked[0]["call_uuid"] == call.uuid
    assert asked[0]["secret"] == account.webhook_secret and asked[0]["destination_number"] == CALLEE
    end(r, call)


def test_routing_webhook_hangup(rig, sim, account):
    r = rig(request_route=lambda **kw: SimpleNamespace(action="hangup", reason="business_hours_closed",
                                                        socket_url=None, timeout=None, detail=""))
    call = r.controller.originate(account.id, CALLEE, CALLER, webhook_url="https://customer.example/route")
    r.controller.wait_status(call.uuid, FINAL, 5)
    assert Call.get_by_id(call.uuid).hangup_cause == "NORMAL_CLEARING"
    assert wait_log(r, call.uuid, "hangup")[0]["reason"] == "business_hours_closed"


def test_elevenlabs_connector(rig, sim, account):
    eleven = ElevenLabsStandIn()
    try:
        account.elevenlabs_api_key = "xi-secret"
        account.save()
        r = rig(settings=MediaSettings(playback="stream", elevenlabs_url=eleven.url))
        call = answered_call(r, account, sim, "elevenlabs&agent_123", custom_args={"name": "Jane"})
        peer = eleven.peer()
        # a private agent: a signed URL, and the key not on the socket
        assert peer.path.startswith("/v1/convai/conversation?agent_id=agent_123&conversation_signature=")
        assert "xi-api-key" not in [k.decode().lower() for k, v in peer.headers]
        first = eleven.ws.wait_for(lambda: peer.json() and peer.json()[0], 5, "client data")
        assert first["type"] == "conversation_initiation_client_data"
        assert first["dynamic_variables"]["name"] == "Jane"
        sim.set_caller_audio(call.uuid, codec.tone(1.0, 440))
        eleven.ws.wait_for(lambda: len(eleven.user_audio()) >= 160 * 20, 5, "user audio")
        # ping -> pong with the same event id
        eleven.send({"type": "ping", "ping_event": {"event_id": 7, "ping_ms": 20}})
        eleven.ws.wait_for(lambda: {"type": "pong", "event_id": 7} in peer.json(), 5, "pong")
        # agent audio is played; an interruption clears it
        eleven.send({"type": "audio", "audio_event": {"audio_base_64": base64.b64encode(ulaw_tone(0.2)).decode(),
                                                      "event_id": 1}})
        ch = sim.channels[call.uuid]
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 3200, timeout=5)
        eleven.send({"type": "audio", "audio_event": {"audio_base_64": base64.b64encode(ulaw_tone(3.0)).decode(),
                                                      "event_id": 2}})
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 6400, timeout=5)
        eleven.send({"type": "interruption", "interruption_event": {"event_id": 2}})
        eleven.send({"type": "audio", "audio_event": {"audio_base_64": base64.b64encode(ulaw_tone(1.0)).decode(),
                                                      "event_id": 2}})  # late audio of the interrupted turn
        _poll(lambda: r.bridge.streams[call.uuid].counters["clears"] == 1, 5, "clear")
        gevent.sleep(0.2)
        assert len(heard_pcm(ch)) < 16000 * 1.0  # neither the 3 s nor the late 1 s were played out
        # transcripts
        eleven.send({"type": "user_transcript", "user_transcription_event": {"user_transcript": "Hello?"}})
        eleven.send({"type": "agent_response", "agent_response_event": {"agent_response": "Hi Jane!"}})
        eleven.send({"type": "vad_score", "vad_score_event": {"vad_score": 0.9}})
        _poll(lambda: len(transcript(call.uuid)) == 2, 5, "transcript")
        assert transcript(call.uuid) == [{"user": "Hello?"}, {"bot": "Hi Jane!"}]
        # end_call: ElevenLabs closes with 1000, the call ends normally
        peer.close(1000, "end_call")
        r.controller.wait_status(call.uuid, FINAL, 5)
        assert wait_log(r, call.uuid, "hangup")[0]["reason"] == "bot_ended"
        if "transcript" in Call._meta.fields:  # the column, where the models have it
            _poll(lambda: Call.get_by_id(call.uuid).transcript, 5, "Call.transcript")
            assert Call.get_by_id(call.uuid).transcript == [{"user": "Hello?"}, {"bot": "Hi Jane!"}]
    finally:
        eleven.stop()


def test_elevenlabs_agent_from_the_agent_record_and_pcm_16000(rig, sim, account):
    # a public agent (the account has no key): reached directly by its id
    eleven = ElevenLabsStandIn(agents={"agent_rec": False}, output_format="pcm_16000", input_format="pcm_16000")
    try:
        Agent.create(account=account, key="akylai", name="Akylai", driver="elevenlabs", driver_ref="agent_rec")
        r = rig(settings=MediaSettings(playback="stream", elevenlabs_url=eleven.url))
        call = answered_call(r, account, sim, "elevenlabs")
        peer = eleven.peer()
        assert peer.path == "/v1/convai/conversation?agent_id=agent_rec"
        eleven.ws.wait_for(lambda: len(eleven.user_audio()) >= 640 * 10, 5, "user audio")
        eleven.send({"type": "audio", "audio_event": {
            "audio_base_64": base64.b64encode(codec.tone(0.2, 500, rate=16000)).decode(), "event_id": 1}})
        ch = sim.channels[call.uuid]
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 3000, timeout=5)
        assert 1500 < codec.rms(heard_pcm(ch)[400:3000]) < 2600  # a tone of ~2121 rms, resampled
        end(r, call)
        assert eleven.problems == []
    finally:
        eleven.stop()


def test_vapi_connector(rig, sim, account):
    vapi = VapiStandIn()
    try:
        account.vapi_api_key = "vapi-secret"
        account.save()
        r = rig(settings=MediaSettings(playback="stream", vapi_url=vapi.url))
        call = answered_call(r, account, sim, "vapi&asst_1", custom_args={"name": "Jane"})
        peer = vapi.peer()
        body, headers = vapi.requests[0]
        assert body == {"assistantId": "asst_1",
                        "transport": {"provider": "vapi.websocket",
                                      "audioFormat": {"format": "mulaw", "container": "raw", "sampleRate": 8000}},
                        "assistantOverrides": {"metadata": {"call_uuid": call.uuid, "from_number": CALLER,
                                                            "to_number": CALLEE},
                                               "variableValues": {"name": "Jane"}}}
        assert peer.path == "/call-1/transport"
        sim.set_caller_audio(call.uuid, codec.tone(1.0, 440))
        vapi.ws.wait_for(lambda: sum(1 for _, k, d in peer.messages if k == "binary" and len(d) == 160) >= 10, 5,
                         "binary audio")
        peer.send_bytes(ulaw_tone(0.2))
        ch = sim.channels[call.uuid]
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 3200, timeout=5)
        peer.send_text(json.dumps({"type": "transcript", "role": "user", "transcriptType": "final",
                                   "transcript": "I need help"}))
        peer.send_text(json.dumps({"type": "transcript", "role": "assistant", "transcriptType": "partial",
                                   "transcript": "Sure"}))
        peer.send_text(json.dumps({"type": "transcript", "role": "assistant", "transcriptType": "final",
                                   "transcript": "Sure, how can I help?"}))
        peer.send_bytes(ulaw_tone(2.0))
        sim.wait_for(lambda: len(heard_pcm(ch)) >= 6400, timeout=5)
        peer.send_text(json.dumps({"type": "user-interrupted"}))
        _poll(lambda: r.bridge.streams[call.uuid].counters["clears"] == 1, 5, "clear")
        _poll(lambda: len(transcript(call.uuid)) == 2, 5, "transcript")
        assert transcript(call.uuid) == [{"user": "I need help"}, {"bot": "Sure, how can I help?"}]
        vapi.artifacts["call-1"] = {"messages": [{"role": "user", "message": "I need help", "time": 1},
                                                 {"role": "bot", "message": "Sure, how can I help?", "time": 2}]}
        end(r, call)
        vapi.ws.wait_for(lambda: {"type": "hangup"} in peer.json(), 5, "hangup message")
        assert vapi.problems == []
    finally:
        vapi.stop()


def test_vapi_bad_key_is_unreachable(rig, sim, account):
    vapi = VapiStandIn()
    try:
        account.vapi_api_key = "wrong"
        account.save()
        r = rig(settings=MediaSettings(vapi_url=vapi.url))
        call = answered_call(r, account, sim, "vapi&asst_1")
        r.controller.wait_status(call.uuid, FINAL, 10)
        failed = wait_log(r, call.uuid, "bot_connect_failed")
        assert failed[0]["error"] == "Vapi API answered HTTP 401"  # its body ("Invalid Key") is not repeated
    finally:
        vapi.stop()
