"""``originate``: argument and dial-string parsing, and placing the outbound leg.

Parsing follows FreeSWITCH (research/freeswitch.md §3):

* API arguments are split on blanks by ``switch_separate_string``: ``'…'`` groups (a quote
  only counts when a closing one follows), the quotes are removed, ``\\'`` ``\\"`` ``\\\\``
  and ``\\n \\r \\t \\s`` are unescaped, any other ``\\x`` is kept as is;
* ``{var=val,…}`` global variables (``\\,`` keeps a comma, ``^^<c>`` changes the
  separator), then ``[var=val,…]`` leg variables, then the endpoint; only the first leg of
  a ``,``/``|`` list is dialled;
* the application is ``&app(args)`` (args up to the last ``)``) or an extension routed
  through ``<dialplan> <context>``.

Placing a leg (event orders from the captures, "Order seen" in fs-captures/README.md):

* sofia: CHANNEL_OUTGOING -> CHANNEL_STATE(CS_INIT) -> CHANNEL_CREATE -> CHANNEL_ORIGINATE ->
  CHANNEL_STATE(CS_ROUTING) -> CHANNEL_STATE(CS_CONSUME_MEDIA) -> [far end: PROGRESS /
  PROGRESS_MEDIA, CODEC x2, ANSWER, or a refusal] -> CALL_UPDATE when accepted; no
  CHANNEL_UUID event even with origination_uuid;
* loopback: CHANNEL_UUID (with origination_uuid) first, and a B leg that runs the dialplan;
* originate returns on answer, or on early media unless ``ignore_early_media=true``
  (``return_ring_ready=true`` also accepts ringing).

Every leg first asks the switch's session limits (``throttle.py``), as the endpoints do
before anything else: a refused sofia leg, or a refused loopback A leg, fails with
``DESTINATION_OUT_OF_ORDER`` and no channel (mod_sofia ``sofia_outgoing_channel`` and
mod_loopback ``channel_outgoing_channel`` return that cause when
``switch_core_session_request`` gives them nothing), so a sofia leg is refused before its
gateway name is even looked at.  A loopback B leg is requested in the A leg's
``channel_on_init``; when it is refused the A leg stays in its first state and nothing
answers it, so the originate ends at its timeout.
"""

from __future__ import annotations

import uuid as uuidlib

import gevent
from gevent.event import Event as GEvent

from gateway.esl.values import switch_true

from . import endpoints
from .causes import sip_cause, str2cause
from .channel import CallerProfile, Channel
from .core import now_us
from .outcomes import TIMER_B, Outcome

ORIGINATE_USAGE = ("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                   "[<cid_name>] [<cid_num>] [<timeout_sec>]\n")
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "s": " "}


# -- parsing ----------------------------------------------------------------------------------

def _cleanup(token: str) -> str:
    out = []
    inq = False
    i = 0
    while i < len(token):
        c = token[i]
        if c == "\\" and i + 1 < len(token):
            nxt = token[i + 1]
            if nxt in ("'", '"', "\\"):
                out.append(nxt)
                i += 2
                continue
            if nxt in _UNESCAPE:
                out.append(_UNESCAPE[nxt])
                i += 2
                continue
        if c == "'" and (inq or "'" in token[i + 1:]):
            inq = not inq
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out).strip(" ")


def split_args(text: str, limit: int | None = None) -> list[str]:
    """``switch_separate_string(text, ' ', argv, limit)``."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if limit is not None and len(tokens) == limit - 1:
            tokens.append(text[i:])
            break
        start = i
        inq = False
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "'" and (inq or "'" in text[i + 1:]):
                inq = not inq
            elif c in " \t" and not inq:
                break
            i += 1
        tokens.append(text[start:i])
    return [_cleanup(t) for t in tokens]


def _split_vars(body: str) -> list[tuple[str, str]]:
    delim = ","
    if body.startswith("^^") and len(body) > 2:
        delim, body = body[2], body[3:]
    items, cur, i = [], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] == delim:
            cur.append(delim)
            i += 2
            continue
        if c == delim:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    items.append("".join(cur))
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if sep and name.strip():
            out.append((name.strip(), value))
    return out


def parse_dial_string(url: str) -> tuple[list[tuple[str, str]], str]:
    """Returns the variables (global then leg, in order) and the first leg's endpoint."""
    variables: list[tuple[str, str]] = []
    rest = url.strip()
    closers = {"{": "}", "[": "]", "<": ">"}
    while rest and rest[0] in closers:
        close = closers[rest[0]]
        end = rest.find(close)
        if end < 0:
            break
        variables += _split_vars(rest[1:end])
        rest = rest[end + 1:]
    for sep in ("|", ","):
        if sep in rest:
            rest = rest.split(sep, 1)[0]
    while rest and rest[0] == "[":
        end = rest.find("]")
        if end < 0:
            break
        variables += _split_vars(rest[1:end])
        rest = rest[end + 1:]
    return variables, rest.strip()


