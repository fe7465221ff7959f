"""No client text reaches a FreeSWITCH application argument able to expand or split.

The simulator expands application arguments as FreeSWITCH 1.10.12 does (channel, profile
and global variables, ``<API Execute Permission Denied>`` with api-expansion off, the
escapes), which the first tests pin down; the others send every form of injection through
the API and read the exact bytes the simulator received and what it spoke.
"""
from __future__ import annotations

import re
import uuid as uuidlib

import pytest

from api_support import account_a, key_a  # noqa: F401 -- fixtures
from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, wait_final, wait_script
from gateway.calls.controller import CallError
from gateway.esl.commands import quote_var
from gateway.esl import app_args
from gateway.esl.protocol import CommandReader
from gateway.models import OtpRequest, PublicRun
from sim_support import RawClient

ORIG = "{origination_uuid=%s,origination_caller_id_name=gateway,origination_caller_id_number=5551000}"
DENIED = "<API Execute Permission Denied>"
#: Each way of reaching FreeSWITCH's expansion or an application's separators.
INJECTIONS = (
    "${esl_password}",
    "$${esl_password}",
    "${system(touch /tmp/voicegw-injected)}",
    "${uuid_kill(all)}",
    "${uuid_kill all}",
    "\\${esl_password}",
    "$\\{esl_password}",
    "{voice=awb}",
    "a|b|c",
    "line\nbreak\r",
    "%[x=y]",
)


# -- the simulator expands as FreeSWITCH does ------------------------------------------------
@pytest.fixture
def parked(sim):
    """A parked loopback call on the simulator, a control connection and a connection that
    only listens (events and info logs)."""
    sim.speak_chars_per_second = 1000.0
    control, listener = RawClient(sim.port), RawClient(sim.port)
    for client in (control, listener):
        client.auth()
    listener.command("event plain ALL")
    assert listener.command("log info").reply_text == "+OK log level info [6]"
    call_uuid = str(uuidlib.uuid4())
    assert control.api(f"originate {ORIG % call_uuid}loopback/5555/default &park()") == f"+OK {call_uuid}\n"
    listener.wait_event("CHANNEL_PARK", call_uuid)
    yield sim, control, listener, call_uuid
    control.close()
    listener.close()


def command_reply(client, line):
    """The reply to ``line`` on a connection that also receives log lines (RawClient queues
    every message that is not an event)."""
    client.send(line)
    while True:
        message = client.reply()
        if message.content_type == "command/reply":
            return message


def speak(control, listener, call_uuid, text, count=1):
    control.command(f"sendmsg {call_uuid}", {"call-command": "execute", "execute-app-name": "speak",
                                             "execute-app-arg": f"flite|kal|{text}"})
    return listener.wait_event("CHANNEL_EXECUTE_COMPLETE", call_uuid, count=count, Application="speak")


def test_simulator_expands_application_arguments_like_freeswitch(parked):
    sim, control, listener, call_uuid = parked
    done = speak(control, listener, call_uuid,
                 "${esl_password} $${esl_password} ${system(touch /tmp/x)} ${uuid_kill all} \\${esl_password} "
                 "${destination_number} ${hostname} ${nothing}. \\'50$ off")
    said = f"ClueCon ClueCon {DENIED} {DENIED} ${{esl_password}} 5555 {sim.hostname} . 50$ off"
    assert sim.history[call_uuid].spoken == [said]
    assert done.get("Application-Data") == f"flite|kal|{said}"
    started = listener.wait_event("CHANNEL_EXECUTE", call_uuid, Application="speak")
    assert started.get("Application-Data") == f"flite|kal|{said}"
    # The argument as expanded is also in what FreeSWITCH logs at info (switch_core_session_exec).
    logs = [m for m in listener.messages if m.content_type == "log/data"]
    speak_log = next(m for m in logs if b"speak(" in m.body)
    channel_name = sim.history[call_uuid].name
    assert speak_log.body.decode() == f"EXECUTE [depth=1] {channel_name} speak(flite|kal|{said})\n"
    assert [(k, speak_log.headers.get(k)) for k in ("Log-Level", "Text-Channel", "Log-File", "Log-Func", "Log-Line",
                                               "User-Data")] == [
        ("Log-Level", "6"), ("Text-Channel", "1"), ("Log-File", "switch_core_session.c"),
        ("Log-Func", "switch_core_session_exec"), ("Log-Line", "2902"), ("User-Data", call_uuid)]
    # app_disable_expand_variables leaves the argument as sent; a {…} prefix is TTS parameters.
    control.api(f"uuid_setvar {call_uuid} app_disable_expand_variables true")
    speak(control, listener, call_uuid, "{voice=awb}${esl_password}", count=2)
    assert sim.history[call_uuid].spoken[1] == "${esl_password}"


