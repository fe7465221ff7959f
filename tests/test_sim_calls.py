"""Call behaviour of the simulator: the outcome rule, causes and CDR variables, mid-call
commands, dialplan applications, inbound calls, far-end actions, crash/restart and the
slow/stuck modes.  Over real TCP on 127.0.0.1; waits are on events, with timeouts."""

from __future__ import annotations

import argparse
import json
import os
import re
import wave

import gevent
import pytest

from gateway.simulator import Outcome, Simulator, outcome_for
from gateway.simulator.cli import add_subparser
from gateway.simulator.originate import parse_app, parse_dial_string, split_args
from sim_support import RawClient

DIALPLAN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dialplan")
ORIG = "{origination_uuid=%s,origination_caller_id_name=gateway,origination_caller_id_number=5551000}"


@pytest.fixture
def sim():
    simulator = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, remote_hangup_delay=0.1)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def esl(sim):
    clients = []

    def connect(events: str | None = "ALL"):
        c = RawClient(sim.port)
        c.auth()
        if events:
            c.command(f"event plain {events}")
        clients.append(c)
        return c

    yield connect
    for c in clients:
        c.close()


def new_uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def hangup_complete(c: RawClient, uuid: str):
    return c.wait_event("CHANNEL_HANGUP_COMPLETE", uuid, timeout=10)


# -- parsing -------------------------------------------------------------------------------------

def test_argument_splitting_follows_switch_separate_string():
    assert split_args("a 'b c' d") == ["a", "b c", "d"]
    assert split_args("{x='Tom \"Q\" Evil',y=1}sofia/x/y &park()") == ['{x=Tom "Q" Evil,y=1}sofia/x/y', "&park()"]
    assert split_args("it's fine") == ["it's", "fine"]
    assert split_args("u var hello world", 3) == ["u", "var", "hello world"]
    assert split_args(r"a\sb c\,d") == ["a b", r"c\,d"]
    variables, target = parse_dial_string(r"{a=1,b=x\,y}[e=4]sofia/gateway/carrier/123|sofia/x")
    assert variables == [("a", "1"), ("b", "x,y"), ("e", "4")]
    assert target == "sofia/gateway/carrier/123"
    assert parse_dial_string("{^^:a=1:b=2,3}sofia/x/y") == ([("a", "1"), ("b", "2,3")], "sofia/x/y")
    assert parse_app("&park()") == ("park", "")
    assert parse_app("&playback(tone_stream://%(100,0,440))") == ("playback", "tone_stream://%(100,0,440)")
    assert parse_app("9196") is None


def test_outcome_rule():
    assert outcome_for("+15551230486") == Outcome(final=486, provisional=None)
    assert outcome_for("15551230603").final == 603
    assert outcome_for("15551230404").final == 404
    assert outcome_for("15551230480") == Outcome(final=None, provisional=180)
    assert outcome_for("15551230503").local and outcome_for("15551230408").local
    assert outcome_for("15551230183").provisional == 183
    assert outcome_for("15551230200", remote_hangup_delay=2).hangup_after == 2
    assert outcome_for("15551230001") == Outcome()
    assert outcome_for("86") == Outcome()


# -- originate outcomes ----------------------------------------------------------------------------

@pytest.mark.parametrize("number, cause, q850, sip_status, disposition", [
    ("15551230486", "USER_BUSY", "17", "486", "recv_refuse"),
    ("15551230603", "CALL_REJECTED", "21", "603", "recv_refuse"),
    ("15551230404", "UNALLOCATED_NUMBER", "1", "404", "recv_refuse"),
    ("15551230503", "NORMAL_TEMPORARY_FAILURE", "41", "503", "recv_refuse"),
    ("15551230487", "ORIGINATOR_CANCEL", "16", "487", "recv_refuse"),
])
def test_refusals(esl, number, cause, q850, sip_status, disposition):
    c = esl()
    uuid = new_uuid(int(number[-3:]))
    assert c.api(f"originate {ORIG % uuid}sofia/gateway/carrier/{number} &park()") == f"-ERR {cause}\n"
    done = hangup_complete(c, uuid)
    assert [v for k, v in done.items if k == "Hangup-Cause"] == [cause, cause]
    assert done.get("variable_hangup_cause") == cause
    assert done.get("variable_hangup_cause_q850") == q850
    assert done.get("variable_sip_term_status") == sip_status
    assert done.get("variable_proto_specific_hangup_cause") == f"sip:{sip_status}"
    assert done.get("variable_sip_hangup_disposition") == disposition
    assert [done.get(f"variable_{n}") for n in ("billsec", "billmsec", "answersec")] == ["0", "0", "0"]
    assert done.get("variable_answer_epoch") == "0" and done.get("variable_answer_stamp") is None
    c.wait_event("CHANNEL_STATE", uuid, Channel_State="CS_DESTROY")
    names = [e.name for e in c.events if e.uuid == uuid]
    assert "CHANNEL_ANSWER" not in names and "CHANNEL_UUID" not in names
    assert names[0] == "CHANNEL_OUTGOING" and names[-1] == "CHANNEL_STATE"


