"""The native connectors (ElevenLabs, Vapi) against local stand-ins of the providers
(``provider_standins``: built from their documents and their SDKs' types), over real
sockets on 127.0.0.1: a link on its own, and through a call (simulator, bridge, sessions)."""

from __future__ import annotations

import socket
import time

import gevent
import gevent.event
import pytest
from elevenlabs.client import ElevenLabs

from gateway.calls.media_session import transcript
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings
from gateway.media import codec
from gateway.media.connectors import BotUnavailable, CallInfo, open_link
from gateway.media.connectors import elevenlabs
from gateway.media.connectors.vapi import VapiLink
from gateway.media.connectors.vapi import artifact_transcript as vapi_artifact
from gateway.media.twilio import Closed, LogNote, Media, ProtocolIssue, ProviderSession, Transcript
from gateway.models import Account, Call, CallEvent
from gateway.simulator.audio_stream import module
from media_support import MediaRig, Waiter
from provider_standins import EL_FORMATS, ElevenLabsStandIn, VapiStandIn

CALL = CallInfo("0f8e4c1e-5b7a-4b8e-9d2c-1a2b3c4d5e6f", "7", "outbound", "+15550009999", "+15550100001",
                {"name": "Jane"})
FRAME = 160  # 20 ms of mu-law


class Events(Waiter):
    """What a link reports, for a test to wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list = []

    def __call__(self, event) -> None:
        self.items.append(event)
        self.poke()

    def of(self, kind) -> list:
        return [e for e in self.items if isinstance(e, kind)]

    def wait_of(self, kind, count: int = 1, what: str = ""):
        return self.wait_for(lambda: len(self.of(kind)) >= count and self.of(kind), 5, what or kind.__name__)


@pytest.fixture
def eleven():
    standins = []

    def make(**kwargs):
        standins.append(ElevenLabsStandIn(**kwargs))
        return standins[-1]
    yield make
    for standin in standins:
        standin.stop()


@pytest.fixture
def links():
    """Links a test opens, killed at its end."""
    opened = []

    def track(link):
        opened.append(link)
        return link
    yield track
    for link in opened:
        link.kill()


def frames(count: int, start: int = 0) -> list[bytes]:
    """Distinct 20 ms mu-law frames (each a different byte), to tell them apart on the wire."""
    return [bytes([(start + n) % 250 + 1]) * FRAME for n in range(count)]


def el_link(standin, track, events=None, **kwargs):
    kwargs.setdefault("api_key", standin.api_key)
    link = track(elevenlabs.ElevenLabsLink(kwargs.pop("agent_id", "agent_123"), CALL, base_url=standin.url,
                                           connect_timeout=2.0, **kwargs))
    link.start(events if events is not None else Events())
    return link


# -- ElevenLabs: authentication ------------------------------------------------------------

def test_the_official_sdk_reads_the_standins_signed_url(eleven):
    """The stand-in's endpoint is the one the ``elevenlabs`` SDK calls, answered as it reads it."""
    standin = eleven()
    client = ElevenLabs(api_key="xi-secret", base_url=standin.url)
    answer = client.conversational_ai.conversations.get_signed_url(agent_id="agent_123")
    assert answer.signed_url.startswith(f"ws://127.0.0.1:{standin.ws.port}/v1/convai/conversation?agent_id=agent_123")
    assert standin.signed_requests[0]["headers"]["xi-api-key"] == "xi-secret"


def test_a_private_agent_is_reached_by_a_signed_url_without_the_key_on_the_socket(eleven, links):
    standin = eleven()
    events = Events()
    link = el_link(standin, links, events)
    peer = standin.peer()
    assert [r["agent_id"] for r in standin.signed_requests] == ["agent_123"]
    assert standin.signed_requests[0]["headers"]["xi-api-key"] == "xi-secret"
    assert peer.path.startswith("/v1/convai/conversation?agent_id=agent_123&conversation_signature=")
    assert "xi-api-key" not in [name.decode().lower() for name, _ in peer.headers]
    data = standin.client_data()
    assert data["dynamic_variables"] == {"name": "Jane", "call_uuid": CALL.call_uuid,
                                         "caller_number": CALL.from_number, "called_number": CALL.to_number}
    assert "conversation_config_override" not in data
    assert events.wait_of(ProviderSession)[0] == ProviderSession("elevenlabs", "conv_1")
    assert not peer.closed and standin.problems == []
    assert "conversation_signature" not in link.label  # the signature is not logged