def test_log_lines_go_only_to_connections_that_asked(parked):
    sim, control, listener, call_uuid = parked
    quiet = RawClient(sim.port)
    quiet.auth()
    quiet.command("event plain ALL")
    try:
        speak(control, listener, call_uuid, "hello")
        quiet.wait_event("CHANNEL_EXECUTE_COMPLETE", call_uuid, Application="speak")
        assert not [m for m in quiet.messages if m.content_type == "log/data"]
        assert not [m for m in control.messages if m.content_type == "log/data"]
        assert command_reply(listener, "nolog").reply_text == "+OK no longer logging"
        before = len([m for m in listener.messages if m.content_type == "log/data"])
        speak(control, listener, call_uuid, "again", count=2)
        assert len([m for m in listener.messages if m.content_type == "log/data"]) == before
    finally:
        quiet.close()


# -- the checks ---------------------------------------------------------------------------------
def test_speech_text_drops_what_freeswitch_reads():
    for text in INJECTIONS:
        cleaned = app_args.speech_text(text)
        assert not re.search(r"[${}\\|\r\n]", cleaned), (text, cleaned)
        assert app_args.check(f"flite|kal|{cleaned}")
    assert app_args.speech_text("  Your  code\tis\n") == "Your code is"
    assert app_args.speech_text("50% off, call now!") == "50% off, call now!"


@pytest.mark.parametrize("arg", ["${esl_password}", "$${x}", "$\\{x}", "a\\'b", "a\\\\b", "x\ny", "x\x00",
                                 "%[a=b]x", "%,[a=b]x"])
def test_check_refuses_what_would_expand_or_split(arg):
    with pytest.raises(app_args.UnsafeArgument):
        app_args.check(arg)


def test_check_lets_the_gateways_own_arguments_through():
    pgd = "1 1 1 5000 # /m/clips/1/ab.wav silence_stream://250 gateway_press1_digit ^[19*#]$ 5000"
    for arg in ("", pgd, "flite|kal|Your code is", "/m/recordings/1/2026/12/u.wav", "50% off", "$5", "x choice \\d"):
        assert app_args.check(arg) == arg


@pytest.mark.parametrize("path", ["relative/a.wav", "/media dir/a.wav", "/m/${x}.wav", "/m/../etc/passwd",
                                  "/m/a.wav\n", "/m/{a=b}x.wav", "/m/a!b.wav", "/m/a'b.wav", "/m/\u00e9.wav"])
def test_file_path_refuses_what_freeswitch_would_read_as_syntax(path):
    with pytest.raises(app_args.UnsafeArgument):
        app_args.file_path(path)


def test_dial_string_values_lose_reference_characters():
    assert quote_var("${esl_password}") == "esl_password"
    assert quote_var("$${x} A, B") == "'x A\\, B'"
    assert quote_var("it's \\ {me}\n") == "'its  me'"


# -- through the API, on the wire ----------------------------------------------------------------
def sent_commands(sim) -> list:
    return CommandReader().feed(bytes(sim.received))


def app_args_sent(sim, app: str) -> list[str]:
    return [cmd.header("execute-app-arg") for cmd in sent_commands(sim)
            if cmd.line.startswith("sendmsg") and cmd.header("execute-app-name") == app]


#: What each injection becomes in the text ``speak`` is given.
SPOKEN_AS = {
    "${esl_password}": "esl_password",
    "$${esl_password}": "esl_password",
    "${system(touch /tmp/voicegw-injected)}": "system(touch /tmp/voicegw-injected)",
    "${uuid_kill(all)}": "uuid_kill(all)",
    "${uuid_kill all}": "uuid_kill all",
    "\\${esl_password}": "esl_password",
    "$\\{esl_password}": "esl_password",
    "{voice=awb}": "voice=awb",
    "a|b|c": "a b c",
    "%[x=y]": "%[x=y]",
}


