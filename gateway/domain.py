"""The gateway's vocabulary: the closed sets every layer speaks, and nothing else.

This module imports nothing of the gateway, so anything may import it: the models, the
call controller, the webhooks, the API surfaces, the CLIs. A word that appears in a
database column, a webhook body or an answer of the API is defined here once.

Call status (a closed set, shared by every surface)::

    queued ──▶ ringing ──▶ in_progress ──▶ completed
       │          │
       └──────────┴──▶ missed | failed

``end_reason`` says why a final call ended. Each contract speaks its own status words,
derived from (status, end_reason) by :data:`STATUS_WORDS`:

===========  ============  =============  ============  ==============
status       end_reason    ``api``        ``v1``        ``public``
===========  ============  =============  ============  ==============
queued                     queued         registered    queued
ringing                    ringing        ringing       ringing
in_progress                in-progress    in_progress   answered
completed                  completed      completed     completed
missed       no_answer     no-answer      no_answer     failed
missed       canceled      canceled       canceled      failed
failed       busy          busy           busy          failed
failed       rejected      busy           busy          failed
failed       canceled      canceled       canceled      failed
failed       (other)       failed         failed        failed
===========  ============  =============  ============  ==============

``api`` speaks Twilio's words, as the call-control contract's status callbacks do;
``registered`` and ``completed`` come from the agent-call contracts, the rest of ``v1`` is
ours in the same snake_case; ``public`` is the public calling API's status table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Status(str, enum.Enum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    MISSED = "missed"
    FAILED = "failed"


FINAL = frozenset({Status.COMPLETED, Status.MISSED, Status.FAILED})
LIVE = frozenset({Status.QUEUED, Status.RINGING, Status.IN_PROGRESS})


class EndReason(str, enum.Enum):
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    CANCELED = "canceled"
    FAILED = "failed"


class Direction(str, enum.Enum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Surface(str, enum.Enum):
    """The API surface that placed a call (``Call.surface``); None for an inbound call, or
    one a script or the CLI placed."""

    CONTROL = "api"  #: ``/api``, call-control-and-bot-media.txt
    AGENTS = "v1"  #: ``/v1``, agent-calls-minimal.txt + agent-calls-events.txt
    PUBLIC = "public"  #: ``/api/public/v1``, public-calling-api.txt
    VOICE = "voice"  #: ``/api/agent-api/voice``, voice-agent-admin.txt


class Driver(str, enum.Enum):
    """What serves an agent's calls (``Agent.driver``), and the kinds of media target."""

    WEBSOCKET = "websocket"  #: our bot protocol to a ws(s):// URL
    ELEVENLABS = "elevenlabs"  #: ElevenLabs Conversational AI, by agent id
    VAPI = "vapi"  #: Vapi, by assistant id


#: The drivers that are a provider's service, reached with the account's API key.
PROVIDERS = (Driver.ELEVENLABS, Driver.VAPI)


class PlaybackForm(str, enum.Enum):
    """How a node plays a bot's audio (``GATEWAY_MEDIA_PLAYBACK``; README "Bot audio")."""

    FILES = "files"  #: the community mod_audio_stream build: chunks queued with ``playback``
    STREAM = "stream"  #: the bidirectional build: frames written straight into the call


def values(vocabulary: type[enum.Enum]) -> tuple[str, ...]:
    """The words of a vocabulary, in its order (database choices, CLI choices, messages)."""
    return tuple(member.value for member in vocabulary)


CALL_STATUSES = values(Status)
END_REASONS = values(EndReason)
CALL_DIRECTIONS = values(Direction)
CALL_SURFACES = values(Surface)
AGENT_DRIVERS = values(Driver)
PLAYBACK_FORMS = values(PlaybackForm)

#: The ``event`` of the call-log entry (kind ``media``) that says a call's media session is
#: up: its bot and FreeSWITCH's audio stream are both connected. The call-control
#: contract's ``call.answered`` is sent from it.
MEDIA_ESTABLISHED = "session_established"


@dataclass(frozen=True, slots=True)
class Transition:
    """A change to apply to a call row, and the event-log entry that records it."""

    to_status: Status
    at: datetime
    reason: str  # the FreeSWITCH event (or job) that caused it
    end_reason: EndReason | None = None
    hangup_cause: str | None = None
    billsec: int | None = None
    duration_sec: int | None = None
    detail: dict = field(default_factory=dict)
    # The end was not seen: ``at`` is when the gateway found the channel gone, so it, the
    # billsec and the duration are upper bounds (``Call.ended_at_upper_bound``).
    ended_at_upper_bound: bool = False


@dataclass(frozen=True, slots=True)
class StatusWords:
    """A contract's own status vocabulary, derived from (status, end_reason)."""

    live: dict[str, str]  # queued / ringing / in_progress / completed → the contract's word
    ended: dict[str, str]  # end_reason of a call that never connected → the contract's word
    missed: str  # a missed call whose end_reason has no word of its own

    def of(self, status: str, end_reason: str | None) -> str:
        if status in self.live:
            return self.live[status]
        default = self.missed if status == Status.MISSED.value else "failed"
        return self.ended.get(end_reason or "", default)


#: Each surface's status words (the table in the module docstring).
STATUS_WORDS = {
    Surface.CONTROL: StatusWords(
        live={"queued": "queued", "ringing": "ringing", "in_progress": "in-progress", "completed": "completed"},
        ended={"no_answer": "no-answer", "canceled": "canceled", "busy": "busy", "rejected": "busy"},
        missed="no-answer",
    ),
    Surface.AGENTS: StatusWords(
        live={"queued": "registered", "ringing": "ringing", "in_progress": "in_progress", "completed": "completed"},
        ended={"no_answer": "no_answer", "canceled": "canceled", "busy": "busy", "rejected": "busy"},
        missed="no_answer",
    ),
    Surface.PUBLIC: StatusWords(
        live={"queued": "queued", "ringing": "ringing", "in_progress": "answered", "completed": "completed"},
        ended={},
        missed="failed",
    ),
}


def status_word(surface: Surface, status: str, end_reason: str | None = None) -> str:
    """A call's status in ``surface``'s words."""
    return STATUS_WORDS[surface].of(status, end_reason)