def test_no_answer_honours_originate_timeout(esl, sim):
    c = esl()
    uuid = new_uuid(480)
    started = gevent.get_hub().loop.now()
    reply = c.api("originate {origination_uuid=%s,originate_timeout=1}sofia/gateway/carrier/15551230480 &park()" % uuid)
    assert reply == "-ERR NO_ANSWER\n"
    assert 0.9 <= gevent.get_hub().loop.now() - started < 3
    done = hangup_complete(c, uuid)
    assert done.get("variable_sip_hangup_disposition") == "send_cancel"
    assert done.get("variable_progress_epoch") != "0" and done.get("variable_progress_stamp")
    labels = [e.label() for e in c.events if e.uuid == uuid]
    assert labels[6:9] == ["CHANNEL_PROGRESS", "CHANNEL_CALLSTATE(RINGING)", "CHANNEL_HANGUP"]
    # the API timeout argument works too
    assert c.api(f"originate sofia/gateway/carrier/15551230480 &park() XML default x 1 1") == "-ERR NO_ANSWER\n"


def test_no_response_is_timer_b_or_the_originate_timeout(esl, sim):
    c = esl(events=None)
    assert c.api("originate {originate_timeout=1}sofia/gateway/carrier/15551230408 &park()") == "-ERR NO_ANSWER\n"
    sim.set_outcome("5550408", Outcome(final=408, provisional=None, local=True, delay=0.05))
    assert c.api("originate sofia/gateway/carrier/5550408 &park()") == "-ERR RECOVERY_ON_TIMER_EXPIRE\n"


def test_answered_call_and_its_cdr(esl, sim):
    c = esl()
    uuid = new_uuid(1)
    assert c.api(f"originate {ORIG % uuid}sofia/gateway/carrier/15551230001 &park()") == f"+OK {uuid}\n"
    c.wait_event("CHANNEL_PARK", uuid)
    labels = [e.label() for e in c.events if e.uuid == uuid]
    assert labels[:14] == [
        "CHANNEL_OUTGOING", "CHANNEL_STATE(CS_INIT)", "CHANNEL_CREATE", "CHANNEL_ORIGINATE",
        "CHANNEL_STATE(CS_ROUTING)", "CHANNEL_STATE(CS_CONSUME_MEDIA)", "CHANNEL_PROGRESS",
        "CHANNEL_CALLSTATE(RINGING)", "CODEC", "CODEC", "CHANNEL_ANSWER", "CHANNEL_CALLSTATE(ACTIVE)",
        "CALL_UPDATE", "CHANNEL_STATE(CS_EXECUTE)"]
    park = c.wait_event("CHANNEL_PARK", uuid)
    assert park.get("Caller-Caller-ID-Number") == "15551230001"  # caller/callee flipped on answer
    assert park.get("Caller-Callee-ID-Name") == "gateway"
    channel = sim.channels[uuid]
    assert channel.variables["origination_caller_id_name"] == "gateway"
    assert channel.variables["sip_gateway_name"] == "carrier"
    gevent.sleep(1.05)  # billsec counts whole seconds of answered time
    assert c.api(f"uuid_kill {uuid} user_busy") == "+OK\n"
    done = hangup_complete(c, uuid)
    assert done.get("Hangup-Cause") == "USER_BUSY" and done.get("variable_hangup_cause_q850") == "17"
    assert done.get("variable_sip_hangup_disposition") == "send_bye"
    duration, billsec = int(done.get("variable_duration")), int(done.get("variable_billsec"))
    assert billsec >= 1 and duration >= billsec
    billmsec = int(done.get("variable_billmsec"))
    assert billmsec >= 1000 and int(done.get("variable_mduration")) >= billmsec
    assert int(done.get("variable_end_epoch")) - int(done.get("variable_start_epoch")) == duration
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", done.get("variable_answer_stamp"))
    assert done.get("variable_last_app") == "park"
    assert done.get("variable_caller_id") == '"Outbound Call" <15551230001>'
    assert uuid not in sim.channels and sim.history[uuid].events[-1] == "CHANNEL_STATE"