def parse_app(exten: str) -> tuple[str, str] | None:
    if not exten.startswith("&") or len(exten) < 2:
        return None
    body = exten[1:]
    if "(" in body:
        name, _, arg = body.partition("(")
        end = arg.rfind(")")
        return name.strip(), (arg[:end] if end >= 0 else arg)
    name, _, arg = body.partition(" ")
    return name.strip(), arg.strip()


# -- placing a leg ----------------------------------------------------------------------------

class DialError(Exception):
    """An early failure: no channel was created (INVALID_GATEWAY, error/… endpoints)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class Dialer:
    """Creates outbound legs for originate and bridge."""

    def __init__(self, sim) -> None:
        self.sim = sim

    def dial(self, target: str, variables: list[tuple[str, str]], *, context: str = "default",
             dialplan: str = "XML", cid_name: str | None = None, cid_num: str | None = None,
             timeout: int | None = None):
        """Place one leg and wait until it is accepted or fails.  Returns
        ``(session, None)`` on success or ``(None, cause)``."""
        sim = self.sim
        var_map = dict(variables)
        cid_name = var_map.get("origination_caller_id_name") or cid_name or "FreeSWITCH"
        cid_num = var_map.get("origination_caller_id_number") or cid_num or "0000000000"
        if var_map.get("originate_timeout", "").strip().isdigit():
            timeout = int(var_map["originate_timeout"])
        if not timeout or timeout <= 0:
            timeout = 60
        early_ok = not (var_map.get("ignore_early_media") and var_map.get("ignore_early_media") != "false")
        ring_ok = switch_true(var_map.get("return_ring_ready"))
        wanted_uuid = var_map.get("origination_uuid")
        uuid = wanted_uuid if wanted_uuid and wanted_uuid not in sim.channels else str(uuidlib.uuid4())

        tech, _, rest = target.partition("/")
        tech = tech.lower()
        if tech == "error":
            raise DialError(str2cause(rest))
        if tech == "loopback":
            session = self._loopback(uuid, rest, variables, cid_name, cid_num, early_ok,
                                     set_uuid=bool(wanted_uuid) and uuid == wanted_uuid)
            outcome = None
        elif tech in ("sofia", "user"):
            session, outcome = self._sofia(uuid, tech, rest, variables, context, cid_name, cid_num, early_ok)
        else:
            raise DialError("CHAN_NOT_IMPLEMENTED")
        return self._wait(session, outcome, timeout, early_ok, ring_ok)

    # -- sofia ------------------------------------------------------------------------------
    def _sofia(self, uuid, tech, rest, variables, context, cid_name, cid_num, early_ok):
        sim = self.sim
        if not sim.request_session():
            raise DialError("DESTINATION_OUT_OF_ORDER")
        gateway = None
        profile_name = "external"
        if tech == "user":
            number = rest.split("@", 1)[0]
            host, port, profile_name = sim.local_ip, 5060, "internal"
            name = f"sofia/internal/{number}@{host}"
        else:
            profile_name, _, dest = rest.partition("/")
            if profile_name == "gateway":
                gateway, _, number = dest.partition("/")
                if gateway not in sim.gateways:
                    raise DialError("INVALID_GATEWAY")
                sim.gateway_calls[gateway] = sim.gateway_calls.get(gateway, 0) + 1
                if not number:
                    raise DialError("INVALID_URL")
                proxy = sim.gateways[gateway]
                host, _, port_s = proxy.partition(":")
                port = int(port_s or 5060)
                profile_name = "external"
                name = f"sofia/{profile_name}/{number}"
            else:
                if not dest:
                    raise DialError("INVALID_URL")
                number, _, hostport = dest.partition("@")
                host, _, port_s = (hostport or sim.local_ip).partition(":")
                port = int(port_s) if port_s.isdigit() else 5060
                name = f"sofia/{profile_name}/{dest}"
        dialog = endpoints.SipDialog(sim.local_ip, number, host, port, cid_num, cid_name, profile_name)
        ch = self._new_channel(uuid, name, "outbound", "sofia", number, context, cid_name, cid_num,
                               source="src/switch_ivr_originate.c", callee_num=number)
        session = sim._session(ch, dialog)
        ch.running_state, ch.state_number = "CS_NONE", 1
        ch.fire("CHANNEL_OUTGOING")
        self._init_states(ch, endpoints.sofia_out_create(ch, dialog, variables, early_ok, gateway))
        return session, sim.outcome_for(number)

    # -- loopback ---------------------------------------------------------------------------
    def _loopback(self, uuid, rest, variables, cid_name, cid_num, early_ok, set_uuid):
        sim = self.sim
        if not sim.request_session():
            raise DialError("DESTINATION_OUT_OF_ORDER")
        parts = rest.split("/")
        exten = parts[0]
        context = parts[1] if len(parts) > 1 and parts[1] else "default"
        dialplan = parts[2] if len(parts) > 2 and parts[2] else "xml"
        a = self._new_channel(uuid, f"loopback/{exten}-a", "outbound", "loopback", exten, context, cid_name,
                              cid_num, source="mod_loopback", callee_num=context, dialplan=dialplan)
        a_session = sim._session(a)
        from .session import L16

        if not sim.request_session():  # the B leg, asked for in the A leg's channel_on_init
            a.codec = L16
            a.running_state, a.state_number = "CS_NONE", 1
            a.set_vars(endpoints.loopback_a_initial(a))
            a.fire("CHANNEL_OUTGOING")
            self._init_states(a, [], routed=False)
            return a_session
        b_uuid = str(uuidlib.uuid4())
        b = self._new_channel(b_uuid, f"loopback/{exten}-b", "inbound", "loopback", exten, context, cid_name,
                              cid_num, source="mod_loopback", callee_num=context, dialplan=dialplan)
        b_session = sim._session(b)
        a_session.partner, b_session.partner = b_session, a_session
        a.codec = b.codec = L16
        a.running_state, a.state_number = "CS_NONE", 1
        a.set_vars(endpoints.loopback_a_initial(a))
        if set_uuid:
            a.fire("CHANNEL_UUID", pre=[("Old-Unique-ID", str(uuidlib.uuid4()))])
        a.fire("CHANNEL_OUTGOING")
        self._init_states(a, endpoints.loopback_a_create(variables, early_ok, b_uuid))
        # the B leg: an inbound call into the dialplan
        b.running_state, b.state_number = "CS_INIT", 1
        b.set_vars(endpoints.loopback_b_create(b, variables, uuid))
        b.fire("CHANNEL_STATE")
        b.state_number = 2
        b.fire("CHANNEL_CREATE")
        b.running_state = "CS_ROUTING"
        b.set_callstate("RINGING")
        b_session.start(None, route=(exten, dialplan, context))
        return a_session

    # -- shared -----------------------------------------------------------------------------
    def _new_channel(self, uuid, name, direction, endpoint, dest, context, cid_name, cid_num, *, source,
                     callee_num, dialplan=""):
        sim = self.sim
        now = now_us()
        profile = CallerProfile(
            direction=direction, uuid=uuid, chan_name=name, source=source, context=context,
            destination_number=dest, caller_id_name=cid_name, caller_id_number=cid_num,
            orig_caller_id_name=cid_name, orig_caller_id_number=cid_num,
            callee_id_name="Outbound Call", callee_id_number=callee_num, ani=cid_num, dialplan=dialplan,
        )
        profile.times.created = profile.times.profile_created = now
        ch = Channel(sim.core, uuid, name, direction, profile, endpoint)
        ch.session_id = sim._next_session_id()
        sim._add_channel(ch)
        return ch

    def _init_states(self, ch: Channel, create_vars, routed: bool = True) -> None:
        """CS_INIT (CHANNEL_CREATE, CHANNEL_ORIGINATE), then routing; a leg whose endpoint
        failed its on_init (``routed=False``) stays in CS_INIT."""
        ch.set_running_state("CS_INIT", 1)
        ch.state_number = 2
        ch.set_vars(create_vars)
        ch.fire("CHANNEL_CREATE")
        ch.fire("CHANNEL_ORIGINATE")
        if not routed:
            return
        ch.set_running_state("CS_ROUTING", 2)
        ch.set_running_state("CS_CONSUME_MEDIA", 7)

    def _wait(self, session, outcome: Outcome | None, timeout: int, early_ok: bool, ring_ok: bool):
        ch = session.channel
        wakeup = session.originate_wakeup = GEvent()
        far = None
        if outcome is not None:
            far = gevent.spawn(self._far_end, session, outcome)
            session.timers.append(far)
        deadline = now_us() + timeout * 1_000_000
        accepted = False
        while True:
            wakeup.clear()
            if session.killed:
                return None, "CRASH"
            if ch.hungup:
                break
            t = ch.profile.times
            if t.answered or (early_ok and t.progress_media) or (ring_ok and t.progress):
                accepted = True
                break
            remaining = (deadline - now_us()) / 1e6
            if remaining <= 0:
                session.hangup("NO_ANSWER")
                break
            wakeup.wait(remaining)
        session.originate_wakeup = None
        if not accepted:
            if far is not None:
                far.kill(block=False)
            cause = ch.hangup_cause or "NORMAL_CLEARING"
            session.finish()
            gevent.spawn(session.destroy)
            return None, cause
        if ch.answered:
            ch.set_var("endpoint_disposition", "ANSWER")
        elif session.dialog is not None:
            ch.set_vars(endpoints.sofia_media(ch, session.dialog, with_ep_codec=True, with_flow=True)
                        + [("endpoint_disposition", "EARLY MEDIA")])
            session.early_accepted = True
        ch.flip_cid()
        return session, None

    def _far_end(self, session, outcome: Outcome) -> None:
        """The simulated far end of a sofia leg, in its own greenlet."""
        sim = self.sim
        ch = session.channel
        dlg = session.dialog
        delay = sim.answer_delay if outcome.delay is None else outcome.delay
        wake = session.originate_wakeup

        def poke():
            waiter = session.originate_wakeup or wake
            if waiter is not None:
                waiter.set()

        if outcome.local:
            if outcome.final == 408 and delay >= TIMER_B:
                delay = TIMER_B
            gevent.sleep(delay)
            if not ch.hungup:
                session.hangup(outcome.cause or sip_cause(outcome.final or 503),
                               pre_vars=endpoints.sofia_refused(dlg, outcome.final or 503, local=True))
            return
        if outcome.provisional == 180:
            ch.profile.network_addr = dlg.host
            ch.set_vars(endpoints.sofia_out_response(dlg, sdp=False, final=False))
            ch.mark_ring_ready()
            ch.set_callstate("RINGING")
            poke()
        elif outcome.provisional == 183:
            ch.profile.network_addr = dlg.host
            ch.set_vars(endpoints.sofia_out_response(dlg, sdp=True, final=False, disposition="EARLY MEDIA"))
            ch.mark_pre_answered()
            ch.set_callstate("EARLY")
            from .session import PCMU

            ch.set_codec(PCMU)
            poke()
        if outcome.final is None:
            return
        if delay > 0:
            gevent.sleep(delay)
        else:
            gevent.sleep(0)
        if ch.hungup:
            return
        ch.profile.network_addr = dlg.host
        if outcome.final == 200:
            if outcome.provisional == 183:
                if getattr(session, "early_accepted", False):
                    ch.set_vars(endpoints.sofia_out_response(dlg, sdp=True, final=False))
                    session.disposition_on_hangup = "ANSWER"
                else:
                    ch.set_vars(endpoints.sofia_media(ch, dlg, with_ep_codec=False, with_flow=True)
                                + [("endpoint_disposition", "EARLY MEDIA")]
                                + endpoints.sofia_out_response(dlg, sdp=True, final=False))
                ch.mark_answered()
                ch.set_callstate("ACTIVE")
            else:
                ch.set_vars(endpoints.sofia_out_response(dlg, sdp=True, final=True)
                            + endpoints.sofia_media(ch, dlg, with_ep_codec=False, with_flow=False))
                from .session import PCMU

                ch.set_codec(PCMU)
                ch.mark_answered()
                ch.set_callstate("ACTIVE")
            poke()
            session.signal()
            if outcome.hangup_after is not None:
                gevent.sleep(outcome.hangup_after)
                if not ch.hungup:
                    session.hangup(outcome.hangup_cause, remote=True)
            return
        session.hangup(outcome.cause or sip_cause(outcome.final),
                       pre_vars=endpoints.sofia_refused(dlg, outcome.final, local=False))


def originate_api(sim, args: str) -> str:
    """The ``originate`` API: ``+OK <uuid>\\n`` / ``-ERR <CAUSE>\\n`` / ``-USAGE…``."""
    argv = split_args(args, 10)
    if len(argv) < 2:
        return ORIGINATE_USAGE

    def arg(i: int) -> str | None:
        return argv[i] if len(argv) > i and argv[i] and argv[i] != "undef" else None

    url, exten = argv[0], argv[1]
    dialplan = arg(2) or "XML"
    context = arg(3) or "default"
    timeout = int(arg(6)) if (arg(6) or "").isdigit() else None
    variables, target = parse_dial_string(url)
    application = parse_app(exten)
    try:
        session, cause = sim.dialer.dial(target, variables, context=context, dialplan=dialplan,
                                         cid_name=arg(4), cid_num=arg(5), timeout=timeout)
    except DialError as exc:
        return f"-ERR {exc.cause}\n"
    if session is None:
        return f"-ERR {cause}\n"
    if application is not None:
        session.start([application])
    else:
        session.start(None, route=(exten, dialplan, context))
    return f"+OK {session.channel.uuid}\n"


def bridge_leg(session, arg: str) -> None:
    """The ``bridge`` application (one leg): CHANNEL_BRIDGE on the A leg when the B leg is
    accepted, CHANNEL_UNBRIDGE when either side hangs up.  As mod_dptools: a failed B leg
    sets ``originate_failed_cause``/``originate_disposition`` and hangs the A leg up with
    its cause unless ``continue_on_fail`` allows it (without it NO_ANSWER,
    NO_USER_RESPONSE and ORIGINATOR_CANCEL go on); after the bridge,
    ``hangup_after_bridge`` hangs up, ``park_after_bridge`` parks, else the dialplan goes on."""
    sim = session.sim
    a = session.channel
    variables, target = parse_dial_string(arg)
    p = a.profile
    try:
        b_session, cause = sim.dialer.dial(target, variables, cid_name=p.caller_id_name, cid_num=p.caller_id_number)
    except DialError as exc:
        b_session, cause = None, exc.cause
    if b_session is None:
        a.set_var("originate_failed_cause", cause)
        a.set_var("originate_disposition", cause)
        a.set_var("DIALSTATUS", cause)
        setting = a.get_var("continue_on_fail")
        if setting is None:
            go_on = cause in ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL")
        else:
            from .causes import code

            go_on = switch_true(setting) or any(item.strip().upper() in (cause, str(code(cause)))
                                                 for item in setting.split(","))
        if not go_on:
            session.hangup(cause)
        return
    b = b_session.channel
    if not a.answered:
        session.answer()
    session.bridged, b_session.bridged = b_session, session
    session.bridge_role, b_session.bridge_role = "originator", "originatee"
    now = now_us()
    a.profile.times.bridged = b.profile.times.bridged = now
    a.set_var("bridge_to", b.uuid)
    a.set_var("last_bridge_to", b.uuid)
    b.set_var("bridge_to", a.uuid)
    a.other = ("originatee", b.profile)
    b.other = ("originator", a.profile)
    bridge_ids = [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]
    a.fire("CHANNEL_BRIDGE", pre=bridge_ids)
    while not b.hungup:
        why = session.wait(until=lambda: b.hungup)
        if why in ("hangup", "transfer", "park"):
            break
        if why == "break":
            session.break_requested = False
    a.fire("CHANNEL_UNBRIDGE", pre=bridge_ids)
    session.bridged = b_session.bridged = None
    a.set_var("originate_disposition", "SUCCESS")
    peer_cause = b.hangup_cause
    if not b.hungup:
        b_session.hangup(a.hangup_cause or "NORMAL_CLEARING")
    if not b_session.finished:
        b_session.finish()
        b_session.destroy()
    if a.hungup or session.transfer_target or session.park_requested:
        return
    if switch_true(a.get_var("park_after_bridge")):
        session.park_requested = True
    elif switch_true(a.get_var("hangup_after_bridge")):
        session.hangup(peer_cause or "NORMAL_CLEARING")
