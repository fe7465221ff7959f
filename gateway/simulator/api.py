"""The API command table (what ``api``/``bgapi`` run): one function per command, each
returning the exact text FreeSWITCH's mod_commands writes.

Reply texts come from fs-captures/esl_edge_replies and the midcall_* captures, and from
research/freeswitch.md §3 (mod_commands.c) where no capture exists.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
import uuid as uuidlib

from gateway.esl.protocol import encode_json_event, encode_plain_event

from . import audio_stream
from .causes import str2cause
from .channel import CALLING
from .core import FS_VERSION, FS_VERSION_LONG, atoi, date_local, now_us
from .originate import originate_api, split_args

NO_CHANNEL = "-ERR No such channel!\n"
COMMANDS = {}


def command(name):
    def register(fn):
        COMMANDS[name] = fn
        return fn
    return register


def execute(sim, name: str, args: str) -> str:
    fn = COMMANDS.get(name.lower())
    if fn is None:
        return f"-ERR {name} Command not found!\n"
    return fn(sim, args.strip())


def _session(sim, uuid: str):
    ch = sim.channels.get(uuid)
    if ch is None or ch.hungup and ch.destroyed:
        return None
    return ch.session


def _first_session(sim, args: str):
    """The session the first argument names, or None."""
    return _session(sim, args.split()[0] if args else "")


# -- calls ----------------------------------------------------------------------------------

@command("originate")
def originate(sim, args):
    return originate_api(sim, args)


@command("uuid_kill")
def uuid_kill(sim, args):
    argv = args.split()
    if not argv:
        return "-USAGE: <uuid> [cause]\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    s.hangup(str2cause(argv[1] if len(argv) > 1 else None))
    return "+OK\n"


@command("uuid_transfer")
def uuid_transfer(sim, args):
    argv = split_args(args)
    if len(argv) < 2:
        return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    rest = argv[1:]
    targets = [s]
    if rest[0].lower() in ("-bleg", "-both"):
        flag = rest.pop(0).lower()
        other = s.bridged or s.partner
        if flag == "-bleg":
            targets = [other] if other is not None else []
        elif other is not None:
            targets.append(other)
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    if not targets:
        return "-ERR\n"
    dest = rest[0]
    dialplan = rest[1] if len(rest) > 1 else "XML"
    context = rest[2] if len(rest) > 2 else "default"
    for target in targets:
        target.request_transfer(dest, dialplan, context)
    return "+OK\n"


@command("uuid_exists")
def uuid_exists(sim, args):
    return "true" if _first_session(sim, args) else "false"


@command("uuid_getvar")
def uuid_getvar(sim, args):
    argv = args.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <var>\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    value = s.channel.get_var(argv[1])
    return "_undef_" if value is None else value


@command("uuid_setvar")
def uuid_setvar(sim, args):
    argv = split_args(args, 3)
    if len(argv) < 2:
        return "-USAGE: <uuid> <var> [value]\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    value = argv[2] if len(argv) > 2 else None
    s.channel.set_var(argv[1], value)
    return "+OK\n"


@command("uuid_setvar_multi")
def uuid_setvar_multi(sim, args):
    argv = split_args(args, 2)
    if len(argv) < 2:
        return "-USAGE: <uuid> <var>=<value>;<var>=<value>...\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    for item in argv[1].split(";"):
        name, sep, value = item.partition("=")
        if name:
            s.channel.set_var(name, value if sep else None)
    return "+OK\n"


def _answering(method: str):
    """``uuid_answer`` / ``uuid_pre_answer``: the session's ``answer`` / ``pre_answer``."""
    def run(sim, args):
        s = _first_session(sim, args)
        if s is None:
            return "-ERROR\n"
        getattr(s, method)()
        return "+OK\n"
    return run


command("uuid_answer")(_answering("answer"))
command("uuid_pre_answer")(_answering("pre_answer"))


@command("uuid_park")
def uuid_park(sim, args):
    s = _first_session(sim, args)
    if s is None:
        return NO_CHANNEL
    if s.in_app != "park":
        s.park_requested = True
        s.signal()
    return "+OK\n"