@pytest.mark.parametrize("cause, expected", [("17", "USER_BUSY"), ("call_rejected", "CALL_REJECTED"),
                                             ("no_such_cause", "NORMAL_CLEARING"), ("", "NORMAL_CLEARING")])
def test_uuid_kill_causes(esl, cause, expected):
    c = esl("CHANNEL_HANGUP")
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    assert c.api(f"uuid_kill {uuid} {cause}".strip()) == "+OK\n"
    assert c.wait_event("CHANNEL_HANGUP", uuid).get("Hangup-Cause") == expected


def test_remote_hangup_after_answer(esl, sim):
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230200 &park()").split()[1]
    done = hangup_complete(c, uuid)
    assert done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done.get("variable_sip_hangup_disposition") == "recv_bye"
    assert done.get("variable_sip_term_status") == "200"


def test_far_end_hangup_from_python(esl, sim):
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    sim.far_end_hangup(uuid, "user_busy")
    done = hangup_complete(c, uuid)
    assert done.get("Hangup-Cause") == "USER_BUSY"
    assert done.get("variable_sip_hangup_disposition") == "recv_bye"


def test_early_failures_create_no_channel(esl, sim):
    c = esl()
    assert c.api("originate sofia/gateway/nosuch/15551230001 &park()") == "-ERR INVALID_GATEWAY\n"
    assert c.api("originate error/user_busy &park()") == "-ERR USER_BUSY\n"
    assert c.api("originate") .startswith("-USAGE: <call url> <exten>")
    c.command("bgapi originate error/no_answer &park()")
    assert c.wait_event("BACKGROUND_JOB").body == "-ERR NO_ANSWER\n"
    assert not [e for e in c.events if e.name.startswith("CHANNEL_")]
    assert not sim.history


def test_bgapi_originate_background_job(esl):
    c = esl()
    uuid = new_uuid(7)
    reply = c.command(f"bgapi originate {ORIG % uuid}sofia/external/1234@127.0.0.1:5090 &park()",
                      {"Job-UUID": "11111111-1111-4111-8111-111111111111"})
    assert reply.reply_text == "+OK Job-UUID: 11111111-1111-4111-8111-111111111111"
    job = c.wait_event("BACKGROUND_JOB")
    assert job.body == f"+OK {uuid}\n" and job.get("Job-Command") == "originate"
    assert job.get("Job-Command-Arg").endswith("sofia/external/1234@127.0.0.1:5090 &park()")
    names = [e.name for e in c.events]
    assert names.index("CALL_UPDATE") < names.index("BACKGROUND_JOB")
    park = c.wait_event("CHANNEL_PARK", uuid)
    assert park.get("Channel-Name") == "sofia/external/1234@127.0.0.1:5090"
    c.api(f"uuid_kill {uuid}")


def test_originate_to_an_extension_routes_it(esl, sim):
    sim.add_route("default", "5000", [("answer", ""), ("park", "")])
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 5000 XML default").split()[1]
    assert c.wait_event("CHANNEL_EXECUTE", uuid, count=2).get("Application") == "park"
    assert [e.label() for e in c.events if e.uuid == uuid and e.name == "CHANNEL_STATE"][-2:] == [
        "CHANNEL_STATE(CS_ROUTING)", "CHANNEL_STATE(CS_EXECUTE)"]
    c.api(f"uuid_kill {uuid}")


