"""The ``voicegw`` command."""

from gateway import _monkey  # noqa: F401  (first: sockets, ssl and threading become cooperative)

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from gateway import json_logs  # noqa: E402
from gateway.config import CONFIG_VAR, NodeConfig, Settings  # noqa: E402


def cmd_serve(args) -> int:
    from gateway import net_policy, secret_keys
    from gateway.runtime import Gateway

    settings = Settings.from_env(config_file=args.config)
    net_policy.configure(settings.outbound_allowlist)
    secret_keys.configure(settings.secrets_keys)
    gateway = Gateway(settings, probe_playback=True)
    gateway.start()
    wait_for_termination()
    gateway.stop()
    return 0


def wait_for_termination() -> None:
    """Block until SIGTERM (systemd stop) or SIGINT (Ctrl-C)."""
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()


def cmd_migrate(args) -> int:
    from gateway import secret_keys
    from gateway.models import connect, migrate

    settings = Settings.from_env(config_file=args.config)
    secret_keys.configure(settings.secrets_keys)  # a step encrypts the secrets stored in clear
    applied = migrate(connect(settings.database_url))
    steps = ", ".join(map(str, applied)) if applied else "nothing to apply"
    print(f"database {settings.database_url}: migrated ({steps})")
    return 0


def cmd_doctor(args) -> int:
    from gateway import doctor

    return doctor.run(Settings.from_env(config_file=args.config))


def cmd_example_bot(args) -> int:
    from gateway.example_bot import EchoBot

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen {args.listen!r}: expected HOST:PORT")
    bot = EchoBot(host, int(port))
    bot.start()
    print(f"example bot listening on {bot.url}", flush=True)
    wait_for_termination()
    bot.stop()
    return 0


def cmd_simulate_call(args) -> int:
    from gateway import simulate_call

    if args.did:
        from gateway import secret_keys

        node = NodeConfig.parse(args.esl, "--esl")
        settings = Settings.from_env(config_file=args.config)
        secret_keys.configure(settings.secrets_keys)  # the gateway's database is read with the gateway's keys
        return simulate_call.inject(node, args.did, args.caller, args.caller_name, args.seconds,
                                    settings.database_url)
    return simulate_call.call_bot(args.socket_url, args.seconds, args.audio)


def cmd_demo(args) -> int:
    if args.agents:
        from gateway import demo_agents

        return demo_agents.run()
    from gateway import demo

    return demo.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicegw", description="Self-hosted voice gateway for FreeSWITCH.")
    parser.add_argument("--config", help="config file (INI or TOML); also GATEWAY_CONFIG")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=json_logs.LOG_FORMATS, default=None,
                        help="text (default) or json: one JSON object a line, call_uuid on a call's lines;"
                             f" also {json_logs.LOG_FORMAT_VAR}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API server and call controller").set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    sub.add_parser("doctor", help="check FreeSWITCH (ESL, modules, dialplan) and the database").set_defaults(
        func=cmd_doctor)
    demo = sub.add_parser("demo", help="run the simulator and the gateway, place calls, print their timelines")
    demo.add_argument("--agents", action="store_true",
                      help="instead: build a voice agent over /api/agent-api/voice, attach a number, take a call")
    demo.set_defaults(func=cmd_demo)
    from gateway import admin_cli, approvals_cli, calls_cli, public_cli, secrets_cli
    from gateway.simulator import cli as simulator_cli
    from gateway.webhooks import cli as webhooks_cli

    simulator_cli.add_subparser(sub)
    admin_cli.add_subparsers(sub)
    public_cli.add_subparsers(sub)
    webhooks_cli.add_subparsers(sub)
    calls_cli.add_subparsers(sub)
    secrets_cli.add_subparsers(sub)
    approvals_cli.add_subparsers(sub)
    sim_call = sub.add_parser("simulate-call", help="call your bot through a simulated FreeSWITCH, or inject "
                                                    "an inbound call into a DID")
    target = sim_call.add_mutually_exclusive_group(required=True)
    target.add_argument("--socket-url", help="the bot's ws:// or wss:// URL (Twilio Media Streams)")
    target.add_argument("--did", help="inject an inbound call to this DID into a running FreeSWITCH or simulator; "
                                      "its log is read from the gateway's database (GATEWAY_DATABASE_URL)")
    sim_call.add_argument("--seconds", type=float, default=10.0,
                          help="how long the call lasts before it is hung up (default 10)")
    sim_call.add_argument("--audio", help="8 kHz mono 16-bit WAV the caller says (default: a tone)")
    sim_call.add_argument("--esl", default="127.0.0.1:8021:ClueCon", help="host:port:password for --did")
    sim_call.add_argument("--caller", default="+14155550123", help="caller number for --did")
    sim_call.add_argument("--caller-name", default="", help="caller name for --did")
    sim_call.set_defaults(func=cmd_simulate_call)
    bot = sub.add_parser("example-bot", help="run the example echo bot (Twilio Media Streams) in the foreground")
    bot.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT (default 127.0.0.1:9000)")
    bot.set_defaults(func=cmd_example_bot)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.config:  # one config file for the whole process: every later read of the settings sees it
        os.environ[CONFIG_VAR] = args.config
    # The services log what they do at INFO; the other commands only warn.
    service = args.command == "serve" or getattr(args, "webhooks_command", None) == "dispatch"
    try:
        log_format = args.log_format or os.environ.get(json_logs.LOG_FORMAT_VAR, "text").strip().lower()
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO if service else logging.WARNING,
                            handlers=[json_logs.handler(log_format)])
        return args.func(args) or 0
    except ValueError as exc:  # bad settings and the like: one clear line, no traceback
        print(f"voicegw: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
