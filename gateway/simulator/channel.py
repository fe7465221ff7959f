"""One channel: its state, caller profile, variables, and the header block of its events.

Header block facts (research/freeswitch.md §2.1, checked against fs-captures): after the
common block comes the *basic data* (``Channel-State`` = running state name,
``Channel-Call-State``, ``Channel-State-Number`` = the state the channel is heading to,
``Channel-Name``, ``Unique-ID``, ``Call-Direction``, ``Presence-Call-Direction``,
``Channel-HIT-Dialplan``, ``Channel-Call-UUID``, ``Answer-State``, ``Hangup-Cause`` once
hung up, the codec headers once a codec is set), then the caller profile (``Caller-*``),
then ``variable_*`` only for the event types in ``EXTENDED``.  Event-specific headers go
either before that block (``pre``) or after it (``post``), as FreeSWITCH adds them.

Channel variables behave like FreeSWITCH's: setting one deletes it and appends it at the
end (so the order of ``variable_*`` headers follows the history of sets), and an empty
value deletes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from gateway.esl.protocol import Headers

from .core import Calling, Core, now_us
from .heard import FrameClock, Heard
from .playout import ChannelOutput

STATE_NUMBERS = {
    "CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
    "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8, "CS_RESET": 9,
    "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12,
}
CALLSTATE_NUMBERS = {
    "DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5, "RING_WAIT": 6,
    "HANGUP": 7, "UNHELD": 8,
}

# Event types that carry variable_* (switch_channel_event_set_data -> extended data).
EXTENDED = frozenset({
    "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_ANSWER", "CHANNEL_PARK",
    "CHANNEL_UNPARK", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "REQUEST_PARAMS", "CHANNEL_DATA", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_DESTROY", "SESSION_HEARTBEAT", "API", "RECORD_START",
    "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "MEDIA_BUG_START", "MEDIA_BUG_STOP",
    "CHANNEL_HOLD", "CHANNEL_UNHOLD", "TEXT", "CUSTOM",
})

# Where FreeSWITCH fires each channel event (Event-Calling-File/-Function/-Line-Number, 1.10.12).
SC = "switch_channel.c"
CALLING: dict[str, Calling] = {
    "CHANNEL_STATE": (SC, "switch_channel_perform_set_running_state", 2408),
    "CHANNEL_CALLSTATE": (SC, "switch_channel_perform_set_callstate", 301),
    "CHANNEL_PROGRESS": (SC, "switch_channel_perform_mark_ring_ready_value", 3505),
    "CHANNEL_PROGRESS_MEDIA": (SC, "switch_channel_perform_mark_pre_answered", 3560),
    "CHANNEL_ANSWER": (SC, "switch_channel_perform_mark_answered", 3846),
    "CHANNEL_HANGUP": (SC, "switch_channel_perform_hangup", 3445),
    "CALL_UPDATE": (SC, "switch_channel_flip_cid", 3277),
    "DTMF": (SC, "switch_channel_dequeue_dtmf", 677),
    "CHANNEL_UUID": ("switch_core_session.c", "switch_core_session_set_uuid", 2051),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", 943),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2944),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2967),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", 1213),
    "PRIVATE_COMMAND": ("switch_ivr.c", "switch_ivr_parse_next_event", 804),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", 1646),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", 2020),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", 1481),
    "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", 1240),
    "MEDIA_BUG_START": ("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
    "MEDIA_BUG_STOP": ("switch_core_media_bug.c", "switch_core_media_bug_destroy", 106),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", 417),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", 469),
    "CODEC_READ": ("switch_core_codec.c", "switch_core_session_set_real_read_codec", 168),
    "CODEC_WRITE": ("switch_core_codec.c", "switch_core_session_set_write_codec", 450),
    "CHANNEL_DATA": ("mod_commands.c", "uuid_dump_function", 6468),
}


@dataclass
class Times:
    created: int = 0
    profile_created: int = 0
    answered: int = 0
    progress: int = 0
    progress_media: int = 0
    hungup: int = 0
    transferred: int = 0
    resurrected: int = 0
    bridged: int = 0
    last_hold: int = 0
    hold_accum: int = 0


@dataclass
class CallerProfile:
    """``switch_caller_profile_t`` and its event serialisation (``switch_caller.c``)."""

    direction: str
    uuid: str
    chan_name: str
    source: str
    context: str = "default"
    destination_number: str = ""
    caller_id_name: str = ""
    caller_id_number: str = ""
    orig_caller_id_name: str = ""
    orig_caller_id_number: str = ""
    callee_id_name: str = ""
    callee_id_number: str = ""
    network_addr: str = ""
    ani: str = ""
    aniii: str = ""
    username: str = ""
    dialplan: str = ""
    rdnis: str = ""
    transfer_source: str = ""
    logical_direction: str = ""
    profile_index: int = 1
    times: Times = field(default_factory=Times)

    def headers(self, prefix: str = "Caller") -> Headers:
        t = self.times
        return [
            (f"{prefix}-Direction", self.direction),
            (f"{prefix}-Logical-Direction", self.logical_direction or self.direction),
            (f"{prefix}-Username", self.username), (f"{prefix}-Dialplan", self.dialplan),
            (f"{prefix}-Caller-ID-Name", self.caller_id_name),
            (f"{prefix}-Caller-ID-Number", self.caller_id_number),
            (f"{prefix}-Orig-Caller-ID-Name", self.orig_caller_id_name),
            (f"{prefix}-Orig-Caller-ID-Number", self.orig_caller_id_number),
            (f"{prefix}-Callee-ID-Name", self.callee_id_name),
            (f"{prefix}-Callee-ID-Number", self.callee_id_number),
            (f"{prefix}-Network-Addr", self.network_addr), (f"{prefix}-ANI", self.ani),
            (f"{prefix}-ANI-II", self.aniii), (f"{prefix}-Destination-Number", self.destination_number),
            (f"{prefix}-Unique-ID", self.uuid), (f"{prefix}-Source", self.source),
            (f"{prefix}-Transfer-Source", self.transfer_source), (f"{prefix}-Context", self.context),
            (f"{prefix}-RDNIS", self.rdnis), (f"{prefix}-Channel-Name", self.chan_name),
            (f"{prefix}-Profile-Index", str(self.profile_index)),
            (f"{prefix}-Profile-Created-Time", str(t.profile_created)),
            (f"{prefix}-Channel-Created-Time", str(t.created)),
            (f"{prefix}-Channel-Answered-Time", str(t.answered)),
            (f"{prefix}-Channel-Progress-Time", str(t.progress)),
            (f"{prefix}-Channel-Progress-Media-Time", str(t.progress_media)),
            (f"{prefix}-Channel-Hangup-Time", str(t.hungup)),
            (f"{prefix}-Channel-Transfer-Time", str(t.transferred)),
            (f"{prefix}-Channel-Resurrect-Time", str(t.resurrected)),
            (f"{prefix}-Channel-Bridged-Time", str(t.bridged)),
            (f"{prefix}-Channel-Last-Hold", str(t.last_hold)),
            (f"{prefix}-Channel-Hold-Accum", str(t.hold_accum)),
            (f"{prefix}-Screen-Bit", "true"), (f"{prefix}-Privacy-Hide-Name", "false"),
            (f"{prefix}-Privacy-Hide-Number", "false"),
        ]


@dataclass
class Codec:
    name: str
    rate: int
    bit_rate: int


class Channel:
    """A live channel.  Tests read ``state``, ``variables``, ``played``, ``played_audio``,
    ``spoken``, ``dtmf`` (digits received), ``recordings``, ``applications`` (what it ran),
    ``events`` (names fired, in order) and ``heard`` (what the channel wrote toward its far
    end, ``heard.Heard``).

    ``frames`` is the channel's 20 ms frame clock, from the moment the channel was created
    (a choice: the phase of a real channel's timer was not measured)."""

    def __init__(self, core: Core, uuid: str, name: str, direction: str, profile: CallerProfile,
                 endpoint: str = "sofia") -> None:
        self.core = core
        self.uuid = uuid
        self.name = name
        self.direction = direction
        self.endpoint = endpoint
        self.profile = profile
        self.initial_profile = copy.copy(profile)
        self.session = None
        self.profile_visible = True
        self.running_state = "CS_NEW"
        self.state_number = 0
        self.callstate = "DOWN"
        self.answer_state = "ringing"
        self.hit_dialplan = direction == "inbound"
        self.hangup_cause: str | None = None
        self.codec: Codec | None = None
        self.variables: dict[str, str] = {}
        self.other: tuple[str, CallerProfile] | None = None
        self.created_at = time.time()
        self.session_id = 0
        # what tests look at
        self.events: list[str] = []
        self.played: list[str] = []
        self.spoken: list[str] = []
        self.dtmf: list[str] = []
        self.recordings: list[str] = []
        self.applications: list[tuple[str, str]] = []  # (app, expanded data), one per CHANNEL_EXECUTE
        self.played_audio: list[bytes] = []  # PCM of the WAV files played (Simulator.keep_played_audio)
        self.sent_dtmf: list[str] = []
        self.frames = FrameClock(time.monotonic())
        self.heard = Heard()
        self.output = ChannelOutput(self.heard, self.frames)
        # runtime bookkeeping
        self.destroyed = False
        self.last_app: tuple[str, str] | None = None
        self.current_app: str | None = None
        self.current_app_data: str = ""
        self.digits_dialed = ""

    # -- variables ------------------------------------------------------------------------
    def set_var(self, name: str, value: str | None) -> None:
        self.variables.pop(name, None)
        if value is not None and value != "":
            self.variables[name] = str(value)

    def set_vars(self, pairs) -> None:
        for name, value in pairs:
            self.set_var(name, value)

    def get_var(self, name: str) -> str | None:
        return self.variables.get(name)

    # -- state ----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.running_state

    @property
    def destination_number(self) -> str:
        return self.profile.destination_number

    @property
    def context(self) -> str:
        return self.profile.context

    @property
    def caller_id_name(self) -> str:
        return self.profile.caller_id_name

    @property
    def caller_id_number(self) -> str:
        return self.profile.caller_id_number

    @property
    def answered(self) -> bool:
        return self.profile.times.answered > 0

    @property
    def hungup(self) -> bool:
        return self.hangup_cause is not None

    def basic_headers(self) -> Headers:
        headers: Headers = [
            ("Channel-State", self.running_state), ("Channel-Call-State", self.callstate),
            ("Channel-State-Number", str(self.state_number)), ("Channel-Name", self.name),
            ("Unique-ID", self.uuid), ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.codec is not None:
            c = self.codec
            headers += [
                ("Channel-Read-Codec-Name", c.name), ("Channel-Read-Codec-Rate", str(c.rate)),
                ("Channel-Read-Codec-Bit-Rate", str(c.bit_rate)), ("Channel-Write-Codec-Name", c.name),
                ("Channel-Write-Codec-Rate", str(c.rate)), ("Channel-Write-Codec-Bit-Rate", str(c.bit_rate)),
            ]
        return headers

    def full_basic_headers(self) -> Headers:
        headers = self.basic_headers()
        if self.profile_visible:
            headers += self.profile.headers("Caller")
        if self.other is not None:
            kind, other = self.other
            headers.append(("Other-Type", kind))
            headers += other.headers("Other-Leg")
        return headers

    def var_headers(self) -> Headers:
        return [("variable_" + name, value) for name, value in self.variables.items()]

    def event_headers(self, name: str, pre: Headers = (), post: Headers = (), extended: bool | None = None) -> Headers:
        headers = list(pre) + self.full_basic_headers()
        if (name in EXTENDED) if extended is None else extended:
            headers += self.var_headers()
        headers += post
        return headers

    def event_segments(self, name: str, pre: Headers = (), post: Headers = (), extended: bool | None = None):
        """``event_headers`` cut in segments whose encoding can be reused from one event to
        the next: [pre + basic data] [caller profile] [variables] [post]."""
        basic = list(pre) + self.basic_headers()
        profile = self.profile.headers("Caller") if self.profile_visible else []
        segments = [basic, (profile, True)]
        if self.other is not None:
            basic_tail = [("Other-Type", self.other[0])] + self.other[1].headers("Other-Leg")
            segments.append((basic_tail, None))
        if (name in EXTENDED) if extended is None else extended:
            segments.append((self.var_headers(), True))
        segments.append((list(post), None))
        return segments

    def fire(self, name: str, pre: Headers = (), post: Headers = (), *, calling: Calling | None = None,
             extended: bool | None = None, body: str | None = None, prefix: Headers = (),
             subclass: str | None = None) -> None:
        """Fire a channel event now (the headers are a snapshot of this instant)."""
        self.events.append(name)
        self.core.fire(name, calling or CALLING[name],
                       lambda: self.event_segments(name, pre, post, extended),
                       prefix=prefix, subclass=subclass, unique_id=self.uuid, body=body)

    # -- primitive transitions (each fires what FreeSWITCH fires) ----------------------------
    def set_running_state(self, state: str, number: int | None = None) -> None:
        self.running_state = state
        self.state_number = STATE_NUMBERS[state] if number is None else number
        self.fire("CHANNEL_STATE")

    def set_callstate(self, callstate: str) -> None:
        old = self.callstate
        if old == callstate:
            return
        self.callstate = callstate
        self.fire("CHANNEL_CALLSTATE", pre=[("Original-Channel-Call-State", old),
                                           ("Channel-Call-State-Number", str(CALLSTATE_NUMBERS[callstate]))])

    def set_codec(self, codec: Codec) -> None:
        """The two CODEC events sofia fires when media is negotiated."""
        self.codec = codec
        c = codec
        self.fire("CODEC", post=[("channel-read-codec-name", c.name), ("channel-read-codec-rate", str(c.rate)),
                                 ("channel-read-codec-bit-rate", str(c.bit_rate))],
                  calling=CALLING["CODEC_READ"])
        self.fire("CODEC", post=[("Channel-Write-Codec-Name", c.name), ("Channel-Write-Codec-Rate", str(c.rate)),
                                 ("Channel-Write-codec-bit-rate", str(c.bit_rate))],
                  calling=CALLING["CODEC_WRITE"])

    def mark_ring_ready(self) -> None:
        if self.profile.times.progress:
            return
        self.profile.times.progress = now_us()
        self.fire("CHANNEL_PROGRESS")

    def mark_pre_answered(self) -> None:
        if self.profile.times.progress_media or self.answered:
            return
        self.answer_state = "early"
        self.profile.times.progress_media = now_us()
        self.fire("CHANNEL_PROGRESS_MEDIA")
        if self.session is not None:
            self.session.media_ready()

    def mark_answered(self) -> None:
        if self.answered:
            return
        self.answer_state = "answered"
        self.profile.times.answered = now_us()
        self.fire("CHANNEL_ANSWER")
        if self.session is not None:
            self.session.media_ready()

    def flip_cid(self) -> None:
        """``switch_channel_flip_cid`` when an outbound leg is accepted: caller and callee
        swap and CALL_UPDATE says so."""
        p = self.profile
        self.set_var("pre_transfer_caller_id_name", p.caller_id_name)
        self.set_var("pre_transfer_caller_id_number", p.caller_id_number)
        p.caller_id_name, p.callee_id_name = p.callee_id_name, p.caller_id_name
        p.caller_id_number, p.callee_id_number = p.callee_id_number, p.caller_id_number
        self.set_var("channel_cid_flipped", "yes")
        self.hit_dialplan = True
        self.fire("CALL_UPDATE", pre=[("Direction", "RECV")])
