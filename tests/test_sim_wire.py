"""Wire-level tests of the simulator: exact bytes, over real TCP on 127.0.0.1.

Follows research/freeswitch.md §6 (the wire checklist) and replays
fs-captures/esl_edge_replies.control.json byte for byte.  Clients are raw gevent sockets
(``sim_support.RawClient``) and greenswitch's ``InboundESL`` used as an independent client.
"""

from __future__ import annotations

import json
import re

import gevent
import pytest
from gevent import socket

from gateway.esl.protocol import DISCONNECT_GOODBYE, MessageReader
from gateway.simulator import Simulator
from sim_support import CAPTURES, CapturedEvent, RawClient, capture_control

GOODBYE = (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" + DISCONNECT_GOODBYE.encode())


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, hostname="vm")
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim):
    clients = []

    def connect(auth=True):
        c = RawClient(sim.port)
        clients.append(c)
        if auth:
            c.auth()
        return c

    yield connect
    for c in clients:
        c.close()


def read_exact(sock, n: int, timeout: float = 5.0) -> bytes:
    data = b""
    with gevent.Timeout(timeout):
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    return data


def assert_eof(c: RawClient) -> None:
    assert c.eof.wait(5), "the server did not close the connection"


def assert_silent(c: RawClient, seconds: float = 0.3) -> None:
    """Nothing more arrives (a bounded wait for an absence)."""
    before = len(c.wire)
    c.changed.wait(seconds)
    assert len(c.wire) == before and not c.eof.is_set()


# -- handshake and replies --------------------------------------------------------------------

def test_auth_handshake_exact_bytes(sim):
    sock = socket.create_connection(("127.0.0.1", sim.port))
    try:
        assert read_exact(sock, 28) == b"Content-Type: auth/request\n\n"
        sock.sendall(b"auth ClueCon\n\n")
        expected = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
        assert read_exact(sock, len(expected)) == expected
        sock.sendall(b"api uuid_exists 00000000-0000-0000-0000-000000000000\r\n\r\n")  # CRLF is accepted too
        expected = b"Content-Type: api/response\nContent-Length: 5\n\nfalse"
        assert read_exact(sock, len(expected)) == expected
    finally:
        sock.close()