def test_loopback_originate_answers_through_the_dialplan(esl, sim):
    c = esl()
    uuid = new_uuid(9)
    assert c.api(f"originate {ORIG % uuid}loopback/5555/default &park()") == f"+OK {uuid}\n"
    first = next(e for e in c.events if e.uuid == uuid)
    assert first.name == "CHANNEL_UUID"
    b = next(ch for ch in sim.channels.values() if ch.name == "loopback/5555-b")
    c.wait_event("CHANNEL_PARK", b.uuid)
    c.api(f"uuid_kill {uuid}")
    assert hangup_complete(c, b.uuid).get("Hangup-Cause") == "NORMAL_CLEARING"


# -- mid-call commands -------------------------------------------------------------------------------

@pytest.fixture
def call(esl, sim):
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    c.wait_event("CHANNEL_PARK", uuid)
    return c, uuid


def test_setvar_getvar_exists(call, sim):
    c, uuid = call
    assert c.api(f"uuid_exists {uuid}") == "true"
    assert c.api(f"uuid_getvar {uuid} nope") == "_undef_"
    assert c.api(f"uuid_setvar {uuid} my_var hello world") == "+OK\n"
    assert c.api(f"uuid_getvar {uuid} my_var") == "hello world"
    assert c.api(f"uuid_setvar_multi {uuid} a=1;b=two") == "+OK\n"
    assert (sim.channels[uuid].variables["a"], sim.channels[uuid].variables["b"]) == ("1", "two")
    assert c.api(f"uuid_setvar {uuid} my_var") == "+OK\n"
    assert c.api(f"uuid_getvar {uuid} my_var") == "_undef_"
    assert c.api(f"uuid_getvar {uuid}") == "-USAGE: <uuid> <var>\n"
    assert list(sim.channels[uuid].variables)[-2:] == ["a", "b"]  # a set appends


def test_uuid_dump_gives_the_answer_time_and_refuses_an_unknown_channel(call, sim):
    """mod_commands.c ``uuid_dump_function``: the channel's CHANNEL_DATA, its caller profile's
    times included; ``-ERR No such channel!`` for a uuid FreeSWITCH does not have."""
    c, uuid = call
    dump = json.loads(c.api(f"uuid_dump {uuid} json"))
    assert dump["Event-Name"] == "CHANNEL_DATA" and dump["Unique-ID"] == uuid
    assert dump["Caller-Channel-Answered-Time"] == str(sim.channels[uuid].profile.times.answered) != "0"
    assert c.api("uuid_dump 00000000-0000-0000-0000-000000000000 json") == "-ERR No such channel!\n"
    assert c.api("uuid_dump") == "-USAGE: <uuid> [format]\n"


def test_broadcast_break_and_played(call, sim, tmp_path):
    c, uuid = call
    wav = tmp_path / "prompt.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)  # 0.1 s
    assert c.api(f"uuid_broadcast {uuid} {wav} aleg") == "+OK Message sent\n"
    stop = c.wait_event("PLAYBACK_STOP", uuid)
    assert stop.get("Playback-Status") == "done" and stop.get("Playback-File-Path") == str(wav)
    assert 90 <= int(stop.get("variable_playback_ms")) <= 100
    c.wait_event("PRIVATE_COMMAND", uuid)
    assert c.api(f"uuid_broadcast {uuid} playback::silence_stream://-1 aleg") == "+OK Message sent\n"
    c.wait_event("PLAYBACK_START", uuid, count=2)
    assert c.api(f"uuid_break {uuid} all") == "+OK\n"
    stop = c.wait_event("PLAYBACK_STOP", uuid, count=2)
    assert stop.get("Playback-Status") == "break"
    done = c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, count=2)
    assert done.get("Application-Response") == "FILE PLAYED"
    assert sim.channels[uuid].played == [str(wav), "silence_stream://-1"]
    assert c.api(f"uuid_broadcast {uuid} 'speak::flite|kal|hello there' aleg") == "+OK Message sent\n"
    c.wait_event("PRIVATE_COMMAND", uuid, count=3)
    assert sim.channels[uuid].spoken == ["hello there"]