@command("uuid_hold")
def uuid_hold(sim, args):
    return "+OK Success\n"


@command("uuid_bridge")
def uuid_bridge(sim, args):
    argv = args.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <other_uuid>\n"
    if _session(sim, argv[0]) is None or _session(sim, argv[1]) is None:
        return "-ERR Invalid uuid\n"
    return "+OK " + argv[1] + "\n"


@command("uuid_break")
def uuid_break(sim, args):
    """Stops the current playback now (the simulator cuts what the far end hears at this
    instant; a real switch was silent 28-38 ms later, downlink.md §1); ``all`` also drops
    the queued messages, so none of them is heard."""
    argv = args.split()
    if not argv:
        return "-USAGE: <uuid> [all]\n"
    s = _session(sim, argv[0])
    if s is None:
        return NO_CHANNEL
    if len(argv) > 1 and argv[1].lower() == "all":
        s.messages.clear()
    if s.in_app not in (None, "park"):
        s.break_requested, s.break_at = True, time.monotonic()
        s.signal()
    return "+OK\n"


@command("uuid_broadcast")
def uuid_broadcast(sim, args):
    argv = split_args(args, 3)
    if len(argv) < 2:
        return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
    s = _session(sim, argv[0])
    if s is None:
        return "-ERR invalid uuid\n"
    path = argv[1]
    leg = argv[2].lower() if len(argv) > 2 else "aleg"
    targets = []
    if leg in ("aleg", "both", "holdb"):
        targets.append(s)
    if leg in ("bleg", "both") and (s.bridged or s.partner) is not None:
        targets.append(s.bridged or s.partner)
    for target in targets:
        target.messages.append(_broadcast_message(sim, path))
        target.signal()
    return "+OK Message sent\n"


#: switch_ivr_broadcast's lead frames: the session reads 5 frames before it executes the
#: message, so each broadcast starts ~100-120 ms after it could have (downlink.md §2).
LEAD_FRAMES = 5


def _broadcast_message(sim, path: str) -> dict:
    """``switch_ivr_broadcast``: an execute message with event-lock and lead-frames; the
    ``app::args`` and ``app!cause::args`` forms pick another application.  ``arrived`` is
    when the command came (the session's playback timing starts from it)."""
    app, arg, hangup_after = "playback", path, None
    if "::" in path:
        head, _, arg = path.partition("::")
        app = head
        if "!" in head:
            app, _, cause = head.partition("!")
            hangup_after = str2cause(cause or "normal_clearing")
    headers = sim.core.build_headers("COMMAND", ("switch_ivr_async.c", "switch_ivr_broadcast", 5731))
    headers += [("call-command", "execute"), ("execute-app-name", app), ("execute-app-arg", arg),
                ("event-lock", "true"), ("lead-frames", str(LEAD_FRAMES))]
    return {"command": "execute", "app": app, "arg": arg, "headers": headers, "hangup_after": hangup_after,
            "arrived": time.monotonic(), "lead_frames": LEAD_FRAMES}


@command("uuid_record")
def uuid_record(sim, args):
    argv = split_args(args)
    if len(argv) < 3:
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
    s = _session(sim, argv[0])
    if s is None:
        return "-ERR Cannot locate session!\n"
    action, path = argv[1].lower(), argv[2]
    if action == "start":
        limit = float(argv[3]) if len(argv) > 3 and argv[3].isdigit() and int(argv[3]) > 0 else None
        return "+OK Success\n" if s.start_record(path, limit) else "-ERR Cannot record session!\n"
    if action == "stop":
        return "+OK Success\n" if s.stop_record(path) else "-ERR Cannot stop record session!\n"
    if action in ("mask", "unmask", "pause", "resume"):
        if s.recording is None:
            return f"-ERR Cannot {action} recording session!\n"
        return "+OK Success\n"
    return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"


