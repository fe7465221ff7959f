"""Added delay of the media bridge, per playback form, end to end over loopback sockets.

One process runs the simulator (ESL + mod_audio_stream), the call controller, the media
bridge and a Twilio-protocol bot, all on 127.0.0.1.  For each form (``stream``:
bidirectional mod_audio_stream; ``files``: community edition + ``uuid_broadcast``) it
measures, over ``--trials`` calls:

* media -> heard: the bot sends 200 ms of audio while nothing plays; time until the
  caller starts hearing it (stream: the simulator's injected-audio clock; files: its
  PLAYBACK_START of the first chunk);
* mark echo: the bot's mark after that audio comes back; time after the audio has
  really finished playing (negative = early);
* clear -> silence: the bot clears 3 s of queued audio while it plays; time until the
  caller hears nothing more (stream: end of the last injected frame; files: the
  PLAYBACK_STOP of the broken file);
* redirect gap: the gap in caller audio between the last frame to the old bot and the
  first frame to the new one.

The baseline beside them is a raw WebSocket echo round trip on loopback in the same run.

    python bench/media_latency.py [--trials 10]
"""

from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from media_support import MediaRig, TwilioBot, WsServer  # noqa: E402

from gateway import secret_keys  # noqa: E402
from gateway.calls.states import FINAL, Status  # noqa: E402
from gateway.config import MediaSettings  # noqa: E402
from gateway.media import codec  # noqa: E402
from gateway.models import Account, connect, migrate  # noqa: E402
from gateway.simulator import Simulator  # noqa: E402
from gateway.simulator.audio_stream import heard_pcm, module  # noqa: E402


def ms(values):
    if not values:
        return "n/a"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def baseline_echo(count: int = 200) -> list[float]:
    server = WsServer()
    server.on_message = lambda peer, kind, data: peer.send_text(data)
    ws = websocket.create_connection(server.url("/echo"))
    times = []
    for i in range(count):
        started = time.monotonic()
        ws.send(f"ping {i}")
        ws.recv()
        times.append(time.monotonic() - started)
    ws.close()
    server.stop()
    return times


class Playback:
    """PLAYBACK_START/STOP times per channel, from the simulator's event bus."""

    def __init__(self, sim) -> None:
        self.events: list[tuple[float, str, str]] = []
        sim.core.observers.append(lambda name, uuid: self.events.append((time.monotonic(), name, uuid))
                                  if name in ("PLAYBACK_START", "PLAYBACK_STOP") else None)

    def times(self, name: str, uuid: str, after: float) -> list[float]:
        return [t for t, n, u in self.events if n == name and u == uuid and t >= after]


def wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        gevent.sleep(0.001)
    raise TimeoutError("benchmark condition not met")


def run_form(form: str, trials: int, account_id: int) -> dict[str, list[float]]:
    sim = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0)
    sim.start()
    module(sim).playback = form
    playback = Playback(sim)
    rig = MediaRig(sim, MediaSettings(playback=form))
    results = {"media -> heard": [], "mark echo after played": [], "clear -> silence": [], "redirect gap": []}
    try:
        for _ in range(trials):
            bot, second = TwilioBot(), TwilioBot()
            call = rig.controller.originate(account_id, "+15550100001", "+15550009999", socket_url=bot.url())
            rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
            bot.wait_event("media", count=5)  # the stream is up both ways
            ch = sim.channels[call.uuid]
            # media -> heard, and the mark echo
            sent = time.monotonic()
            bot.send_media(codec.l16_to_ulaw(codec.tone(0.2, 800)))
            bot.send_mark("m")
            if form == "stream":
                wait(lambda: ch.heard)
                results["media -> heard"].append(ch.heard[0][0] - sent)
                wait(lambda: len(heard_pcm(ch)) >= 3200)
                played_end = ch.heard[-1][0] + len(ch.heard[-1][1]) / 16000
            else:
                first = wait(lambda: playback.times("PLAYBACK_START", call.uuid, sent))
                results["media -> heard"].append(first[0] - sent)
                stops = wait(lambda: len(playback.times("PLAYBACK_STOP", call.uuid, sent)) >= 1 and
                             rig.bridge.streams[call.uuid].playout.idle(time.monotonic()) and
                             playback.times("PLAYBACK_STOP", call.uuid, sent))
                played_end = stops[-1]
            bot.wait_event("mark")
            results["mark echo after played"].append(bot.mark_times()["m"] - played_end)
            gevent.sleep(0.1)
            # clear -> silence
            bot.send_media(codec.l16_to_ulaw(codec.tone(3.0, 600)))
            gevent.sleep(0.5)
            cleared = time.monotonic()
            bot.send_clear()
            gevent.sleep(0.3)
            if form == "stream":
                last_start, last_pcm = ch.heard[-1]
                results["clear -> silence"].append(last_start + len(last_pcm) / 16000 - cleared)
            else:
                stops = playback.times("PLAYBACK_STOP", call.uuid, cleared)
                if stops:
                    results["clear -> silence"].append(stops[0] - cleared)
            # redirect gap
            rig.media.redirect(call.uuid, second.url())
            second.wait_event("media", count=3)
            results["redirect gap"].append(second.media_times()[0] - bot.media_times()[-1])
            rig.controller.hangup(call.uuid)
            rig.controller.wait_status(call.uuid, FINAL, 5)
            bot.stop()
            second.stop()
    finally:
        rig.stop()
        sim.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    secret_keys.configure(secret_keys.SecretKeys.throwaway("the benchmark's key"))  # it reads only what it writes
    with tempfile.TemporaryDirectory(prefix="voicegw-bench-") as tmp:
        db = connect(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        migrate(db)
        account = Account.create(name="bench")
        echo = baseline_echo()
        print(f"baseline: raw WebSocket echo round trip on loopback    {ms(echo)}")
        for form in ("stream", "files"):
            results = run_form(form, args.trials, account.id)
            print(f"\n{form} form ({args.trials} calls):")
            for name, values in results.items():
                print(f"  {name:<26} {ms(values)}")
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