def test_broadcast_with_hangup_cause(call, sim):
    c, uuid = call
    c.api(f"uuid_broadcast {uuid} playback!user_busy::tone_stream://%(50,0,440) aleg")
    assert hangup_complete(c, uuid).get("Hangup-Cause") == "USER_BUSY"


def test_record_writes_a_wav(call, sim, tmp_path):
    c, uuid = call
    path = tmp_path / "rec" / "call.wav"
    assert c.api(f"uuid_record {uuid} start {path}") == "+OK Success\n"
    assert c.wait_event("RECORD_START", uuid).get("Record-File-Path") == str(path)
    c.api(f"uuid_broadcast {uuid} tone_stream://%(300,0,440) aleg")
    c.wait_event("PRIVATE_COMMAND", uuid)
    assert c.api(f"uuid_record {uuid} stop all") == "+OK Success\n"
    stop = c.wait_event("RECORD_STOP", uuid)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        seconds = w.getnframes() / 8000
    assert 0.3 <= seconds < 1.5
    assert stop.get("variable_record_samples") == str(int(round(seconds * 8000)))
    assert int(stop.get("variable_record_file_size")) == os.path.getsize(path)
    assert c.api(f"uuid_record {uuid} stop {path}") == "-ERR Cannot stop record session!\n"


def test_dtmf_in_and_out(call, sim):
    c, uuid = call
    assert c.api(f"uuid_recv_dtmf {uuid} 1#") == f"+OK {uuid} received DTMF 1#.\n"
    second = c.wait_event("DTMF", uuid, count=2)
    assert second.get("DTMF-Digit") == "#" and second.get("DTMF-Source") == "APP"
    assert b"\nDTMF-Digit: %23\n" in bytes(c.wire)
    assert "variable_last_dtmf_duration" not in second.header_names  # DTMF carries no variables
    assert c.api(f"uuid_send_dtmf {uuid} 45") == f"+OK {uuid} sent DTMF 45.\n"
    sim.press(uuid, "7")
    assert c.wait_event("DTMF", uuid, count=3).get("DTMF-Source") == "RTP"
    assert sim.channels[uuid].dtmf == ["1", "#", "7"] and sim.channels[uuid].sent_dtmf == ["45"]
    c.api(f"uuid_kill {uuid}")
    assert hangup_complete(c, uuid).get("variable_digits_dialed") == "1#7"


def test_transfer_updates_profile_and_history(call, sim):
    c, uuid = call
    sim.add_route("default", "1000", [("answer", ""), ("park", "")])
    assert c.api(f"uuid_transfer {uuid} 1000") == "+OK\n"
    sim.wait_for(lambda: sim.channels[uuid].destination_number == "1000")
    unpark = c.wait_event("CHANNEL_UNPARK", uuid)
    assert unpark.get("Caller-Destination-Number") == "1000" and unpark.get("Caller-RDNIS") == "15551230001"
    assert unpark.get("Caller-Profile-Index") == "2"
    assert re.fullmatch(r"\d+:[0-9a-f-]{36}:bl_xfer:1000/default/XML", unpark.get("variable_transfer_history"))
    c.wait_event("CHANNEL_PARK", uuid, count=2)
    assert c.api(f"uuid_transfer {uuid} 'm:^:playback:tone_stream://%(50,0,440)^hangup:user_busy' inline") == "+OK\n"
    assert hangup_complete(c, uuid).get("Hangup-Cause") == "USER_BUSY"


def test_unknown_uuid_replies(esl):
    c = esl(events=None)
    x = "667ffa5c-1160-45ef-9e60-f181a619704f"
    assert c.api(f"uuid_kill {x}") == "-ERR No such channel!\n"
    assert c.api(f"uuid_transfer {x} 9196 XML public") == "-ERR No such channel!\n"
    assert c.api(f"uuid_answer {x}") == "-ERROR\n"
    assert c.api(f"uuid_broadcast {x} /tmp/x.wav aleg") == "-ERR invalid uuid\n"
    assert c.api(f"uuid_record {x} start /tmp/x.wav") == "-ERR Cannot locate session!\n"
    assert c.api(f"uuid_recv_dtmf {x} 1") == "-ERR Cannot locate session!\n"
    assert c.api(f"uuid_park {x}") == "-ERR No such channel!\n"
    assert c.api(f"uuid_break {x} all") == "-ERR No such channel!\n"
    assert c.api(f"uuid_exists {x}") == "false"