@command("uuid_recv_dtmf")
def uuid_recv_dtmf(sim, args):
    argv = args.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    s = _session(sim, argv[0])
    if s is None:
        return "-ERR Cannot locate session!\n"
    sim._queue_dtmf(s, _dtmf_digits(argv[1]), duration=2000, source="APP")
    return f"+OK {argv[0]} received DTMF {argv[1]}.\n"


@command("uuid_send_dtmf")
def uuid_send_dtmf(sim, args):
    argv = args.split()
    if len(argv) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    s = _session(sim, argv[0])
    if s is None:
        return "-ERR Cannot locate session!\n"
    s.channel.sent_dtmf.append(argv[1])
    return f"+OK {argv[0]} sent DTMF {argv[1]}.\n"


def _dtmf_digits(data: str) -> str:
    """``digits[@ms]`` groups joined by ``+``; ``w``/``W`` pauses are not digits."""
    out = []
    for group in data.split("+"):
        digits = group.split("@", 1)[0]
        out += [d for d in digits if d in "0123456789*#ABCDabcd"]
    return "".join(out)


@command("uuid_audio_stream")
def uuid_audio_stream(sim, args):
    """mod_audio_stream's API: a real WebSocket per stream (``audio_stream.py``)."""
    return audio_stream.api(sim, args)


@command("uuid_dump")
def uuid_dump(sim, args):
    """The channel's data as a CHANNEL_DATA event; an unknown uuid answers ``-ERR No such
    channel!`` (mod_commands.c ``uuid_dump_function``)."""
    argv = args.split()
    if not argv:
        return "-USAGE: <uuid> [format]\n"
    s = _session(sim, argv[0])
    if s is None:
        return "-ERR No such channel!\n"
    ch = s.channel
    headers = sim.core.build_headers("CHANNEL_DATA", CALLING["CHANNEL_DATA"],
                                     lambda: ch.event_headers("CHANNEL_DATA"))
    fmt = argv[1].lower() if len(argv) > 1 else "txt"
    if fmt == "json":
        return encode_json_event(headers).decode("utf-8")
    return encode_plain_event(headers).decode("utf-8")


# -- system ---------------------------------------------------------------------------------

@command("status")
def status(sim, args):
    """mod_commands ``status_function``: "per Sec" is the last second's budget use
    (``sps_last``), "out of max" the sessions-per-second limit, then max-sessions."""
    s = sim.stats()
    return (f"UP {uptime_text(now_us() - sim.core.started_us)}\n"
            f"FreeSWITCH (Version {FS_VERSION_LONG}) is ready\n"
            f"{s['since_startup']} session(s) since startup\n"
            f"{s['count']} session(s) - peak {s['peak']}, last 5min {s['peak_5min']} \n"
            f"{s['per_sec']} session(s) per Sec out of max {sim.throttle.sessions_per_second}, "
            f"peak {s['per_sec_peak']}, last 5min {s['per_sec_5min']} \n"
            f"{_int32(sim.throttle.max_sessions)} session(s) max\n"
            f"min idle cpu 0.00/99.00\n"
            f"Current Stack Size/Max 240K/8192K\n")


CTL_SYNTAX = (
    "[api_expansion [on|off]|recover|send_sighup|hupall|pause [inbound|outbound]|resume [inbound|outbound]|"
    "shutdown [cancel|elegant|asap|now|restart]|sps|sps_peak_reset|sync_clock|sync_clock_when_idle|reclaim_mem|"
    "max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|"
    "loglevel [level]|debug_level [level]|mdns_resolve [enable|disable]]"
)


