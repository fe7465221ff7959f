"""The simulator's mod_audio_stream against the fs-captures ``audio_stream_*`` (replies,
CUSTOM events and their bodies, framing and pacing), over real sockets."""

from __future__ import annotations

import base64
import json
import os
import time

import gevent
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from gevent import socket

from gateway.media import codec
from gateway.media.bridge import MediaBridge
from gateway.simulator import Simulator
from gateway.simulator.audio_stream import USAGE, module
from media_support import WsServer
from sim_support import RawClient

SUBSCRIBE = ("event plain CHANNEL_HANGUP MEDIA_BUG_START MEDIA_BUG_STOP CUSTOM mod_audio_stream::connect "
             "mod_audio_stream::disconnect mod_audio_stream::error mod_audio_stream::json mod_audio_stream::play")


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def server():
    srv = WsServer()
    yield srv
    srv.stop()


@pytest.fixture
def call(sim):
    c = RawClient(sim.port)
    c.auth()
    c.command(SUBSCRIBE)
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    sim.wait_event(uuid, "CHANNEL_PARK")
    yield c, uuid
    c.close()


def custom(c: RawClient, subclass: str, count: int = 1, timeout: float = 5.0):
    return c.wait_for(lambda: (found := [e for e in c.events if e.name == "CUSTOM"
                                         and e.get("Event-Subclass") == subclass])[count - 1:] and found[count - 1],
                      timeout)


def test_replies_follow_the_capture(call, sim, server):
    c, uuid = call
    assert c.api(f"uuid_audio_stream {uuid}") == USAGE
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()}") == USAGE  # start needs 4 arguments
    assert c.api("uuid_audio_stream 00000000-0000-0000-0000-000000000000 start ws://127.0.0.1:1/x mono") \
        == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} stop") == "-ERR Operation Failed\n"  # no stream yet
    for bad in ("ws://under_score:80/x", "http://127.0.0.1/x", "ws://[::1]:80/x"):
        assert c.api(f"uuid_audio_stream {uuid} start {bad} mono 8k") == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()} quad 8k") == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()} mono 11025") == "-ERR Operation Failed\n"
    meta = '{"meta":"start-metadata-from-esl"}'
    assert c.api(f"uuid_audio_stream {uuid} start {server.url('/gateway-test?call=' + uuid)} mono 8k {meta}") \
        == "+OK Success\n"
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()} mono 8k") == "-ERR Operation Failed\n"
    connect = custom(c, "mod_audio_stream::connect")
    assert connect.body == '{"status":"connected"}' and connect.uuid == uuid
    assert connect.header_names[:2] == ["Event-Subclass", "Event-Name"]
    assert connect.get("Event-Calling-File") == "mod_audio_stream.c"
    assert any(n.startswith("variable_") for n in connect.header_names)
    assert c.wait_event("MEDIA_BUG_START", uuid).get("Media-Bug-Function") == "audio_stream"
    peer = server.wait_for(lambda: server.peers and server.peers[0], 5, "connection")
    assert peer.path == f"/gateway-test?call={uuid}"
    server.wait_for(lambda: len(peer.messages) >= 11, 5, "frames")
    assert peer.messages[0][1:] == ("text", meta)  # the metadata frame comes first
    assert c.api(f"uuid_audio_stream {uuid} send_text") == "-ERR no reply\n"
    assert c.api(f"uuid_audio_stream {uuid} send_text {{\"hello\":\"send_text from esl\"}}") == "+OK Success\n"
    server.wait_for(lambda: '{"hello":"send_text' in peer.texts(), 5, "send_text")  # only the first word
    assert c.api(f"uuid_audio_stream {uuid} bogus_subcommand") == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} graceful-shutdown") == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} stop {{\"bye\":\"stop-metadata-from-esl\"}}") == "+OK Success\n"
    server.wait_for(lambda: peer.closed, 5, "close")
    assert peer.close_code == 1000 and peer.texts()[-1] == '{"bye":"stop-metadata-from-esl"}'
    c.wait_event("MEDIA_BUG_STOP", uuid)
    for command in ("stop", "send_text x", "pause", "resume"):
        assert c.api(f"uuid_audio_stream {uuid} {command}") == "-ERR Operation Failed\n"
    gevent.sleep(0.1)
    assert not [e for e in c.events if e.get("Event-Subclass") == "mod_audio_stream::disconnect"]


@pytest.mark.parametrize("rate, size", [("8k", 320), ("16k", 640), ("16000", 640)])
def test_frames_are_l16_in_real_time(call, sim, server, rate, size):
    c, uuid = call
    tone = codec.tone(1.0, 440)
    sim.set_caller_audio(uuid, tone)
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()} mono {rate}") == "+OK Success\n"
    peer = server.wait_for(lambda: server.peers and server.peers[0], 5, "connection")
    server.wait_for(lambda: len(peer.messages) >= 30, 5, "frames")
    frames = [(t, data) for t, kind, data in peer.messages if kind == "binary"]
    assert {len(data) for _, data in frames} == {size}
    spacing = (frames[-1][0] - frames[0][0]) / (len(frames) - 1)
    assert spacing == pytest.approx(0.020, abs=0.004)
    if size == 320:
        assert b"".join(d for _, d in frames)[:3200] == tone[:3200]
    else:
        assert codec.rms(b"".join(d for _, d in frames)) == pytest.approx(codec.rms(tone), rel=0.05)
    c.api(f"uuid_audio_stream {uuid} pause")
    gevent.sleep(0.05)
    paused = len(peer.messages)
    gevent.sleep(0.2)
    assert len(peer.messages) == paused
    c.api(f"uuid_audio_stream {uuid} resume")
    server.wait_for(lambda: len(peer.messages) > paused + 3, 5, "frames after resume")
    c.api(f"uuid_kill {uuid}")
    server.wait_for(lambda: peer.closed, 5, "close on hangup")
    assert peer.close_code == 1000


