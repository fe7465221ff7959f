"""``voicegw simulator``: run the FreeSWITCH stand-in in the foreground.

``add_subparser(subparsers)`` registers::

    simulator --listen 127.0.0.1:8021 --password ClueCon [--answer-delay MS] [--dialplan DIR]
              [--gateway NAME ...] [--heartbeat SECONDS] [--sps N] [--max-sessions N]
              [--audio-stream-build {bidirectional,community}]

and it runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal

import gevent
from gevent.event import Event

from .audio_stream import BUILDS, module
from .simulator import Simulator
from .throttle import DEFAULT_MAX_SESSIONS, DEFAULT_SESSIONS_PER_SECOND

logger = logging.getLogger(__name__)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, e.g. 127.0.0.1:8021")
    return host.strip("[]") or "127.0.0.1", int(port)


def _at_least_one(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def add_subparser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulator", help="run the FreeSWITCH stand-in (Event Socket) in the foreground",
        description="A FreeSWITCH 1.10.12 stand-in speaking the Event Socket protocol.")
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 8021), metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:8021)")
    parser.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    parser.add_argument("--answer-delay", type=float, default=100.0, metavar="MS",
                        help="far end answers this many ms after the INVITE (default 100)")
    parser.add_argument("--dialplan", metavar="DIR", default=None,
                        help="route calls through this XML dialplan directory")
    parser.add_argument("--gateway", action="append", dest="gateways", metavar="NAME",
                        help="a known sofia gateway name (repeatable; default: carrier)")
    parser.add_argument("--heartbeat", type=float, default=20.0, metavar="SECONDS",
                        help="HEARTBEAT interval (default 20)")
    parser.add_argument("--sps", type=_at_least_one, default=DEFAULT_SESSIONS_PER_SECOND, metavar="N",
                        help="switch.conf.xml's sessions-per-second: a budget refilled every second, of which "
                             f"N-1 new sessions can start (default {DEFAULT_SESSIONS_PER_SECOND})")
    parser.add_argument("--max-sessions", type=_at_least_one, default=DEFAULT_MAX_SESSIONS, metavar="N",
                        help=f"switch.conf.xml's max-sessions: sessions up at once (default {DEFAULT_MAX_SESSIONS})")
    parser.add_argument("--audio-stream-build", choices=BUILDS, default=BUILDS[0],
                        help="the mod_audio_stream build to behave as: bidirectional (cloudfieldcz fork, plays "
                             "BINARY audio from the server) or community (amigniter, ignores it); default "
                             f"{BUILDS[0]}")
    parser.set_defaults(func=run)
    return parser


def make_simulator(args) -> Simulator:
    """The simulator the parsed arguments describe (not started)."""
    host, port = args.listen
    sim = Simulator(host=host, port=port, password=args.password, gateways=tuple(args.gateways or ("carrier",)),
                    dialplan_dir=args.dialplan, answer_delay=args.answer_delay / 1000.0,
                    heartbeat_interval=args.heartbeat, sessions_per_second=args.sps,
                    max_sessions=args.max_sessions)
    module(sim).build = args.audio_stream_build
    return sim


def run(args) -> int:
    host = args.listen[0]
    sim = make_simulator(args)
    sim.start()
    logger.info("FreeSWITCH simulator listening on %s:%d", host, sim.port)
    print(f"FreeSWITCH simulator listening on {host}:{sim.port} (Core-UUID {sim.core.uuid})", flush=True)
    done = Event()
    gevent.signal_handler(signal.SIGINT, done.set)
    gevent.signal_handler(signal.SIGTERM, done.set)
    done.wait()
    sim.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="voicegw")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
