"""N concurrent two-way streams through the media bridge, next to a raw relay, per N.

Three processes per run, so that the system under test's own cost is what is measured:

* a fake FreeSWITCH speaking mod_audio_stream's framing (a metadata text frame, then a
  320-byte L16 binary frame every 20 ms per call; it reads back the bridge's binary
  frames in the ``stream`` form, ``streamAudio`` in the ``files`` form);
* the system under test: the bridge (``relay_servers.BridgeUnderTest``: ``MediaBridge`` +
  ``CallStream`` + ``WebsocketBotLink``, wired as ``MediaSessions`` wires them, without
  the controller and the database, which are not on the per-frame path), in either
  playback form, or the raw relay (``relay_servers.RawRelay``);
* bots speaking Twilio Media Streams that echo the caller's audio back as ``media``.

Figures per run (``relay_peers`` says how frames are tagged and which are counted):

* **caller→bot / bot→caller added latency p50/p99**: from the fake FreeSWITCH's send of
  a frame to the bot's receipt, and from the bot's echo to the fake FreeSWITCH's receipt.
  In the ``files`` form bot→caller is per chunk, from the bot's send of the chunk's last
  frame (the ~200 ms a chunk takes to fill is the form's design, not added work);
* **late %**: frames later than 20 ms (they missed their slot) or lost, each way;
* **CPU %** of the system under test's process (``/proc/<pid>/stat`` over the measured
  window, 100 % = one core) and **RSS per stream** (its growth from before the calls
  were opened, over N);
* **peers CPU** (the fake FreeSWITCH's and the bots') and **machine** (every process on
  the host, 200 % = two cores busy): what else competed for the cores;
* **fs slip p99**: how late the fake FreeSWITCH's own clock ran; when it is over 5 ms the
  load generator, not the system, was the limit, and the run says so.

A run is **held in real time** when p99 ≤ 20 ms each way, < 0.1 % late each way, and the
fake FreeSWITCH kept its clock.  A system's sweep stops after its first run not held.
The last line: the largest N held by the bridge (``stream`` form), and the ratio of its
CPU per stream to the raw relay's at that N (or the largest N both ran).

    python bench/media_relay.py [--streams 25,50,100] [--seconds 60] [--forms stream,files]
                                [--profile N]   # py-spy the bridge (stream form) at N
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WARM_FRAMES = 50  # 1 s of ramp-up left out
TAIL_FRAMES = 25  # 0.5 s sent after the window, so its last frames are not cut short
DRAIN_SECONDS = 1.0
HELD_P99 = 0.020
HELD_LATE = 0.001
HELD_SLIP = 0.005


# -- the child processes -------------------------------------------------------------------

def _child(role: str, args) -> int:
    from gateway import _monkey  # noqa: F401  (first: gevent-patch the standard library)
    import gevent
    import gevent.os

    sys.path.insert(0, str(HERE))
    import relay_peers

    gevent.os.make_nonblocking(0)
    pending = b""

    def ask() -> dict:
        nonlocal pending
        while b"\n" not in pending:
            data = gevent.os.nb_read(0, 65536)
            if not data:
                raise SystemExit(0)
            pending += data
        line, _, pending = pending.partition(b"\n")
        return json.loads(line)

    def say(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    window = relay_peers.Window(args.warm, args.measured)
    if role == "bot":
        bot = relay_peers.EchoBot(window)
        bot.server.start()
        say({"port": bot.server.server_port})
        ask()
        say({"up": _sparse(bot.up), "received": bot.received, "connections": bot.connections})
        return 0
    if role == "fs":
        setup = ask()
        fs = relay_peers.FakeFreeSwitch([tuple(c) for c in setup["calls"]], window, setup.get("esl"))
        fs.connect()
        say({"connected": len(fs.calls)})
        t0 = ask()["t0"]
        fs.run_clock(t0, args.warm + args.measured + TAIL_FRAMES)
        gevent.sleep(DRAIN_SECONDS)
        say({"down": _sparse(fs.down), "slip": _sparse(fs.slip), "received": fs.received, "sent": fs.sent})
        return 0
    from gateway import net_policy
    import relay_servers
    bot_url = f"ws://127.0.0.1:{args.bot_port}/bot"
    with net_policy.policy.allowing("127.0.0.1"):
        system = relay_servers.RawRelay(bot_url) if role == "raw" else relay_servers.BridgeUnderTest(role, bot_url)
        say({"ready": True})
        n = ask()["open"]
        calls = system.open_calls(n)
        say({"calls": calls, "esl": system.esl.port if system.esl else None})
        ask()  # quit
        system.stop()
    return 0


def _sparse(hist) -> dict:
    return {"count": hist.count, "bins": {i: n for i, n in enumerate(hist.bins) if n}}


# -- the parent ------------------------------------------------------------------------------

class Child:
    def __init__(self, role: str, *extra: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", role, *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def say(self, obj) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def hear(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args[3]} ended (rc {self.proc.wait()})")
        return json.loads(line)

    def end(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(hist: dict, q: float) -> float:
    if not hist["count"]:
        return float("nan")
    rank, seen = q * hist["count"], 0
    for i in sorted(hist["bins"], key=int):
        seen += hist["bins"][i]
        if seen >= rank:
            return (int(i) + 1) / 10000
    return float("nan")


def over(hist: dict, seconds: float) -> int:
    return sum(n for i, n in hist["bins"].items() if int(i) >= seconds * 10000)


def one_run(system: str, n: int, seconds: float, profile_to: str | None = None) -> dict:
    """One run; with ``profile_to``, py-spy samples the system under test over the window."""
    measured = int(round(seconds / 0.02))
    window = ["--warm", str(WARM_FRAMES), "--measured", str(measured)]
    bot = Child("bot", *window)
    relay = fs = None
    try:
        bot_port = bot.hear()["port"]
        relay = Child(system, "--bot-port", str(bot_port), *window)
        relay.hear()
        rss0 = rss_bytes(relay.proc.pid)
        relay.say({"open": n})
        opened = relay.hear()
        fs = Child("fs", *window)
        fs.say(opened)
        fs.hear()
        t0 = time.monotonic() + 0.5
        fs.say({"t0": t0})
        time.sleep(max(0.0, t0 + WARM_FRAMES * 0.02 - time.monotonic()))
        cpu_a, wall_a = cpu_seconds(relay.proc.pid), time.monotonic()
        peers_a, busy_a = cpu_seconds(fs.proc.pid) + cpu_seconds(bot.proc.pid), machine_busy()
        spy = None
        if profile_to:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "-r", "200", "-f", "raw", "-o", profile_to,
                                    "-d", str(int(seconds)), "-p", str(relay.proc.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(max(0.0, t0 + (WARM_FRAMES + measured) * 0.02 - time.monotonic()))
        cpu_b, wall_b = cpu_seconds(relay.proc.pid), time.monotonic()
        peers_b, busy_b = cpu_seconds(fs.proc.pid) + cpu_seconds(bot.proc.pid), machine_busy()
        rss1 = rss_bytes(relay.proc.pid)
        if spy is not None:
            spy.wait()
        down = fs.hear()
        bot.say({"report": True})
        up = bot.hear()
        relay.say({"quit": True})
    finally:
        for child in (fs, relay, bot):
            if child is not None:
                child.end()
    expected = measured * n
    cpu = (cpu_b - cpu_a) / (wall_b - wall_a) * 100
    result = {
        "system": system, "n": n, "cpu": cpu, "cpu_per_stream": cpu / n, "rss_per_stream": (rss1 - rss0) / n,
        "up_p50": percentile(up["up"], 0.5), "up_p99": percentile(up["up"], 0.99),
        "down_p50": percentile(down["down"], 0.5), "down_p99": percentile(down["down"], 0.99),
        "up_late": (over(up["up"], HELD_P99) + max(0, down["sent"] - up["received"])) / expected,
        "down_late": (over(down["down"], HELD_P99) + max(0, up["received"] - down["received"])) / expected,
        "slip_p99": percentile(down["slip"], 0.99),
        "peers_cpu": (peers_b - peers_a) / (wall_b - wall_a) * 100,
        "machine": (busy_b[0] - busy_a[0]) / max(1, busy_b[1] - busy_a[1]) * 100 * (os.cpu_count() or 1),
    }
    result["generator_bound"] = result["slip_p99"] > HELD_SLIP
    result["held"] = (result["up_p99"] <= HELD_P99 and result["down_p99"] <= HELD_P99
                      and result["up_late"] < HELD_LATE and result["down_late"] < HELD_LATE
                      and not result["generator_bound"])
    return result


def print_profile(path: str, top: int = 30) -> None:
    """py-spy's collapsed stacks as shares of the samples: self time, then inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")") for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    for title, table in (("self", own), ("inclusive", inclusive)):
        print(f"-- {title} ({total} samples)")
        for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{n / total * 100:5.1f} %  {name}")