# -- sendmsg and applications ------------------------------------------------------------------------

def test_sendmsg_execute_with_event_uuid(call, sim):
    c, uuid = call
    reply = c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "playback",
                                          "execute-app-arg": "tone_stream://%(50,0,440)",
                                          "event-uuid": "abc-123", "event-lock": "true"})
    assert reply.reply_text == "+OK"
    start = c.wait_event("CHANNEL_EXECUTE", uuid, count=2)
    assert (start.get("Application"), start.get("Application-UUID")) == ("playback", "abc-123")
    done = c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="playback")
    assert done.get("Application-UUID") == "abc-123" and done.get("Application-Response") == "FILE PLAYED"
    private = c.wait_event("PRIVATE_COMMAND", uuid)
    assert private.items[0] == ("Command", f"sendmsg {uuid}")
    c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "set"}, body="x_var=a\nb")
    c.wait_event("PRIVATE_COMMAND", uuid, count=2)
    assert sim.channels[uuid].variables["x_var"] == "a\nb"
    c.command(f"sendmsg {uuid}", {"call-command": "hangup", "hangup-cause": "CALL_REJECTED"})
    assert hangup_complete(c, uuid).get("Hangup-Cause") == "CALL_REJECTED"


def test_play_and_get_digits(call, sim):
    c, uuid = call
    c.command(f"sendmsg {uuid}", {
        "call-command": "execute", "execute-app-name": "play_and_get_digits",
        "execute-app-arg": "1 4 2 3000 # silence_stream://5000 silence_stream://250 code \\d+ 1000"})
    c.wait_event("PLAYBACK_START", uuid)
    sim.press(uuid, "42#")
    done = c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="play_and_get_digits")
    assert done.get("variable_code") == "42"
    assert c.wait_event("PLAYBACK_STOP", uuid).get("Playback-Status") == "break"


def test_play_and_get_digits_invalid_then_failure(call, sim):
    c, uuid = call
    c.command(f"sendmsg {uuid}", {
        "call-command": "execute", "execute-app-name": "play_and_get_digits",
        "execute-app-arg": "2 2 1 1000 # silence_stream://100 silence_stream://100 pin ^[0-9]{2}$ 500"})
    c.wait_event("PLAYBACK_START", uuid)
    sim.press(uuid, "*")
    done = c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="play_and_get_digits", timeout=5)
    assert done.get("variable_pin") is None and done.get("variable_pin_invalid") == "*"


def test_speak_and_sleep(call, sim):
    c, uuid = call
    sim.speak_chars_per_second = 200
    c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "speak",
                                  "execute-app-arg": "flite|kal|Your code is 1 2 3"})
    c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="speak")
    assert sim.channels[uuid].spoken == ["Your code is 1 2 3"]
    c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "sleep", "execute-app-arg": "50"})
    c.wait_event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="sleep")


def test_bridge_application(call, sim):
    c, uuid = call
    c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "bridge",
                                  "execute-app-arg": "sofia/gateway/carrier/15559990001"})
    bridge = c.wait_event("CHANNEL_BRIDGE", uuid)
    other = bridge.get("Bridge-B-Unique-ID")
    assert bridge.get("Other-Type") == "originatee" and bridge.get("Other-Leg-Unique-ID") == other
    sim.far_end_hangup(other)
    c.wait_event("CHANNEL_UNBRIDGE", uuid)
    hangup_complete(c, other)
    assert c.api(f"uuid_exists {uuid}") == "true"  # no hangup_after_bridge: the A leg goes on
    c.api(f"uuid_setvar {uuid} hangup_after_bridge true")
    c.command(f"sendmsg {uuid}", {"call-command": "execute", "execute-app-name": "bridge",
                                  "execute-app-arg": "sofia/gateway/carrier/15559990002"})
    other = c.wait_event("CHANNEL_BRIDGE", uuid, count=2).get("Bridge-B-Unique-ID")
    sim.far_end_hangup(other, "USER_BUSY")
    assert hangup_complete(c, uuid).get("Hangup-Cause") == "USER_BUSY"