@command("fsctl")
def fsctl(sim, args):
    """mod_commands ``ctl_function``, its session-limit subcommands only (``sps [n]``,
    ``max_sessions [n]``, ``last_sps``, ``sps_peak_reset``); the others answer as an
    unknown subcommand does.  A value is read with ``atoi``; 0 (or no value) only reads."""
    if not args:
        return f"-USAGE: {CTL_SYNTAX}\n"
    argv = split_args(args)
    sub = argv[0].lower()
    value = atoi(argv[1]) if len(argv) > 1 else 0
    t = sim.throttle
    if sub == "sps":
        if value > 0:
            t.sessions_per_second = value
        return f"+OK sessions per second: {t.sessions_per_second}\n"
    if sub == "max_sessions":
        if value:
            t.max_sessions = value & 0xFFFFFFFF  # switch_core_session_limit takes a uint32_t
        return f"+OK max sessions: {_int32(t.max_sessions)}\n"
    if sub == "last_sps":
        return f"+OK last sessions per second: {t.last}\n"
    if sub == "sps_peak_reset":
        t.peak = 0
        return "+OK max sessions per second counter reset\n"
    return f"-ERR Invalid command\nUSAGE: fsctl {CTL_SYNTAX}\n"


def _int32(value: int) -> int:
    """An unsigned 32-bit value printed with ``%d``."""
    return value - (1 << 32) if value >= 1 << 31 else value


def uptime_text(us: int) -> str:
    secs, micro = divmod(us, 1_000_000)
    parts = [
        (secs // 31_536_000, "year"), (secs % 31_536_000 // 86_400, "day"), (secs % 86_400 // 3_600, "hour"),
        (secs % 3_600 // 60, "minute"), (secs % 60, "second"), (micro // 1000, "millisecond"),
        (micro % 1000, "microsecond"),
    ]
    return ", ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts)


@command("version")
def version(sim, args):
    return f"FreeSWITCH Version {FS_VERSION} (git a88d069 2024-08-02 21:02:27Z 64bit)\n"


@command("hostname")
def hostname(sim, args):
    return sim.core.hostname


@command("echo")
def echo(sim, args):
    return args


@command("file_exists")
def file_exists(sim, args):
    return "true" if args and os.path.exists(args) else "false"


@command("module_exists")
def module_exists(sim, args):
    name = args.strip()
    return ("true" if name in sim.modules else "false") if name else ""


@command("xml_locate")
def xml_locate(sim, args):
    """Only ``dialplan context name <context>`` (what ``voicegw doctor`` asks) is located."""
    argv = args.split()
    if len(argv) not in (1, 4):
        return "-Error bad args\n"
    dialplan = sim.router.dialplan
    if argv[:3] == ["dialplan", "context", "name"] and dialplan is not None:
        context = dialplan.dialplan.contexts.get(argv[3])
        if context is not None:
            return ET.tostring(context, encoding="unicode")
    return "can't find anything\n"


@command("global_getvar")
def global_getvar(sim, args):
    return sim.global_vars.get(args.strip(), "")


CHANNEL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,"
    "application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,"
    "write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,"
    "callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,"
    "initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context"
).split(",")
CALL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,presence_id,"
    "presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,hostname,"
    "sent_callee_name,sent_callee_num,b_uuid,b_direction,b_created,b_created_epoch,b_name,b_state,"
    "b_cid_name,b_cid_num,b_ip_addr,b_dest,b_presence_id,b_presence_data,b_accountcode,b_callstate,"
    "b_callee_name,b_callee_num,b_callee_direction,b_sent_callee_name,b_sent_callee_num,call_created_epoch"
).split(",")