def test_a_public_agent_is_reached_directly(eleven, links):
    standin = eleven(agents={"agent_pub": False})
    el_link(standin, links, agent_id="agent_pub", api_key=None)
    peer = standin.peer()
    assert peer.path == "/v1/convai/conversation?agent_id=agent_pub"
    assert standin.signed_requests == []
    standin.client_data()
    assert not peer.closed and standin.problems == []


@pytest.mark.parametrize("key, agent, error", [
    ("wrong", "agent_123", "ElevenLabs API answered HTTP 401 (the API key was refused)"),
    ("xi-secret", "agent_gone", "ElevenLabs API answered HTTP 404 (no such agent)"),
])
def test_get_signed_url_refused(eleven, key, agent, error):
    standin = eleven()
    with pytest.raises(BotUnavailable) as raised:
        elevenlabs.ElevenLabsLink(agent, CALL, api_key=key, base_url=standin.url, connect_timeout=2.0)
    assert str(raised.value) == error
    assert "Invalid API key" not in str(raised.value) and key not in str(raised.value)
    assert standin.ws.peers == []  # no socket was opened


def test_get_signed_url_times_out():
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connects, never answers
    try:
        with pytest.raises(BotUnavailable, match="^ElevenLabs API unreachable: timed out$"):
            elevenlabs.ElevenLabsLink("agent_123", CALL, api_key="xi-secret", connect_timeout=0.3,
                                      base_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
    finally:
        silent.close()


def test_base_urls_of_either_scheme():
    assert elevenlabs.endpoints("wss://api.elevenlabs.io") == ("https://api.elevenlabs.io", "wss://api.elevenlabs.io")
    assert elevenlabs.endpoints("https://api.elevenlabs.io/") == ("https://api.elevenlabs.io",
                                                                  "wss://api.elevenlabs.io")
    assert elevenlabs.endpoints("ws://127.0.0.1:9") == ("http://127.0.0.1:9", "ws://127.0.0.1:9")


# -- ElevenLabs: initiation data -------------------------------------------------------------

def test_conversation_config_override_in_the_documented_shape(eleven, links):
    standin = eleven()
    override = elevenlabs.config_override(prompt="You sell apples.", first_message="Hi Jane!", language="pt",
                                          voice_id="voice_9")
    assert override == {"agent": {"prompt": {"prompt": "You sell apples."}, "first_message": "Hi Jane!",
                                  "language": "pt"}, "tts": {"voice_id": "voice_9"}}
    el_link(standin, links, config_override=override)
    assert standin.client_data()["conversation_config_override"] == override
    assert standin.problems == []  # the SDK's override types know every key


@pytest.mark.parametrize("override, error", [
    ({"agent": {"temperature": 2}}, "conversation_config_override.agent.temperature is not an override"),
    ({"tts": {"voice_id": 5}}, "conversation_config_override.tts.voice_id must be a string"),
    ({"agent": "x"}, "conversation_config_override.agent must be an object"),
])
def test_a_malformed_override_is_refused_before_connecting(eleven, override, error):
    standin = eleven()
    with pytest.raises(ValueError, match=error):
        elevenlabs.ElevenLabsLink("agent_123", CALL, api_key="xi-secret", base_url=standin.url,
                                  config_override=override)
    assert standin.signed_requests == []


# -- ElevenLabs: audio formats ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", EL_FORMATS)
def test_every_sdk_audio_format_both_ways(eleven, links, fmt):
    standin = eleven(input_format=fmt, output_format=fmt)
    events = Events()
    link = el_link(standin, links, events)
    events.wait_of(ProviderSession)
    for frame in frames(50):
        link.send_audio(frame)
    rate = elevenlabs.FORMATS[fmt]
    per_frame = FRAME if fmt == "ulaw_8000" else 2 * rate // 50
    standin.ws.wait_for(lambda: len(standin.user_audio()) >= 50 * per_frame, 5, "user audio")
    assert len(standin.user_audio()) == 50 * per_frame
    agent = codec.l16_to_ulaw(codec.tone(0.2, 500)) if fmt == "ulaw_8000" else codec.tone(0.2, 500, rate=rate)
    standin.send_audio(agent, 1)
    heard = events.wait_of(Media)[0].payload
    assert len(heard) == 1600  # 200 ms at 8 kHz mu-law, whatever the agent's rate
    if fmt == "ulaw_8000":
        assert heard == agent  # passed through untouched
    assert 1500 < codec.rms(codec.ulaw_to_l16(heard)[400:]) < 2600  # a tone of ~2121 rms
    assert standin.problems == []


def test_no_formats_in_the_metadata_means_pcm_16000(eleven, links):
    standin = eleven(input_format=None, output_format=None)
    events = Events()
    link = el_link(standin, links, events)
    events.wait_of(ProviderSession)
    link.send_audio(codec.l16_to_ulaw(codec.tone(0.02, 440)))
    standin.ws.wait_for(lambda: standin.user_audio(), 5, "user audio")
    assert len(standin.user_audio()) == 640  # 20 ms of 16 kHz PCM
    assert link.transcoder.input_format == link.transcoder.output_format == "pcm_16000"


def test_caller_audio_waits_for_the_formats_bounded(eleven, links):
    standin = eleven(input_format="ulaw_8000", output_format="ulaw_8000")
    standin.hold_metadata = True
    events = Events()
    link = el_link(standin, links, events)
    standin.client_data()
    early = frames(elevenlabs.MAX_EARLY_AUDIO + 10)
    for frame in early:
        link.send_audio(frame)
    assert standin.user_audio() == b""  # nothing before the formats are known
    standin.release_metadata()
    kept = b"".join(early[10:])  # the oldest 10 were dropped
    standin.ws.wait_for(lambda: len(standin.user_audio()) >= len(kept), 5, "buffered audio")
    assert standin.user_audio() == kept
    assert link.dropped_audio == 10 and link.dropped_audio_bytes == 10 * FRAME


def test_an_unknown_format_ends_the_link_with_its_reason(eleven, links):
    standin = eleven(input_format="ulaw_8000", output_format="mp3_44100_128")
    events = Events()
    el_link(standin, links, events)
    closed = events.wait_of(Closed)[0]
    assert not closed.clean
    assert "output audio format 'mp3_44100_128' is not supported" in closed.reason
    assert events.of(ProviderSession) == []


def test_malformed_agent_messages_are_skipped(eleven, links):
    standin = eleven()
    events = Events()
    el_link(standin, links, events)
    events.wait_of(ProviderSession)
    for message in ({"type": "audio", "audio_event": {"audio_base_64": True, "event_id": 1}},
                    {"type": "audio", "audio_event": {"audio_base_64": "!!", "event_id": 1}},
                    {"type": "ping", "ping_event": {"ping_ms": 5}},
                    {"type": "agent_response_correction", "agent_response_correction_event": {}},
                    {"type": "client_tool_call", "client_tool_call": {"tool_name": "x"}},
                    {"type": "conversation_initiation_metadata",
                     "conversation_initiation_metadata_event": {"user_input_audio_format": {}}},
                    {"no_type": 1}):
        standin.send(message)
    issues = events.wait_for(lambda: len(events.of(ProtocolIssue)) >= 7 and events.of(ProtocolIssue), 5, "issues")
    assert [i.reason for i in issues] == [
        "audio_event.audio_base_64 is not a string", "audio_event.audio_base_64 is not base64",
        "ping without an integer event_id", "agent_response_correction without its two responses",
        "client_tool_call without a tool_call_id", "a second conversation_initiation_metadata",
        "message without a type"]
    standin.send({"type": "ping", "ping_event": {"event_id": 3}})  # the link still answers
    standin.ws.wait_for(lambda: standin.sent("pong"), 5, "pong")
    assert events.of(Closed) == [] and standin.sent("client_tool_result") == []


def test_vapi_artifact_of_any_shape():
    assert vapi_artifact({"status": "in-progress"}) is None
    assert vapi_artifact({"status": "ended", "artifact": {"messages": "x"}}) is None
    assert vapi_artifact({"status": "ended", "artifact": {"messages": [
        1, {"role": {}, "message": "a"}, {"role": "user", "message": 5}, {"role": "assistant", "message": " b "}]}}) \
        == [{"bot": "b"}]


# -- ElevenLabs: ping ------------------------------------------------------------------------

def test_a_pong_goes_ahead_of_queued_audio(eleven, links):
    """Order on the wire: a ping that arrives while caller audio is queued (the agent's
    socket full) is answered before that audio."""
    standin = eleven(input_format="pcm_16000", output_format="ulaw_8000")
    events = Events()
    link = el_link(standin, links, events)
    events.wait_of(ProviderSession)
    peer = standin.peer()
    standin.ws.wait_for(lambda: link.transcoder is not None, 5, "the formats read")  # else audio waits for them
    # A fixed, small receive buffer: left to itself, loopback's grows to megabytes while it waits.
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    standin.ws.reading.clear()  # the agent stops reading: the kernel's buffers fill, then the link queues
    for frame in frames(200):
        link.send_audio(frame)
    assert link._queued_audio > 0  # the premise: audio is waiting in the link
    standin.send({"type": "ping", "ping_event": {"event_id": 99, "ping_ms": 50}})
    standin.send({"type": "agent_response", "agent_response_event": {"agent_response": "after the ping"}})
    events.wait_of(Transcript)  # read after the ping: the pong is queued by now
    assert link._queued_audio > 0
    link_queued = link._queued_audio
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    standin.ws.reading.set()
    standin.ws.wait_for(lambda: standin.sent("pong"), 5, "pong")
    kinds = ["pong" if m.get("type") == "pong" else "audio" for m in peer.json()
             if m.get("type") == "pong" or "user_audio_chunk" in m]
    after_pong = len(kinds) - 1 - kinds.index("pong")
    standin.ws.wait_for(lambda: len([m for m in peer.json() if "user_audio_chunk" in m]) >=
                        kinds.count("audio") + link_queued - after_pong, 5, "the queued audio")
    kinds = ["pong" if m.get("type") == "pong" else "audio" for m in peer.json()
             if m.get("type") == "pong" or "user_audio_chunk" in m]
    assert kinds.count("pong") == 1
    assert len(kinds) - 1 - kinds.index("pong") >= link_queued  # all of what was queued came after it
    assert standin.sent("pong") == [{"type": "pong", "event_id": 99}]
    assert standin.problems == []


# -- ElevenLabs: client tools ----------------------------------------------------------------

def tool_call(standin, call_id, name="lookup_order", parameters=None):
    standin.send({"type": "client_tool_call", "client_tool_call": {"tool_name": name, "tool_call_id": call_id,
                                                                   "parameters": parameters or {}}})


def test_a_client_tool_runs_in_its_own_greenlet_and_its_result_is_answered(eleven, links):
    standin = eleven()
    release = gevent.event.Event()
    asked = []

    def run_tool(name, parameters):
        asked.append((name, parameters))
        release.wait(5)
        return f"order {parameters['order']} ships Monday", False
    events = Events()
    link = el_link(standin, links, events, run_tool=run_tool)
    events.wait_of(ProviderSession)
    peer = standin.peer()
    tool_call(standin, "call_1", parameters={"order": 42})
    standin.ws.wait_for(lambda: asked, 5, "the tool asked")
    for frame in frames(5):  # audio flows while the tool runs
        link.send_audio(frame)
    standin.ws.wait_for(lambda: len(standin.user_audio()) >= 5 * FRAME, 5, "audio during the tool")
    assert standin.sent("client_tool_result") == []
    release.set()
    standin.ws.wait_for(lambda: standin.sent("client_tool_result"), 5, "tool result")
    assert standin.sent("client_tool_result") == [{"type": "client_tool_result", "tool_call_id": "call_1",
                                                   "result": "order 42 ships Monday", "is_error": False}]
    assert asked == [("lookup_order", {"order": 42})]
    wire = [m.get("type", "audio") for m in peer.json()]
    assert wire.index("client_tool_result") > wire.index("audio")  # the audio did not wait for the tool
    note = events.wait_of(LogNote)[0].detail
    assert note["event"] == "tool_call" and note["tool"] == "lookup_order" and note["tool_call_id"] == "call_1"
    assert note["parameters"] == {"order": 42} and note["result"] == "order 42 ships Monday"
    assert note["is_error"] is False and note["ms"] > 0
    assert standin.problems == []


def test_tool_failures_are_answered_as_errors(eleven, links, monkeypatch):
    monkeypatch.setattr(elevenlabs, "TOOL_TIMEOUT", 0.2)
    standin = eleven()

    def run_tool(name, parameters):
        if name == "slow":
            gevent.sleep(5)
        if name == "broken":
            raise RuntimeError("database password is hunter2")
        if name == "odd":
            return 42
        raise LookupError(name)
    events = Events()
    el_link(standin, links, events, run_tool=run_tool)
    events.wait_of(ProviderSession)
    for n, name in enumerate(["slow", "broken", "nosuch", "odd"]):
        tool_call(standin, f"call_{n}", name, {"text": "x" * 2000} if name == "odd" else None)
    standin.ws.wait_for(lambda: len(standin.sent("client_tool_result")) == 4, 5, "four results")
    results = {m["tool_call_id"]: (m["result"], m["is_error"]) for m in standin.sent("client_tool_result")}
    assert results == {"call_0": ("the tool 'slow' did not answer within 0.2 s", True),
                       "call_1": ("the tool 'broken' failed", True),
                       "call_2": ("unknown tool 'nosuch'", True),
                       "call_3": ("the tool 'odd' failed", True)}
    logged = {n.detail["tool_call_id"]: n.detail for n in events.wait_of(LogNote, 4)}
    assert logged["call_3"]["parameters"].startswith('{"text":"xxx') and \
        len(logged["call_3"]["parameters"]) == elevenlabs.MAX_LOGGED_TEXT + 1  # cut short, marked
    assert "hunter2" not in str(logged) and "hunter2" not in str(results)  # a failure's text stays in our log
    assert standin.problems == []


def test_without_a_runner_a_tool_call_is_answered_as_an_error(eleven, links):
    standin = eleven()
    events = Events()
    el_link(standin, links, events)
    events.wait_of(ProviderSession)
    tool_call(standin, "call_9", "transfer_to_human")
    standin.send({"type": "client_tool_call", "client_tool_call": {"tool_call_id": "call_10", "parameters": []}})
    standin.ws.wait_for(lambda: len(standin.sent("client_tool_result")) == 2, 5, "tool results")
    assert standin.sent("client_tool_result") == [
        {"type": "client_tool_result", "tool_call_id": "call_9",
         "result": "no client tools are available on this line (asked for 'transfer_to_human')", "is_error": True},
        {"type": "client_tool_result", "tool_call_id": "call_10", "result": "the tool call has no tool_name",
         "is_error": True}]
    assert [n.detail["is_error"] for n in events.of(LogNote)] == [True, True]


# -- Vapi ------------------------------------------------------------------------------------

@pytest.fixture
def vapi():
    standin = VapiStandIn()
    yield standin
    standin.stop()


def test_vapi_call_creation_names_the_call_in_its_metadata(vapi, links):
    events = Events()
    link = links(VapiLink("asst_1", CALL, api_key="vapi-secret", base_url=vapi.url, connect_timeout=2.0))
    link.start(events)
    body, headers = vapi.requests[0]
    assert headers["authorization"] == "Bearer vapi-secret"
    assert body["assistantOverrides"]["metadata"] == {"call_uuid": CALL.call_uuid, "from_number": CALL.from_number,
                                                      "to_number": CALL.to_number}
    assert body["assistantOverrides"]["variableValues"] == {"name": "Jane"}
    assert body["transport"] == {"provider": "vapi.websocket",
                                 "audioFormat": {"format": "mulaw", "container": "raw", "sampleRate": 8000}}
    assert vapi.problems == []  # the SDK's types know every field sent
    assert vapi.peer().path == "/call-1/transport"
    assert events.wait_of(ProviderSession)[0] == ProviderSession("vapi", "call-1")


def test_vapi_metadata_without_custom_args(vapi, links):
    bare = CallInfo("uuid-2", "7", "inbound", "+15550001111", "+15550002222")
    links(VapiLink("asst_1", bare, api_key="vapi-secret", base_url=vapi.url))
    body, _ = vapi.requests[0]
    assert body["assistantOverrides"] == {"metadata": {"call_uuid": "uuid-2", "from_number": "+15550001111",
                                                       "to_number": "+15550002222"}}
    assert vapi.problems == []


def test_vapi_final_transcript_is_the_calls_artifact(vapi, links, monkeypatch):
    monkeypatch.setattr("gateway.media.connectors.vapi.REPORT_POLL", (0.05, 0.05))
    link = links(VapiLink("asst_1", CALL, api_key="vapi-secret", base_url=vapi.url))
    assert link.final_transcript(wait=0.2) is None  # still in progress: not there yet
    vapi.artifacts["call-1"] = {"messages": [
        {"role": "system", "message": "You are helpful.", "time": 1},
        {"role": "bot", "message": "Hi, this is Acme.", "time": 2},
        {"role": "user", "message": "I need help ", "time": 3},
        {"role": "tool_calls", "toolCalls": [], "time": 4}],
        "transcript": "AI: Hi, this is Acme.\nUser: I need help"}
    assert link.final_transcript(wait=1.0) == [{"bot": "Hi, this is Acme."}, {"user": "I need help"}]


# -- through a call ---------------------------------------------------------------------------

@pytest.fixture
def rig(database, sim):
    rigs = []

    def make(settings):
        made = MediaRig(sim, settings=settings)
        rigs.append(made)
        return made
    yield make
    for made in rigs:
        made.stop()


@pytest.fixture
def account(database):
    return Account.create(name="acme")


def call_log(call_uuid, event):
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "media")
            .order_by(CallEvent.seq) if e.detail.get("event") == event]