def test_bridge_failure_hangs_up_the_a_leg(esl, sim):
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &bridge(sofia/gateway/carrier/15559990486)").split()[1]
    done = hangup_complete(c, uuid)
    assert done.get("Hangup-Cause") == "USER_BUSY"
    assert done.get("variable_originate_failed_cause") == "USER_BUSY"


# -- inbound -----------------------------------------------------------------------------------------

def test_inject_inbound_parks_unanswered(esl, sim):
    c = esl()
    uuid = sim.inject_inbound("+14155550100", "+15550001111", "Alice", variables={"sip_h_X-Test": "1"})
    park = c.wait_event("CHANNEL_PARK", uuid)
    assert park.get("Answer-State") == "ringing" and park.get("Call-Direction") == "inbound"
    assert park.get("Caller-Caller-ID-Name") == "Alice" and park.get("variable_sip_h_X-Test") == "1"
    assert c.api(f"uuid_answer {uuid}") == "+OK\n"
    c.wait_event("CHANNEL_ANSWER", uuid)
    sim.far_end_hangup(uuid)
    done = hangup_complete(c, uuid)
    assert done.get("variable_sip_hangup_disposition") == "recv_bye"


def test_inject_inbound_answered(esl, sim):
    c = esl()
    uuid = sim.inject_inbound("5000", "5551000", answer=True)
    c.wait_event("CHANNEL_PARK", uuid)
    names = [e.name for e in c.events if e.uuid == uuid]
    assert names.index("CHANNEL_ANSWER") < names.index("CHANNEL_PARK")
    c.api(f"uuid_kill {uuid}")
    assert hangup_complete(c, uuid).get("variable_sip_hangup_disposition") == "send_bye"


@pytest.mark.skipif(not os.path.isdir(DIALPLAN_DIR), reason="no dialplan/ directory")
def test_inject_inbound_through_the_shipped_dialplan(esl):
    sim = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0, dialplan_dir=DIALPLAN_DIR)
    sim.start()
    try:
        c = RawClient(sim.port)
        c.auth()
        c.command("event plain ALL")
        uuid = sim.inject_inbound("+14155550100", "+15550001111")
        park = c.wait_event("CHANNEL_PARK", uuid)
        assert park.get("variable_gateway_did") == "+14155550100"
        bad = sim.inject_inbound("12", "+15550001111")
        assert hangup_complete(c, bad).get("Hangup-Cause") == "UNALLOCATED_NUMBER"
        c.close()
    finally:
        sim.stop()


# -- show / status -----------------------------------------------------------------------------------

def test_show_channels_and_status(call, sim):
    c, uuid = call
    rows = __import__("json").loads(c.api("show channels as json"))
    assert rows["row_count"] == 1 and rows["rows"][0]["uuid"] == uuid
    assert rows["rows"][0]["application"] == "park" and rows["rows"][0]["callstate"] == "ACTIVE"
    csv = c.api("show channels")
    assert csv.startswith("uuid,direction,created,") and csv.endswith("\n\n1 total.\n")
    assert c.api("show channels count") == "\n1 total.\n"
    assert __import__("json").loads(c.api("show calls as json"))["row_count"] == 1
    status = c.api("status")
    assert re.fullmatch(
        r"UP 0 years, 0 days, 0 hours, 0 minutes, \d+ seconds?, \d+ milliseconds?, \d+ microseconds?\n"
        r"FreeSWITCH \(Version 1\.10\.12-release git a88d069 2024-08-02 21:02:27Z 64bit\) is ready\n"
        r"\d+ session\(s\) since startup\n1 session\(s\) - peak \d+, last 5min \d+ \n"
        r"\d+ session\(s\) per Sec out of max 30, peak \d+, last 5min \d+ \n1000 session\(s\) max\n"
        r"min idle cpu 0\.00/\d+\.\d\d\nCurrent Stack Size/Max 240K/8192K\n", status)
    c.api(f"uuid_kill {uuid}")
    sim.wait_gone(uuid)
    assert c.api("show channels as json") == '{"row_count": 0}\n'
    assert c.api("sofia status gateway carrier").splitlines()[1] == "Name    \tcarrier"
    assert c.api("sofia status gateway nope") == "Invalid Gateway!\n"