def channel_row(sim, ch) -> dict[str, str]:
    p = ch.profile
    first = ch.initial_profile or p
    codec = ch.codec
    outbound = ch.direction == "outbound"
    return {
        "uuid": ch.uuid, "direction": ch.direction, "created": date_local(p.times.created),
        "created_epoch": str(p.times.created // 1_000_000), "name": ch.name, "state": ch.running_state,
        "cid_name": p.caller_id_name, "cid_num": p.caller_id_number,
        # the row keeps the address of the profile it was written with (a transfer rewrites it)
        "ip_addr": p.network_addr if p.profile_index > 1 else first.network_addr,
        "dest": p.destination_number, "application": ch.current_app or "",
        "application_data": ch.current_app_data or "", "dialplan": p.dialplan, "context": p.context,
        "read_codec": codec.name if codec else "", "read_rate": str(codec.rate) if codec else "",
        "read_bit_rate": str(codec.bit_rate) if codec else "", "write_codec": codec.name if codec else "",
        "write_rate": str(codec.rate) if codec else "", "write_bit_rate": str(codec.bit_rate) if codec else "",
        "secure": "", "hostname": sim.core.hostname, "presence_id": "", "presence_data": "", "accountcode": "",
        "callstate": ch.callstate, "callee_name": p.callee_id_name, "callee_num": p.callee_id_number,
        "callee_direction": "RECV" if outbound and ch.get_var("channel_cid_flipped") else "",
        "call_uuid": ch.uuid if outbound else "", "sent_callee_name": "", "sent_callee_num": "",
        "initial_cid_name": first.caller_id_name, "initial_cid_num": first.caller_id_number,
        "initial_ip_addr": first.network_addr, "initial_dest": first.destination_number,
        "initial_dialplan": first.dialplan, "initial_context": first.context,
    }


def _rows(sim, kind: str) -> list[dict[str, str]]:
    rows = []
    for ch in list(sim.channels.values()):
        row = channel_row(sim, ch)
        if kind == "channels":
            rows.append(row)
            continue
        s = ch.session
        if s is not None and s.bridged is not None and s.bridge_role == "originatee":
            continue
        call = {k: row.get(k, "") for k in CALL_COLUMNS}
        if s is not None and s.bridged is not None:
            brow = channel_row(sim, s.bridged.channel)
            for key in CALL_COLUMNS:
                if key.startswith("b_"):
                    call[key] = brow.get(key[2:], "")
            call["call_created_epoch"] = row["created_epoch"]
        rows.append(call)
    return rows


@command("show")
def show(sim, args):
    argv = args.split()
    if not argv:
        return "-USAGE: show <channels|calls> [count|as json]\n"
    what = argv[0].lower()
    if what not in ("channels", "calls"):
        return "-ERR Invalid command\n"
    rest = [a.lower() for a in argv[1:]]
    rows = _rows(sim, what)
    if rest and rest[0] == "count":
        return f"\n{len(rows)} total.\n"
    if rest[:2] == ["as", "json"]:
        if not rows:
            return '{"row_count": 0}\n'
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"), ensure_ascii=False)
    if rest and rest[0] == "like" and len(argv) > 2:
        needle = argv[2]
        rows = [r for r in rows if any(needle in v for v in r.values())]
    if not rows:
        return f"\n{len(rows)} total.\n"
    columns = CHANNEL_COLUMNS if what == "channels" else CALL_COLUMNS
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


@command("sofia")
def sofia(sim, args):
    argv = args.split()
    if len(argv) >= 3 and argv[0] == "status" and argv[1] == "gateway":
        name = argv[2]
        if name not in sim.gateways:
            return "Invalid Gateway!\n"
        proxy = sim.gateways[name]
        line = "=" * 97
        fields = [
            ("Name    ", name), ("Profile ", "external"), ("Scheme  ", "Digest"), ("Realm   ", proxy),
            ("Username", name), ("Password", "yes"), ("From    ", f"<sip:{name}@{proxy}>"),
            ("Contact ", f"<sip:gw+{name}@{sim.local_ip}:5080;transport=udp;gw={name}>"),
            ("Exten   ", name), ("To      ", f"sip:{name}@{proxy}"), ("Proxy   ", f"sip:{proxy}"),
            ("Context ", "public"), ("Expires ", "3600"), ("Freq    ", "3600"), ("Ping    ", "0"),
            ("PingFreq", "0"), ("PingTime", "0.00"), ("PingState", "0/0/0"), ("State   ", "REGED"),
            ("Status  ", "UP"), ("Uptime  ", f"{(now_us() - sim.core.started_us) // 1_000_000}s"),
            ("CallsIN ", "0"), ("CallsOUT", str(sim.gateway_calls.get(name, 0))), ("FailedCallsIN", "0"),
            ("FailedCallsOUT", "0"),
        ]
        return line + "\n" + "".join(f"{k}\t{v}\n" for k, v in fields) + line + "\n"
    return "-ERR Unknown command\n"


def new_job_uuid() -> str:
    return str(uuidlib.uuid4())