def test_wrong_password_is_rejected_and_closed(client):
    c = client(auth=False)
    c.reply()
    c.send_raw(b"auth wrong\n\n")
    assert_eof(c)
    assert bytes(c.wire) == (b"Content-Type: auth/request\n\n"
                             b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n" + GOODBYE)


def test_commands_before_auth(client):
    c = client(auth=False)
    c.reply()
    assert c.command("api status").reply_text == "-ERR command not found"
    assert c.command("event plain ALL").reply_text == "-ERR command not found"
    assert c.command("auth ClueCon").reply_text == "+OK accepted"
    e = client(auth=False)
    e.reply()
    e.send_raw(b"exit\n\n")
    assert_eof(e)
    assert bytes(e.wire).endswith(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n" + GOODBYE)


def test_unknown_commands(client):
    c = client()
    assert bytes(c.wire)  # handshake done
    start = len(c.wire)
    c.command("foo bar")
    c.command("api")
    c.command("api foo_nonexistent_cmd")
    c.command("api uuid_kill")
    assert bytes(c.wire[start:]) == (
        b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
        b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
        b"Content-Type: api/response\nContent-Length: 44\n\n-ERR foo_nonexistent_cmd Command not found!\n"
        b"Content-Type: api/response\nContent-Length: 23\n\n-USAGE: <uuid> [cause]\n")


def test_bgapi_job_uuid_and_background_job_event(client):
    c = client()
    c.command("event plain BACKGROUND_JOB")
    job = "482c6a5f-a8ba-4030-9729-700e45036b3d"
    start = len(c.wire)
    c.command("bgapi uuid_kill 667ffa5c-1160-45ef-9e60-f181a619704f", {"Job-UUID": job})
    expected = f"Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n".encode()
    assert bytes(c.wire[start:start + len(expected)]) == expected
    event = c.wait_event("BACKGROUND_JOB")
    assert event.body == "-ERR No such channel!\n"
    assert event.get("Job-UUID") == job and event.get("Job-Command") == "uuid_kill"
    assert event.get("Job-Command-Arg") == "667ffa5c-1160-45ef-9e60-f181a619704f"
    raw = event.raw.decode()
    assert raw.endswith("Job-Command-Arg: 667ffa5c-1160-45ef-9e60-f181a619704f\n"
                        "Content-Length: 22\n\n-ERR No such channel!\n")
    own = c.command("bgapi status").reply_text
    assert re.fullmatch(r"\+OK Job-UUID: [0-9a-f-]{36}", own)


def test_event_framing_and_url_encoding(sim, client):
    c = client()
    c.command("event plain CHANNEL_CREATE")
    uuid = "364e2481-604e-49e8-a1a5-10361b463bf9"
    c.api("originate {origination_uuid=%s,origination_caller_id_number=5551000,"
          "origination_caller_id_name='Tom \"Q\" Evil: 100%% é 日本 a+b&c=d;e\\,f %%0A end'}"
          "sofia/gateway/carrier/15551230000 &park()" % uuid)
    event = c.wait_event("CHANNEL_CREATE", uuid)
    wire = bytes(c.wire)
    at = wire.index(b"Content-Length: ", wire.index(b"+OK " + uuid.encode()))
    head, _, rest = wire[at:].partition(b"\n\n")
    assert head.split(b"\n")[1] == b"Content-Type: text/event-plain"  # Content-Length comes first
    length = int(head.split(b"\n")[0].split(b": ")[1])
    body = rest[:length]
    assert body.startswith(b"Event-Name: CHANNEL_CREATE\nCore-UUID: ") and body.endswith(b"\n\n")
    assert (b"\nCaller-Caller-ID-Name: Tom%20%22Q%22%20Evil%3A%20100%25%20%C3%A9%20%E6%97%A5%E6%9C%AC%20"
            b"a%2Bb%26c%3Dd%3Be,f%20%0A%20end\n") in body
    assert b"\nEvent-Date-Local: " in body and re.search(
        rb"\nEvent-Date-GMT: \w{3},%20\d\d%20\w{3}%20\d{4}%20\d\d%3A\d\d%3A\d\d%20GMT\n", body)
    assert event.get("Channel-Name") == "sofia/external/15551230000"
    assert b"\nChannel-Name: sofia/external/15551230000\n" in body
    c.api(f"uuid_kill {uuid}")


def test_json_events(client):
    c = client()
    assert c.command("event json CHANNEL_ANSWER").reply_text == "+OK event listener enabled json"
    uuid = c.api("originate sofia/gateway/carrier/15551230000 &park()").split()[1]
    c.wait_for(lambda: [m for m in c.messages if m.content_type == "text/event-json"])
    message = next(m for m in c.messages if m.content_type == "text/event-json")
    data = json.loads(message.body)
    assert data["Event-Name"] == "CHANNEL_ANSWER" and data["Unique-ID"] == uuid
    assert all(isinstance(v, str) for v in data.values())
    assert not message.body.endswith(b"\n")
    c.api(f"uuid_kill {uuid}")


# -- subscriptions -----------------------------------------------------------------------------

def test_event_command_replies(client):
    c = client()
    assert c.command("event plain").reply_text == "-ERR no keywords supplied"
    assert c.command("event json NOT_AN_EVENT").reply_text == "-ERR no keywords supplied"
    assert c.command("event xml switch_event_channel_answer").reply_text == "+OK event listener enabled xml"
    assert c.command("nixevent CHANNEL_ANSWER").reply_text == "+OK events nixed"
    assert c.command("nixevent").reply_text == "-ERR no keywords supplied"
    assert c.command("noevents").reply_text == "+OK no longer listening for events"
    assert c.command("noevents").reply_text == "-ERR not listening for events"
    assert c.command("filter Unique-ID").reply_text == "-ERR invalid syntax"
    assert c.command("filter Unique-ID abc").reply_text == "+OK filter added. [Unique-ID]=[abc]"
    assert c.command("filter delete Unique-ID abc").reply_text == "+OK filter deleted. [Unique-ID][abc]"
    assert c.command("filter delete all").reply_text == "+OK filter deleted. [all][]"
    assert c.command("myevents 00000000-0000-0000-0000-000000000000 json").reply_text == "-ERR invalid uuid"
    assert c.command("linger").reply_text == "-ERR not controlling a session"
    assert c.command("divert_events on").reply_text == "-ERR not controlling a session."
    assert c.command("log debug").reply_text == "+OK log level debug [7]"
    assert c.command("nolog").reply_text == "+OK no longer logging"
    assert c.command("nolog").reply_text == "-ERR not loging"
    assert c.command("sendmsg 00000000-0000-0000-0000-000000000000").reply_text == \
        "-ERR invalid session id [00000000-0000-0000-0000-000000000000]"


def test_custom_events_need_their_subclass(client):
    plain_custom, named, everything = client(), client(), client()
    plain_custom.command("event plain CUSTOM")
    named.command("event plain CUSTOM mod_audio_stream::json mod_audio_stream::play")
    everything.command("event plain ALL")
    sender = client()
    reply = sender.command("sendevent CUSTOM", {"Event-Subclass": "mod_audio_stream::json", "x": "1"})
    assert reply.reply_text.startswith("+OK ")
    got = named.wait_event("CUSTOM")
    assert got.items[0] == ("Event-Subclass", "mod_audio_stream::json")  # Event-Subclass comes first
    assert b"Event-Subclass: mod_audio_stream%3A%3Ajson\nEvent-Name: CUSTOM\n" in bytes(named.wire)
    everything.wait_event("CUSTOM")
    sender.command("event plain HEARTBEAT")  # a round trip: the custom event was delivered by now
    assert not [e for e in plain_custom.events if e.name == "CUSTOM"]


def test_filters_drop_events_lacking_the_header(sim, client):
    other = client()
    other.command("event plain BACKGROUND_JOB")
    c = client()
    c.command("event plain ALL")
    c.command("filter Unique-ID 00000000-0000-0000-0000-000000000001")
    c.command("bgapi status")
    other.command("bgapi status")
    other.wait_event("BACKGROUND_JOB", count=2)
    assert not [e for e in c.events if e.name == "BACKGROUND_JOB"]
    c.command("filter Event-Name BACKGROUND_JOB")
    c.command("bgapi status")
    c.wait_event("BACKGROUND_JOB")
    c.command("filter delete all")
    c.command("filter Event-Name -BACKGROUND_JOB")
    c.command("filter Event-Name /^API$/")
    c.command("bgapi status")
    c.wait_event("API")
    assert len([e for e in c.events if e.name == "BACKGROUND_JOB"]) == 1


def test_myevents_follows_one_channel_and_disconnects_at_hangup(sim, client):
    ctl = client()
    first = ctl.api("originate sofia/gateway/carrier/15551230000 &park()").split()[1]
    second = ctl.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    c = client()
    assert c.command(f"myevents {first}").reply_text == "+OK Events Enabled"
    assert c.command(f"myevents {first}").reply_text == "-ERR aready enabled."
    c.command("event plain BACKGROUND_JOB")
    ctl.api(f"uuid_kill {second}")
    ctl.api(f"uuid_kill {first}")
    assert_eof(c)
    assert {e.uuid for e in c.events} == {first}
    assert [e.name for e in c.events][-2:] == ["CHANNEL_DESTROY", "CHANNEL_STATE"]
    data = DISCONNECT_GOODBYE.encode()
    assert bytes(c.wire).endswith(b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + first.encode()
                                  + b"\nContent-Disposition: disconnect\nContent-Length: 67\n\n" + data)


def test_linger_notice_then_events_then_close(sim, client):
    ctl = client()
    uuid = ctl.api("originate sofia/gateway/carrier/15551230000 &park()").split()[1]
    c = client()
    c.command(f"myevents {uuid}")
    assert c.command("linger 1").reply_text == "+OK will linger 1 seconds"
    ctl.api(f"uuid_kill {uuid}")
    assert_eof(c)
    notice = (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\nContent-Disposition: linger\n"
              b"Channel-Name: sofia/external/15551230000\nLinger-Time: 1\nContent-Length: 0\n\n" % uuid.encode())
    assert notice in bytes(c.wire)


def test_api_blocks_the_connection(sim, client):
    """Events produced while an ``api originate`` runs are written after its reply."""
    sim.answer_delay = 0.3
    c = client()
    c.command("event plain ALL")
    start = len(c.wire)
    reply = c.command("api originate sofia/gateway/carrier/15551230000 &park()")
    uuid = reply.text.split()[1]
    assert bytes(c.wire[start:]).startswith(b"Content-Type: api/response\nContent-Length: 41\n\n+OK ")
    c.wait_event("CHANNEL_PARK", uuid)
    created = next(i for i, m in enumerate(c.messages) if m.content_type == "text/event-plain"
                   and b"Event-Name: CHANNEL_CREATE" in m.body)
    api_reply = next(i for i, m in enumerate(c.messages) if m.content_type == "api/response")
    assert api_reply < created
    c.api(f"uuid_kill {uuid}")


def test_heartbeat_interval(client):
    sim = Simulator(port=0, heartbeat_interval=0.1).start()
    try:
        c = RawClient(sim.port)
        c.auth()
        c.command("event plain HEARTBEAT")
        beat = c.wait_event("HEARTBEAT", timeout=2)
        assert beat.get("Event-Info") == "System Ready"
        assert re.fullmatch(r"0 years, 0 days, 0 hours, 0 minutes, 0 seconds, \d+ milliseconds, \d+ microseconds",
                            beat.get("Up-Time"))
        c.close()
    finally:
        sim.stop()


def test_exit_closes_right_after_the_notice(client):
    c = client()
    c.send("exit")
    assert_eof(c)
    assert bytes(c.wire).endswith(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n" + GOODBYE)


# -- greenswitch as an independent client ---------------------------------------------------------

def test_greenswitch_inbound_client(sim):
    from greenswitch import InboundESL

    esl = InboundESL("127.0.0.1", sim.port, "ClueCon", timeout=5)
    esl.connect()
    try:
        seen = {}
        done = gevent.event.Event()
        answered = gevent.event.Event()  # greenswitch's handlers run after the simulator's last change

        def on(name):
            def handler(event):
                seen.setdefault(name, []).append(event.headers)
                if name == "CHANNEL_HANGUP_COMPLETE":
                    done.set()
                if "BACKGROUND_JOB" in seen and "CHANNEL_ANSWER" in seen:
                    answered.set()
            return handler

        for name in ("CHANNEL_ANSWER", "BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE"):
            esl.register_handle(name, on(name))
        assert esl.send("events plain CHANNEL_ANSWER BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE").data == \
            "-ERR command not found"
        assert esl.send("event plain CHANNEL_ANSWER BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE").data == \
            "+OK event listener enabled plain"
        status = esl.send("api status").data
        assert status.startswith("UP 0 years, 0 days, 0 hours, ") and "FreeSWITCH (Version 1.10.12" in status
        uuid = "a00d5bcc-a184-49b4-86a9-f246e020cda9"
        reply = esl.send("bgapi originate {origination_uuid=%s,origination_caller_id_name=gateway,"
                         "origination_caller_id_number=5551000}sofia/gateway/carrier/15551230000 &park()" % uuid)
        assert reply.headers["Reply-Text"].startswith("+OK Job-UUID: ")
        assert answered.wait(5)
        assert seen["CHANNEL_ANSWER"][0]["Unique-ID"] == uuid
        # greenswitch merges the event body into Content-Length (research/freeswitch.md §5.2)
        assert seen["BACKGROUND_JOB"][0]["Content-Length"].endswith(f"+OK {uuid}")
        assert esl.send(f"api uuid_kill {uuid} USER_BUSY").data == "+OK\n"
        assert done.wait(5)
        assert seen["CHANNEL_HANGUP_COMPLETE"][0]["Hangup-Cause"] == "USER_BUSY"
        assert seen["CHANNEL_HANGUP_COMPLETE"][0]["variable_hangup_cause_q850"] == "17"
    finally:
        esl.stop()


# -- the captured edge replies, replayed byte for byte ----------------------------------------------

JOB_REPLY = re.compile(r"Content-Type: command/reply\nReply-Text: \+OK Job-UUID: (\S+)\nJob-UUID: \S+\n\n")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normalise(text: str, known: frozenset = frozenset()) -> str:
    """Server-chosen values out: other channels' uuids (loopback B legs), times, figures."""
    text = UUID.sub(lambda m: m.group(0) if m.group(0) in known else "<uuid>", text)
    text = re.sub(r'"created":"[^"]*","created_epoch":"\d+"', '"created":"T","created_epoch":"E"', text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+", "T,E", text)
    if text.startswith("UP ") or "\nUP " in text:
        text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text


@pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"captures not found at {CAPTURES}")
def test_replay_esl_edge_replies():
    """Every command of esl_edge_replies.control.json, on as many connections as were
    recorded, in the recorded order; replies must be byte-identical.  Normalised: the
    ``status`` figures, ``created``/``created_epoch`` of ``show channels``, server-chosen
    Job-UUIDs; events (BACKGROUND_JOB) are compared by header names and body."""
    sim = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, hostname="vm")
    sim.add_route("public", "9664", [("answer", ""), ("playback", "local_stream://moh")])
    sim.start()
    clients: dict[str, RawClient] = {}
    cursor: dict[str, int] = {}
    job_map: dict[str, str] = {}
    expected_events: dict[str, list[CapturedEvent]] = {}
    killed = {"364e2481-604e-49e8-a1a5-10361b463bf9", "a00d5bcc-a184-49b4-86a9-f246e020cda9"}
    kills = 0
    known = frozenset(UUID.findall(" ".join(i.get("sent", "") for i in capture_control("esl_edge_replies"))))
    try:
        for item in capture_control("esl_edge_replies"):
            conn = item["conn"]
            if conn not in clients:
                clients[conn] = RawClient(sim.port)
                cursor[conn] = 0
            c = clients[conn]
            if "sent" in item:
                sent = item["sent"]
                if sent.startswith("api uuid_kill 364e2481"):
                    kills += 1
                    if kills == 2:  # the capture waited 1.5 s: both calls were gone
                        sim.wait_for(lambda: not killed & set(sim.channels))
                c.send_raw(sent.encode())
                continue
            if "recv_raw" in item:
                raw = item["recv_raw"]
                if raw.startswith("Content-Length: "):  # an event
                    expected_events.setdefault(conn, []).append(
                        CapturedEvent(MessageReader().feed(raw.encode())[0]))
                    continue
                replies = lambda: [m for m in c.messages if not m.content_type.startswith("text/event")]  # noqa: E731
                c.wait_for(lambda: len(replies()) > cursor[conn])
                got = replies()[cursor[conn]]
                cursor[conn] += 1
                got_raw = (bytes("".join(f"{k}: {v}\n" for k, v in got.headers.items()) + "\n", "utf-8") + got.body
                           ).decode()
                match = JOB_REPLY.fullmatch(raw)
                if match:
                    mine = got.headers.get("Job-UUID", "")
                    job_map[mine] = match.group(1)
                    got_raw = got_raw.replace(mine, match.group(1))
                if "show channels" in raw or got.content_type == "api/response":
                    assert _normalise(got_raw, known) == _normalise(raw, known), f"{conn}: reply differs"
                else:
                    assert got_raw == raw, f"{conn}: reply differs"
                continue
            if item.get("eof"):
                assert c.eof.wait(5), f"{conn}: expected the server to close"
            else:
                assert_silent(c, 0.2)
        for conn, wanted in expected_events.items():
            c = clients[conn]
            got = {job_map.get(e.get("Job-UUID"), e.get("Job-UUID")): e for e in c.events}
            for want in wanted:
                mine = got[want.get("Job-UUID")]
                assert [k for k, _ in want.items] == [k for k, _ in mine.items]
                assert _normalise(mine.body) == _normalise(want.body)
    finally:
        for c in clients.values():
            c.close()
        sim.stop()


@pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"captures not found at {CAPTURES}")
def test_replay_encoding_special_chars():
    """encoding_caller_id_special_chars: the control replies byte for byte, and the exact
    plain and json lines the capture lists for those headers."""
    sim = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, hostname="vm")
    sim.start()
    try:
        plain, js, ctl = RawClient(sim.port), RawClient(sim.port), RawClient(sim.port)
        plain.auth()
        plain.command("event plain ALL")
        js.auth()
        js.command("event json ALL")
        items = [i for i in capture_control("encoding_caller_id_special_chars") if i["conn"] == "ctl"]
        replies = 0
        for item in items:
            if "sent" in item:
                if "uuid_kill" in item["sent"]:
                    plain.wait_event("PRIVATE_COMMAND", count=2)
                ctl.send_raw(item["sent"].encode())
            elif "recv_raw" in item:
                ctl.wait_for(lambda: len(ctl.messages) > replies)
                got = ctl.messages[replies]
                replies += 1
                got_raw = "".join(f"{k}: {v}\n" for k, v in got.headers.items()) + "\n" + got.text
                assert got_raw == item["recv_raw"]
        plain.wait_event("CHANNEL_DESTROY", count=4)
        summary = (CAPTURES / "encoding_caller_id_special_chars.summary.txt").read_text()
        section = summary.split("=== exact on-wire encoding")[1].split("===", 2)[1]
        for line in section.splitlines():
            if line.startswith("plain  "):
                wanted = line[len("plain  "):]
                if "RFC2822_DATE" in wanted:
                    continue
                assert ("\n" + wanted + "\n").encode() in bytes(plain.wire), wanted
            elif line.startswith("json   ") and "[bytes: " in line:
                wanted = eval(line.split("[bytes: ", 1)[1].rstrip("]"))  # noqa: S307 - the capture's repr()
                if b"RFC2822_DATE" in wanted:
                    continue
                assert wanted in bytes(js.wire), wanted
        for c in (plain, js, ctl):
            c.close()
    finally:
        sim.stop()


def test_segmented_encoding_equals_whole_encoding(sim, client):
    """The simulator encodes channel events in reusable segments; the bytes must be those
    of the protocol module's encoders applied to the whole header list."""
    from gateway.esl.protocol import encode_json_event, encode_plain_event, frame_event

    captured = []
    sim.core.listeners.append(type("Spy", (), {"wants": lambda self, n, s: True,
                                               "deliver": lambda self, e: captured.append(e)})())
    c = client()
    uuid = c.api("originate {origination_caller_id_name='A \"b\" ,c é'}sofia/gateway/carrier/15551230001 &park()").split()[1]
    c.api(f"uuid_setvar {uuid} odd %ZZ 100% %0A\ttab")
    c.api(f"uuid_kill {uuid}")
    sim.wait_gone(uuid)
    channel_events = [e for e in captured if e.segments is not None]
    assert len(channel_events) > 20
    for event in channel_events:
        assert event.framed("plain") == frame_event(encode_plain_event(event.headers, event.body), "plain")
        assert event.framed("json") == frame_event(encode_json_event(event.headers, event.body), "json")
