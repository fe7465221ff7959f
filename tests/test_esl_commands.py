"""The command builders (``gateway.esl.commands``): the exact text each command gets, and
every argument FreeSWITCH would read differently from what was meant refused before
anything is built."""

import pytest

from gateway.esl import commands
from gateway.esl.app_args import UnsafeArgument

U = "6f1c2c0e-6f6e-4a43-9d3b-1f0b7c1e2d3a"


def test_channel_commands_are_built_as_freeswitch_parses_them():
    assert commands.kill(U) == f"uuid_kill {U}"
    assert commands.kill(U, "USER_BUSY") == f"uuid_kill {U} USER_BUSY"
    assert commands.answer(U) == f"uuid_answer {U}"
    assert commands.transfer(U, "1000", "XML", "gateway_transfer") == f"uuid_transfer {U} 1000 XML gateway_transfer"
    assert commands.setvar(U, "gateway_transfer_uri", "sip:a@b.example") == (
        f"uuid_setvar {U} gateway_transfer_uri sip:a@b.example")
    assert commands.setvar(U, "note", "two words") == f"uuid_setvar {U} note two words"  # the rest of the line
    assert commands.unsetvar(U, "gateway_transfer_result") == f"uuid_setvar {U} gateway_transfer_result"
    assert commands.getvar(U, "other_loopback_leg_uuid") == f"uuid_getvar {U} other_loopback_leg_uuid"
    assert commands.dump(U) == f"uuid_dump {U} json"
    assert commands.break_playback(U) == f"uuid_break {U} all"
    assert commands.record(U, "start", "/var/media/probe/x.wav") == f"uuid_record {U} start /var/media/probe/x.wav"
    assert commands.audio_stream_start(U, "ws://127.0.0.1:9000/s/abc?t=1", "mono", "8k", '{"a":1}') == (
        f'uuid_audio_stream {U} start ws://127.0.0.1:9000/s/abc?t=1 mono 8k {{"a":1}}')
    assert commands.audio_stream_start(U, "ws://h/s") == f"uuid_audio_stream {U} start ws://h/s mono 8k"
    assert commands.audio_stream_stop(U) == f"uuid_audio_stream {U} stop"


def test_switch_and_connection_commands():
    assert commands.SHOW_CHANNELS == "show channels as json"
    assert commands.global_getvar("gateway_carrier") == "global_getvar gateway_carrier"
    assert commands.module_exists("mod_audio_stream") == "module_exists mod_audio_stream"
    assert commands.locate_context("gateway_public") == "xml_locate dialplan context name gateway_public"
    assert commands.subscribe("CHANNEL_ANSWER CUSTOM mod_audio_stream::play") == (
        "event plain CHANNEL_ANSWER CUSTOM mod_audio_stream::play")
    assert commands.filter_events("Unique-ID", U) == f"filter Unique-ID {U}"


def test_execute_headers():
    assert commands.execute("playback", "/m/a.wav", "app-1") == {
        "call-command": "execute", "execute-app-name": "playback", "event-uuid": "app-1",
        "execute-app-arg": "/m/a.wav", "event-lock": "true"}
    assert commands.execute("answer", event_lock=False) == {"call-command": "execute", "execute-app-name": "answer"}


def test_originate_quotes_each_value():
    line = commands.originate({"origination_uuid": U, "origination_caller_id_name": "Jane, ${x} Doe"},
                              "loopback/5555/default")
    assert line == f"originate {{origination_uuid={U},origination_caller_id_name='Jane\\, x Doe'}}" \
                   "loopback/5555/default &park()"


@pytest.mark.parametrize("build", [
    lambda: commands.kill("a b"),
    lambda: commands.kill(""),
    lambda: commands.kill(U, "CAUSE\nuuid_kill all"),
    lambda: commands.kill(U, "NORMAL CLEARING"),
    lambda: commands.transfer(U, "1000 XML default", "XML", "gateway_transfer"),
    lambda: commands.setvar(U, "a b", "x"),
    lambda: commands.setvar(U, "name", "x\napi status"),
    lambda: commands.setvar(U, "name", ""),
    lambda: commands.getvar(U, "${esl_password}"),
    lambda: commands.record(U, "mask", "/m/x.wav"),
    lambda: commands.record(U, "start", "/m/a b.wav"),
    lambda: commands.audio_stream_start(U, "ws://h/s x", "mono", "8k"),
    lambda: commands.audio_stream_start(U, "ws://h/s", "left", "8k"),
    lambda: commands.audio_stream_start(U, "ws://h/s", "mono", "fast"),
    lambda: commands.audio_stream_start(U, "ws://h/s", "mono", "8k", "{}\r\napi status"),
    lambda: commands.execute("speak", "${esl_password}"),
    lambda: commands.execute("play back", "/m/a.wav"),
    lambda: commands.originate({"a,b": "x"}, "loopback/1/default"),
    lambda: commands.originate({"a": "x"}, "loopback/1/default &park()"),
    lambda: commands.filter_events("Unique-ID", "a\nb"),
])
def test_an_argument_freeswitch_would_misread_is_refused(build):
    with pytest.raises(UnsafeArgument):
        build()