def poll(predicate, what, timeout=5.0):
    """The call's log is written by the controller's worker: poll the table."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what}")
        gevent.sleep(0.02)


def answered(r, account, sim, target):
    module(sim).build = "bidirectional"
    call = r.controller.originate(account.id, "+15550100001", "+15550009999", socket_url=target)
    r.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
    return call


def test_a_refused_key_leaves_the_call_without_its_bot_and_says_why(rig, sim, account, eleven):
    standin = eleven(api_key="the-right-one")
    account.elevenlabs_api_key = "xi-wrong"
    account.save()
    r = rig(MediaSettings(playback="stream", elevenlabs_url=standin.url))
    call = answered(r, account, sim, "elevenlabs&agent_123")
    r.controller.wait_status(call.uuid, FINAL, 10)
    failed = poll(lambda: call_log(call.uuid, "bot_connect_failed"), "bot_connect_failed")
    assert failed[0]["error"] == "ElevenLabs API answered HTTP 401 (the API key was refused)"
    assert poll(lambda: call_log(call.uuid, "hangup"), "hangup")[0]["reason"] == "bot_unreachable"


def test_a_correction_and_a_tool_call_on_the_calls_record(rig, sim, account, eleven):
    standin = eleven()
    account.elevenlabs_api_key = "xi-secret"
    account.save()
    r = rig(MediaSettings(playback="stream", elevenlabs_url=standin.url))
    call = answered(r, account, sim, "elevenlabs&agent_123")
    standin.peer()
    standin.client_data()
    standin.send({"type": "user_transcript", "user_transcription_event": {"user_transcript": "Hello?"}})
    standin.send({"type": "agent_response", "agent_response_event": {
        "agent_response": "Hi Jane! Your order ships on Monday, and"}})
    standin.send({"type": "agent_response_correction", "agent_response_correction_event": {
        "original_agent_response": "Hi Jane! Your order ships on Monday, and",
        "corrected_agent_response": "Hi Jane! Your order"}})
    tool_call(standin, "call_7", "lookup_order", {"order": 7})
    lines = poll(lambda: len(transcript(call.uuid)) == 2 and transcript(call.uuid), "transcript")
    assert lines == [{"user": "Hello?"}, {"bot": "Hi Jane! Your order"}]
    standin.send({"type": "agent_response_correction", "agent_response_correction_event": {
        "original_agent_response": "never said", "corrected_agent_response": "never"}})
    assert poll(lambda: call_log(call.uuid, "transcript_correction_unmatched"), "unmatched")[0] == \
        {"event": "transcript_correction_unmatched", "original": "never said"}
    note = poll(lambda: call_log(call.uuid, "tool_call"), "tool_call")[0]
    assert note["tool"] == "lookup_order" and note["is_error"] is True  # no runner wired in this rig
    standin.ws.wait_for(lambda: standin.sent("client_tool_result"), 5, "tool result")
    r.controller.hangup(call.uuid)
    r.controller.wait_status(call.uuid, FINAL, 5)
    if "transcript" in Call._meta.fields:
        assert poll(lambda: Call.get_by_id(call.uuid).transcript, "Call.transcript") == \
            [{"user": "Hello?"}, {"bot": "Hi Jane! Your order"}]
    assert standin.problems == []


def test_vapi_transcript_from_its_record_of_the_call(rig, sim, account, vapi):
    account.vapi_api_key = "vapi-secret"
    account.save()
    r = rig(MediaSettings(playback="stream", vapi_url=vapi.url))
    call = answered(r, account, sim, "vapi&asst_1")
    peer = vapi.peer()
    body, _ = vapi.requests[0]
    assert body["assistantOverrides"]["metadata"] == {"call_uuid": call.uuid, "from_number": "+15550009999",
                                                      "to_number": "+15550100001"}
    peer.send_text('{"type":"transcript","role":"user","transcriptType":"final","transcript":"hello?"}')
    poll(lambda: transcript(call.uuid), "the socket's transcript line")
    vapi.artifacts["call-1"] = {"messages": [{"role": "bot", "message": "Hi, Acme here.", "time": 1},
                                             {"role": "user", "message": "Hello?", "time": 2}]}
    r.controller.hangup(call.uuid)
    r.controller.wait_status(call.uuid, FINAL, 5)
    assert poll(lambda: call_log(call.uuid, "provider_transcript"), "provider_transcript")[0]["lines"] == 2
    if "transcript" in Call._meta.fields:
        assert poll(lambda: Call.get_by_id(call.uuid).transcript == [{"bot": "Hi, Acme here."}, {"user": "Hello?"}],
                    "Call.transcript from the artifact")
    assert vapi.problems == []


def test_open_link_passes_the_elevenlabs_inputs(eleven, links):
    standin = eleven()
    link = links(open_link("elevenlabs", "agent_123", CALL, api_key="xi-secret", elevenlabs_url=standin.url,
                           run_tool=lambda name, parameters: ("done", False),
                           config_override=elevenlabs.config_override(first_message="Hello!")))
    events = Events()
    link.start(events)
    assert standin.client_data()["conversation_config_override"] == {"agent": {"first_message": "Hello!"}}
    events.wait_of(ProviderSession)
    tool_call(standin, "c1", "anything")
    standin.ws.wait_for(lambda: standin.sent("client_tool_result"), 5, "tool result")
    assert standin.sent("client_tool_result")[0]["result"] == "done"