def show(r: dict) -> str:
    ms = lambda s: f"{s * 1000:6.1f}"  # noqa: E731
    verdict = "held" if r["held"] else ("NOT held (load generator slipped)" if r["generator_bound"] else "NOT held")
    return (f"{r['system']:<14} N={r['n']:<4} caller→bot p50 {ms(r['up_p50'])} p99 {ms(r['up_p99'])} ms  "
            f"bot→caller p50 {ms(r['down_p50'])} p99 {ms(r['down_p99'])} ms  "
            f"late {r['up_late'] * 100:5.2f}/{r['down_late'] * 100:5.2f} %  CPU {r['cpu']:5.1f} % "
            f"({r['cpu_per_stream']:.3f} %/stream)  RSS {r['rss_per_stream'] / 1024:6.1f} KiB/stream  "
            f"fs slip p99 {ms(r['slip_p99'])} ms  peers CPU {r['peers_cpu']:3.0f} %  machine {r['machine']:3.0f} %  "
            f"{verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=("bot", "fs", "raw", "stream", "files"), help=argparse.SUPPRESS)
    parser.add_argument("--bot-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=WARM_FRAMES, help=argparse.SUPPRESS)
    parser.add_argument("--measured", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--streams", default="25,50,100,200,300,400,500",
                        help="the values of N, comma-separated (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run (default 60)")
    parser.add_argument("--forms", default="stream,files", help="bridge playback forms (default %(default)s)")
    parser.add_argument("--profile", type=int, metavar="N", help="only profile the bridge (stream form) at N, with py-spy")
    args = parser.parse_args()
    if args.role:
        return _child(args.role, args)
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "bridge.prof")
            print(show(one_run("stream", args.profile, args.seconds, out)))
            print_profile(out)
        return 0
    sizes = [int(n) for n in args.streams.split(",")]
    systems = ["raw"] + [form for form in args.forms.split(",") if form]
    results: dict[str, dict[int, dict]] = {system: {} for system in systems}
    failed: set[str] = set()
    print(f"{args.seconds:.0f} s per run, on {os.cpu_count()} cores; the system under test is one process")
    for n in sizes:
        for system in systems:
            if system in failed:
                continue
            r = one_run(system, n, args.seconds)
            results[system][n] = r
            print(show(r), flush=True)
            if not r["held"]:
                failed.add(system)
        if len(failed) == len(systems):
            break
    for system in systems:
        held = [n for n, r in results[system].items() if r["held"]]
        print(f"{system}: largest N held {max(held) if held else 'none'}")
    main_form = "stream" if "stream" in systems else systems[-1]
    held = [n for n, r in results[main_form].items() if r["held"]]
    both = [n for n in results[main_form] if n in results["raw"]]
    at = max(held) if held and max(held) in results["raw"] else (max(both) if both else None)
    if at is None:
        print(f"largest N held ({main_form} form): {max(held) if held else 'none'}; no raw relay run to compare")
        return 0
    ratio = results[main_form][at]["cpu_per_stream"] / results["raw"][at]["cpu_per_stream"]
    print(f"largest N held ({main_form} form): {max(held) if held else 'none'}; "
          f"bridge CPU per stream / raw relay's at N={at}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