def test_connect_refused_and_timeout(call, sim):
    c, uuid = call
    closed = WsServer()
    port = closed.port
    closed.stop()
    assert c.api(f"uuid_audio_stream {uuid} start ws://127.0.0.1:{port}/x mono 8k") == "+OK Success\n"
    error = custom(c, "mod_audio_stream::error")
    assert error.body == '{"status":"error","message":{"code":6,"error":"Connection refused (system error 111)"}}'
    slow = WsServer(accept_delay=2.0)  # upgrade later than mod_audio_stream's 1 s
    try:
        started = time.monotonic()
        assert c.api(f"uuid_audio_stream {uuid} start {slow.url()} mono 8k") == "+OK Success\n"
        error = custom(c, "mod_audio_stream::error", count=2)
        assert json.loads(error.body)["message"]["code"] == 10
        assert time.monotonic() - started < 1.5
    finally:
        slow.stop()


def test_server_close_fires_disconnect_and_keeps_the_bug(call, sim, server):
    c, uuid = call
    c.api(f"uuid_audio_stream {uuid} start {server.url()} mono 8k")
    peer = server.wait_for(lambda: server.peers and server.peers[0], 5, "connection")
    server.wait_for(lambda: len(peer.messages) >= 5, 5, "frames")
    peer.send_text('{"type": "ws-server-test", "text": "hello from local ws server"}')
    assert custom(c, "mod_audio_stream::json").body == '{"type": "ws-server-test", "text": "hello from local ws server"}'
    peer.close(1000, "server-side close")
    body = custom(c, "mod_audio_stream::disconnect").body
    assert body == '{"status":"disconnected","message":{"code":1000,"reason":"server-side close"}}'
    assert c.api(f"uuid_audio_stream {uuid} start {server.url()} mono 8k") == "-ERR Operation Failed\n"
    assert c.api(f"uuid_audio_stream {uuid} stop") == "+OK Success\n"


@pytest.mark.parametrize("build", ["bidirectional", "community"])
def test_stream_audio_is_written_to_a_file_and_fires_play(call, sim, server, tmp_path, build):
    c, uuid = call
    module(sim).temp_dir, module(sim).build = str(tmp_path), build
    c.api(f"uuid_audio_stream {uuid} start {server.url()} mono 8k")
    peer = server.wait_for(lambda: server.peers and server.peers[0], 5, "connection")
    pcm = codec.tone(0.5, 1000)
    peer.send_text(json.dumps({"type": "streamAudio", "data": {"audioDataType": "raw", "sampleRate": 8000,
                                                               "audioData": base64.b64encode(pcm).decode()}}))
    play = custom(c, "mod_audio_stream::play")
    path = str(tmp_path / f"{uuid}_0.tmp.r8")
    assert play.body == '{"audioDataType":"raw","sampleRate":8000,"file":"%s"}' % path
    assert open(path, "rb").read() == pcm
    assert c.api(f"file_exists {path}") == "true"
    peer.send_text(json.dumps({"type": "streamAudio", "data": {"audioDataType": "raw", "sampleRate": 11025,
                                                               "audioData": "AAAA"}}))
    assert json.loads(custom(c, "mod_audio_stream::json").body)["data"]["sampleRate"] == 11025
    assert not sim.channels[uuid].played  # the module does not play it
    assert c.api(f"uuid_audio_stream {uuid} stop") == "+OK Success\n"
    assert not os.path.exists(path)  # files go with the stream


def test_bridge_accepts_permessage_deflate_and_answers_pings():
    """mod_audio_stream may offer permessage-deflate (libwsc's exact offer) or not."""
    bridge = MediaBridge("127.0.0.1", 0)
    bridge.start()
    try:
        stream = bridge.open("11111111-2222-3333-4444-555555555555")
        heard = []
        stream.on_caller_audio = heard.append
        sock = socket.create_connection(("127.0.0.1", bridge.port))
        ws = WSConnection(ConnectionType.CLIENT)
        offer = PerMessageDeflate(client_no_context_takeover=True, server_no_context_takeover=True,
                                  client_max_window_bits=9)
        sock.sendall(ws.send(Request(host=f"127.0.0.1:{bridge.port}", target=stream.url_path, extensions=[offer])))
        accepted = None
        while accepted is None:
            ws.receive_data(sock.recv(65536))
            accepted = next((e for e in ws.events() if isinstance(e, AcceptConnection)), None)
        assert [ext.name for ext in accepted.extensions] == ["permessage-deflate"]
        sock.sendall(ws.send(TextMessage(data='{"meta":1}')))
        sock.sendall(ws.send(BytesMessage(data=codec.tone(0.02))))
        from wsproto.events import Ping, Pong
        sock.sendall(ws.send(Ping(payload=b"hb")))
        pong = None
        while pong is None:
            ws.receive_data(sock.recv(65536))
            pong = next((e for e in ws.events() if isinstance(e, Pong)), None)
        assert pong.payload == b"hb"
        assert stream.fs_metadata == '{"meta":1}' and heard == [codec.tone(0.02)]
        # a wrong token or an unknown call is refused
        for target in (f"/stream/{stream.call_uuid}?token=nope", "/stream/unknown"):
            other = socket.create_connection(("127.0.0.1", bridge.port))
            client = WSConnection(ConnectionType.CLIENT)
            other.sendall(client.send(Request(host="x", target=target)))
            assert other.recv(65536).startswith(b"HTTP/1.1 404")
            other.close()
        sock.close()
    finally:
        bridge.stop()