# -- crash, restart, slow and stuck ------------------------------------------------------------------

def test_stop_is_a_crash_and_start_a_fresh_switch(sim, esl):
    c = esl()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    c.wait_event("CHANNEL_PARK", uuid)
    port, core = sim.port, sim.core.uuid
    before = len(c.wire)
    sim.stop()
    assert c.eof.wait(5)
    assert len(c.wire) == before  # not one more byte
    assert sim.channels == {}
    sim.start()
    assert sim.port == port and sim.core.uuid != core
    again = RawClient(sim.port)
    again.auth()
    assert again.api(f"uuid_exists {uuid}") == "false"
    again.command("event plain CHANNEL_CREATE")
    second = again.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    assert again.wait_event("CHANNEL_CREATE", second).get("Core-UUID") == sim.core.uuid
    again.close()


def test_write_delay_and_stopped_reading(sim, esl):
    c = esl(events=None)
    sim.set_write_delay(0.2)
    started = gevent.get_hub().loop.now()
    assert c.api("uuid_exists x") == "false"
    assert gevent.get_hub().loop.now() - started >= 0.2
    sim.set_write_delay(0)
    sim.pause_reading()
    c.send("api uuid_exists x")
    with pytest.raises(TimeoutError):
        c.reply(timeout=0.3)
    sim.resume_reading()
    assert c.reply(timeout=5).text == "false"


def test_wait_for_is_event_driven(sim):
    results = []
    gevent.spawn_later(0.05, lambda: results.append(sim.inject_inbound("9201", "5551000")))
    channel = sim.wait_for(lambda: results and sim.channels.get(results[0]), timeout=5)
    sim.wait_event(channel.uuid, "CHANNEL_PARK")
    with pytest.raises(TimeoutError):
        sim.wait_for(lambda: False, timeout=0.05)


def test_cli_subparser():
    parser = argparse.ArgumentParser()
    add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulator", "--listen", "127.0.0.1:18021", "--password", "x", "--answer-delay", "5",
                              "--dialplan", "dialplan"])
    assert (args.listen, args.password) == (("127.0.0.1", 18021), "x")
    assert (args.answer_delay, args.dialplan) == (5.0, "dialplan")
    assert callable(args.func)


def test_user_endpoint_and_uuid_park(esl, sim):
    sim.add_route("default", "7000", [("answer", ""), ("playback", "silence_stream://-1")])
    c = esl()
    uuid = c.api("originate user/1001 7000").split()[1]
    assert sim.channels[uuid].name == "sofia/internal/1001@127.0.0.1"
    c.wait_event("PLAYBACK_START", uuid)
    assert c.api(f"uuid_park {uuid}") == "+OK\n"
    assert c.wait_event("CHANNEL_PARK", uuid).get("Channel-State") == "CS_PARK"
    assert c.wait_event("PLAYBACK_STOP", uuid).get("Playback-Status") == "done"
    assert c.api(f"uuid_kill {uuid}") == "+OK\n"
    hangup_complete(c, uuid)


def test_xml_event_format(esl):
    c = esl(events=None)
    assert c.command("event xml CHANNEL_CREATE").reply_text == "+OK event listener enabled xml"
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    c.wait_for(lambda: [m for m in c.messages if m.content_type == "text/event-xml"])
    body = next(m for m in c.messages if m.content_type == "text/event-xml").body.decode()
    assert body.startswith("<event>") and f"<Unique-ID>{uuid}</Unique-ID>" in body
    c.api(f"uuid_kill {uuid}")


def test_set_outcome_overrides_the_rule(esl, sim):
    sim.set_outcome("+15551230001", Outcome(final=603, provisional=180, delay=0.01))
    c = esl(events=None)
    assert c.api("originate sofia/gateway/carrier/15551230001 &park()") == "-ERR CALL_REJECTED\n"
    sim.clear_outcomes()
    uuid = c.api("originate sofia/gateway/carrier/15551230001 &park()").split()[1]
    c.api(f"uuid_kill {uuid}")
