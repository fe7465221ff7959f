"""The ``voicegw`` command."""

from gevent import monkey

monkey.patch_all()  # before anything imports socket, threading or the database drivers

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from gateway.config import Settings  # noqa: E402


def cmd_serve(args) -> int:
    from gateway.runtime import Gateway

    gateway = Gateway(Settings.from_env(config_file=args.config))
    gateway.start()
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    gateway.stop()
    return 0


def cmd_migrate(args) -> int:
    from gateway.models import connect, migrate

    settings = Settings.from_env(config_file=args.config)
    applied = migrate(connect(settings.database_url))
    steps = ", ".join(map(str, applied)) if applied else "nothing to apply"
    print(f"database {settings.database_url}: migrated ({steps})")
    return 0


def cmd_doctor(args) -> int:
    from gateway import doctor

    return doctor.run(Settings.from_env(config_file=args.config))


def cmd_demo(args) -> int:
    from gateway import demo

    return demo.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegw", description="Self-hosted voice gateway for FreeSWITCH.")
    parser.add_argument("--config", help="config file (INI or TOML); also GATEWAY_CONFIG")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API server and call controller").set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    sub.add_parser("doctor", help="check FreeSWITCH (ESL, modules, dialplan) and the database").set_defaults(
        func=cmd_doctor)
    sub.add_parser("demo", help="run the simulator and the gateway, place calls, print their timelines").set_defaults(
        func=cmd_demo)
    from gateway.admin_cli import add_subparsers
    from gateway.simulator.cli import add_subparser

    add_subparser(sub)
    add_subparsers(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except ValueError as exc:  # bad settings and the like: one clear line, no traceback
        print(f"voicegw: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