def test_otp_message_injection_never_reaches_freeswitch(client, gw, sim, pair, india):
    """Each form through ``/otp/send``: the bytes sent hold no reference, and the simulator,
    which expands as FreeSWITCH does, speaks no password and runs no API command."""
    sim.received, sim.play_speed = bytearray(), 20.0
    calls = []
    for index, form in enumerate(SPOKEN_AS):
        response = client.post(f"{BASE}/otp/send", headers=auth(pair),
                               json={"number": f"98123400{index:02d}", "code": "4321",
                                     "message": f"Hi {form} code {{code}} bye {form}"})
        assert response.status_code == 200, (form, response.json)
        calls.append(OtpRequest.get_by_id(response.json["request_id"]).call_uuid)
    for call_uuid in calls:
        wait_script(gw, call_uuid)
    spoken = {form: sim.history[call_uuid].spoken for form, call_uuid in zip(SPOKEN_AS, calls)}
    assert spoken == {form: [f"Hi {text} code", f"bye {text}"] for form, text in SPOKEN_AS.items()}
    assert sorted(app_args_sent(sim, "speak")) == sorted(
        arg for text in SPOKEN_AS.values() for arg in (f"flite|kal|Hi {text} code", f"flite|kal|bye {text}"))
    for cmd in sent_commands(sim):
        for name, value in cmd.headers.items():
            assert not re.search(r"[${}\\]", value), (cmd.line, name, value)
    assert not any("ClueCon" in text or "Permission Denied" in text for said in spoken.values() for text in said)
    # A control character never gets that far: the API refuses the message.
    refused = client.post(f"{BASE}/otp/send", headers=auth(pair),
                          json={"number": "9812340099", "message": "line\nbreak {code}"})
    assert refused.status_code == 400 and "message" in refused.json["details"]


def test_otp_message_injection_through_post_calls(client, gw, sim, pair, india):
    sim.received = bytearray()
    response = client.post(f"{BASE}/calls", headers=auth(pair), json={
        "type": "otp", "number": "9812340100", "code": "4321", "message": "${esl_password} {code} $${esl_password}"})
    assert response.status_code == 200, response.json
    call_uuid = OtpRequest.get_by_id(response.json["request_id"]).call_uuid
    wait_script(gw, call_uuid)
    assert app_args_sent(sim, "speak") == ["flite|kal|esl_password", "flite|kal|esl_password"]
    assert sim.history[call_uuid].spoken == ["esl_password", "esl_password"]


def test_caller_id_name_in_the_dial_string_cannot_expand(gw, sim, account_a, key_a):
    sim.received = bytearray()
    client = gw.app.test_client()
    response = client.post("/api/calls", headers={"X-API-KEY": key_a}, json={
        "destination_number": "+12125550101", "caller_id_name": "${esl_password}$${x}"})
    assert response.status_code == 200, response.get_json()
    originate = sim.wait_for(lambda: next((cmd for cmd in sent_commands(sim)
                                           if cmd.line.startswith("bgapi originate")), None))
    assert "origination_caller_id_name=esl_passwordx," in originate.line
    assert not re.search(r"[$\\]", originate.line)


def test_a_clip_path_freeswitch_cannot_take_is_never_sent(client, gw, sim, pair, india, clip):
    sim.received = bytearray()
    response = client.post(f"{BASE}/calls", headers=auth(pair),
                           json={"type": "audio_blast", "number": "9812340200", "audio_id": clip.id})
    run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
    PublicRun.update(audio_path="/tmp/a b/${esl_password}.wav").where(PublicRun.id == run.id).execute()
    wait_script(gw, run.call_uuid)
    assert wait_final(gw, run.call_uuid).status == "completed"  # hung up at once
    assert app_args_sent(sim, "playback") == []
    assert b"esl_password" not in bytes(sim.received)


def test_execute_refuses_an_unsafe_argument_and_sends_nothing(client, gw, sim, pair, india, clip):
    response = client.post(f"{BASE}/calls", headers=auth(pair),
                           json={"type": "audio_blast", "number": "9812340300", "audio_id": clip.id})
    run = PublicRun.get_by_id(int(response.json["unique_id"][4:]))
    sim.wait_event(run.call_uuid, "CHANNEL_ANSWER")
    sim.received = bytearray()
    for arg in ("${esl_password}", "flite|kal|a\nb", "a\\'b"):
        with pytest.raises(CallError) as refused:
            gw.controller.execute(run.call_uuid, "speak", arg)
        assert refused.value.code == 400
    assert app_args_sent(sim, "speak") == [] and b"esl_password" not in bytes(sim.received)
