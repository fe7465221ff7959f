"""A verification code reaches no FreeSWITCH log or ESL event and no gateway log: the call
speaks the words and plays the code from a randomly named file of digit prompts, deleted
when the call's script ends. The simulator reports what FreeSWITCH would (``EXECUTE`` log
lines at info, Application-Data, ``variable_*``), so the absence is checked on everything
a switch would have told anyone."""
from __future__ import annotations

import logging
import os
import re
import time
import wave

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import BASE, auth, wait_final, wait_script
from gateway.models import CallEvent, OtpRequest
from gateway.otp import readout
from otp_support import heard_codes
from sim_support import RawClient

CODE = "90817263"
#: The digits in order, with what a speech engine or an encoding could put between them.
_SEP = r"(?:[\s.,;:_|+-]|%[0-9A-Fa-f]{2}){0,3}"


def shows(code: str, text: str) -> bool:
    return re.search(_SEP.join(code), text) is not None


def observer(sim) -> RawClient:
    """A connection that takes every event and every log line, as anyone on the ESL port can."""
    client = RawClient(sim.port)
    client.auth()
    client.command("event plain ALL")
    assert client.command("log debug").reply_text == "+OK log level debug [7]"
    return client


def test_the_code_is_in_no_freeswitch_log_or_event_and_no_gateway_log(client, gw, sim, pair, india, media_dir,
                                                                       caplog):
    caplog.set_level(logging.DEBUG)
    sim.keep_played_audio, sim.play_speed = True, 20.0
    sim.received = bytearray()
    watcher = observer(sim)
    try:
        calls = []
        for number, message in (("9812345701", None), ("9812345702", "Your Acme code is {code}. Again: {code}.")):
            body = {"number": number, "code": CODE, **({"message": message} if message else {})}
            response = client.post(f"{BASE}/otp/send", json=body, headers=auth(pair))
            assert response.status_code == 200, response.json
            calls.append(OtpRequest.get_by_id(response.json["request_id"]).call_uuid)
        for call_uuid in calls:
            wait_script(gw, call_uuid)
            wait_final(gw, call_uuid)
            watcher.wait_event("CHANNEL_DESTROY", call_uuid)
        # The callee heard the code, twice per call, and the words around it.
        for call_uuid in calls:
            assert heard_codes(sim.history[call_uuid]) == [CODE, CODE]
        assert sim.history[calls[1]].spoken == ["Your Acme code is", ". Again:"]
        executed = [e.get("Application") for e in watcher.events
                    if e.name == "CHANNEL_EXECUTE" and e.uuid == calls[1]]
        assert executed == ["park", "speak", "playback", "speak", "playback"]
        # ... yet the code is nowhere a switch tells anyone, nor in what the gateway sent or logged.
        logs = [m for m in watcher.messages if m.content_type == "log/data"]
        assert any(b"EXECUTE [depth=1]" in m.body and b"playback(" in m.body for m in logs)
        texts = {
            "ESL wire": watcher.wire.decode("latin-1"),
            "sent by the gateway": bytes(sim.received).decode("latin-1"),
            "event values": "\n".join(value for e in watcher.events for _, value in e.items),
            "log lines": "\n".join(m.text for m in logs),
            "gateway log": "\n".join(record.getMessage() for record in caplog.records),
            "call log": "\n".join(str(e.detail) for e in CallEvent.select().where(CallEvent.call << calls)),
        }
        for where, text in texts.items():
            assert text and not shows(CODE, text), where
        # The readout was a random name under the media directory, and it is gone.
        played = {path for call_uuid in calls for path in sim.history[call_uuid].played}
        assert all(re.fullmatch(re.escape(str(media_dir / "otp")) + r"/[0-9a-f]{32}\.wav", p) for p in played)
        assert len(played) == 2 and list((media_dir / "otp").iterdir()) == []
    finally:
        watcher.close()


def test_the_detector_sees_a_spoken_code():
    """What the test above would have caught: the old ``speak`` of the spaced digits, in
    its plain-event and log forms."""
    assert shows(CODE, "Application-Data: flite%7Ckal%7CYour%20code%20is%209%200%208%201%207%202%206%203.")
    assert shows(CODE, "EXECUTE [depth=1] sofia/x speak(flite|kal|Your code is 9, 0, 8, 1, 7, 2, 6, 3)")
    assert not shows(CODE, "9081abc7263 98017263 9081 2 7263")


def test_a_call_that_ends_during_the_readout_leaves_no_file(client, gw, sim, pair, india, media_dir):
    sim.play_speed = 5.0
    response = client.post(f"{BASE}/otp/send", json={"number": "9812345711", "code": CODE}, headers=auth(pair))
    call_uuid = OtpRequest.get_by_id(response.json["request_id"]).call_uuid
    sim.wait_event(call_uuid, "PLAYBACK_START")
    assert len(list((media_dir / "otp").iterdir())) == 1
    sim.far_end_hangup(call_uuid)
    assert wait_final(gw, call_uuid).status == "completed"
    wait_script(gw, call_uuid)
    assert list((media_dir / "otp").iterdir()) == []


def test_readout_audio_and_files(tmp_path):
    gap = readout.RATE * readout.GAP_MS // 1000 * 2
    assert readout.render("44") == (readout.prompt("4") + b"\0" * gap) * 2
    assert readout.seconds("1234") == len(readout.render("1234")) / 16000
    first, second = readout.write(CODE, tmp_path), readout.write(CODE, tmp_path)
    assert first != second and first.parent == second.parent == tmp_path / "otp"
    assert CODE not in first.name and re.fullmatch(r"[0-9a-f]{32}\.wav", first.name)
    with wave.open(str(first), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.readframes(wav.getnframes()) == readout.render(CODE)
    # A file a crashed process left behind is swept by the next write, once stale.
    old = time.time() - readout.STALE_AFTER - 1
    os.utime(first, (old, old))
    third = readout.write("1111", tmp_path)
    assert sorted(p.name for p in (tmp_path / "otp").iterdir()) == sorted([second.name, third.name])
    readout.discard(second)
    readout.discard(second)  # already gone: nothing to do
    assert [p.name for p in (tmp_path / "otp").iterdir()] == [third.name]


def test_every_digit_has_a_short_telephone_prompt():
    for digit in "0123456789":
        with wave.open(str(readout.PROMPTS / f"{digit}.wav"), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert 0.2 < wav.getnframes() / 8000 < 0.8
    assert len({readout.prompt(d) for d in "0123456789"}) == 10
