"""What a caller hears of a bot, per playback form, end to end over loopback sockets.

One process runs the simulator (ESL + mod_audio_stream, playing audio as FreeSWITCH does:
research/downlink.md), the call controller, the media bridge and a Twilio-protocol bot, all
on 127.0.0.1.  The simulator records what the far end of each call hears, on the clock of
a real switch's 20 ms frames, so every figure is about heard audio.  For each form
(``stream``: the bidirectional mod_audio_stream build; ``files``: the community build,
~200 ms files queued with ``sendmsg`` playback) it runs ``--trials`` calls, each with:

* **first audio**: a real-time bot (20 ms frames every 20 ms) starts to speak while nothing
  plays: time until the caller hears its first sample; and the same for 1 s sent at once;
* **heard**: the share of 3 s of real-time speech, and of 3 s sent in 1 s bursts, that the
  caller heard, and the longest hole inside it;
* **mark accuracy**: when the mark behind the speech comes back, minus when its audio
  ended in the caller's ear (negative = echoed before it was heard: a broken promise);
* **clear to silence**: the bot clears 5 s of queued speech 1 s in: time until the caller
  hears nothing of it;
* **redirect**: the call moves to another bot (``POST /api/calls/redirect``): the gap in the
  caller's audio between the last frame to the old bot and the first to the new one, and
  the time from the new bot's first words to the caller hearing them.

The baseline beside them is a raw WebSocket echo round trip on loopback in the same run.
Its last line sums up each form's medians.

    python bench/media_latency.py [--trials 5]
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

from media_support import MediaRig, TwilioBot, WsServer, speech  # noqa: E402

from gateway import net_policy, secret_keys  # noqa: E402
from gateway.domain import FINAL, Status  # noqa: E402
from gateway.config import MediaSettings  # noqa: E402
from gateway.models import Account, connect, migrate  # noqa: E402
from gateway.simulator import Simulator  # noqa: E402
from gateway.simulator.audio_stream import module  # noqa: E402

FIGURES = ("first audio, real-time bot", "first audio, 1 s at once", "heard, real-time bot",
           "heard, 1 s bursts", "longest hole", "mark accuracy", "clear to silence", "redirect: caller audio gap",
           "redirect: new bot heard")
PERCENT = {"heard, real-time bot", "heard, 1 s bursts"}


def show(name: str, values: list[float]) -> str:
    if not values:
        return "n/a"
    if name in PERCENT:
        return f"median {statistics.median(values) * 100:6.1f} %   min {min(values) * 100:6.1f} %"
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


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        gevent.sleep(0.005)
    raise TimeoutError("benchmark condition not met")


def utterance(ch, since: float):
    """(first heard, end, heard seconds, longest hole) of what the caller heard after ``since``."""
    spans = [(max(s, since), e) for s, e in ch.heard.intervals() if e > since]
    if not spans:
        return None, None, 0.0, 0.0
    holes = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return spans[0][0], spans[-1][1], sum(e - s for s, e in spans), max(holes, default=0.0)


def one_call(rig, sim, account_id: int, results: dict) -> None:
    bot, second = TwilioBot(), TwilioBot()
    try:
        call = rig.controller.originate(account_id, "+15550100001", "+15550009999", socket_url=bot.url())
        rig.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        bot.wait_event("media", count=5)  # the stream is up both ways
        ch = sim.channels[call.uuid]
        marks = 0

        def said(name: str):
            nonlocal marks
            bot.send_mark(name)
            marks += 1
            bot.wait_event("mark", count=marks, timeout=15)
            return bot.mark_times()[name]

        # a real-time bot
        started = bot.send_real_time(speech(3.0))
        echoed = said("rt")
        first, end, heard, hole = utterance(ch, started)
        results["first audio, real-time bot"].append(first - started)
        results["heard, real-time bot"].append(heard / 3.0)
        results["mark accuracy"].append(echoed - end)
        holes = [hole]
        gevent.sleep(0.3)
        # a bursty bot: 1 s at once, every second
        started = time.monotonic()
        audio = speech(3.0)
        for n in range(3):
            delay = started + n - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            bot.send_media(audio[n * 8000:(n + 1) * 8000])
        echoed = said("burst")
        first, end, heard, hole = utterance(ch, started)
        results["first audio, 1 s at once"].append(first - started)
        results["heard, 1 s bursts"].append(heard / 3.0)
        results["mark accuracy"].append(echoed - end)
        holes.append(hole)
        results["longest hole"].append(max(holes))
        gevent.sleep(0.3)
        # barge-in
        bot.send_media(speech(5.0, 600))
        bot.send_mark("long")
        wait(lambda: utterance(ch, time.monotonic() - 1.0)[2] >= 0.9)
        cleared = time.monotonic()
        bot.send_clear()
        bot.wait_event("mark", count=marks + 1, timeout=5)
        wait(lambda: ch.heard.end() <= time.monotonic())  # nothing more is on its way
        results["clear to silence"].append(max(0.0, ch.heard.end() - cleared))
        # redirect
        rig.media.redirect(call.uuid, second.url())
        second.wait_event("media", count=3)
        results["redirect: caller audio gap"].append(second.media_times()[0] - bot.media_times()[-1])
        gevent.sleep(0.2)
        spoke = time.monotonic()
        second.send_media(speech(0.3))
        wait(lambda: ch.heard.first_after(spoke))
        results["redirect: new bot heard"].append(ch.heard.first_after(spoke) - spoke)
        rig.controller.hangup(call.uuid)
        rig.controller.wait_status(call.uuid, FINAL, 5)
    finally:
        bot.stop()
        second.stop()


def run_form(form: str, trials: int, account_id: int) -> dict[str, list[float]]:
    sim = Simulator(port=0, answer_delay=0.02, heartbeat_interval=0)
    sim.start()
    module(sim).build = "bidirectional" if form == "stream" else "community"
    rig = MediaRig(sim, MediaSettings(playback=form))
    results: dict[str, list[float]] = {name: [] for name in FIGURES}
    try:
        for _ in range(trials):
            one_call(rig, sim, account_id, results)
    finally:
        rig.stop()
        sim.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    secret_keys.configure(secret_keys.SecretKeys.throwaway("the benchmark's key"))  # it reads only what it writes
    summary = []
    # the bots listen on 127.0.0.1, which the bot URL policy refuses unless allowed
    with net_policy.policy.allowing("127.0.0.1"), tempfile.TemporaryDirectory(prefix="voicegw-bench-") as tmp:
        db = connect(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        migrate(db)
        account = Account.create(name="bench")
        echo = baseline_echo()
        print(f"baseline: raw WebSocket echo round trip on loopback   {show('echo', echo)}")
        for form in ("stream", "files"):
            results = run_form(form, args.trials, account.id)
            print(f"\n{form} form ({args.trials} calls):")
            for name, values in results.items():
                print(f"  {name:<28} {show(name, values)}")
            med = {name: statistics.median(values) for name, values in results.items() if values}
            summary.append(f"{form}: first audio {med['first audio, real-time bot'] * 1000:.0f} ms "
                           f"(rt) / {med['first audio, 1 s at once'] * 1000:.0f} ms (burst), heard "
                           f"{min(med['heard, real-time bot'], med['heard, 1 s bursts']) * 100:.1f} %, "
                           f"clear {med['clear to silence'] * 1000:.0f} ms, mark +{med['mark accuracy'] * 1000:.0f} ms")
        db.close()
    print(f"\nmedians, echo {statistics.median(echo) * 1000:.2f} ms: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
