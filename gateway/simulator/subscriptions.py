"""What one Event Socket listener receives: ``event``/``nixevent``/``noevents``/``filter``/
``myevents`` state and the per-event decision, without any IO.

The rules are mod_event_socket's (``parse_command`` and ``event_handler``; research/
freeswitch.md §1.6):

* names are case-insensitive, a ``SWITCH_EVENT_`` prefix is allowed, unknown names are
  ignored; the format word (plain/json/xml) is only recognised as the first word and is
  applied even when no name is valid;
* every word after ``CUSTOM`` is a subclass name; a CUSTOM event with a subclass is only
  delivered when that subclass was named (or ``ALL`` was given);
* once a filter exists, an event passes only if one filter header is present in it and
  matches (case-insensitive, ``/regex/``, ``-`` prefix excludes); events lacking every
  filtered header are dropped;
* ``myevents`` keeps only events whose ``Unique-ID`` is the bound channel (plus bgapi results
  whose ``Job-Owner-UUID`` is).
"""

from __future__ import annotations

import re

EVENT_NAMES = (
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN",
    "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT",
    "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB",
    "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE",
    "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA",
    "GENERAL", "COMMAND", "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO",
    "RECV_INFO", "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START",
    "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA",
    "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
)
_KNOWN = frozenset(EVENT_NAMES)

# mod_event_socket's myevents list (parse_command "myevents").
MYEVENTS = (
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING", "CHANNEL_PARK",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
    "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
)

FORMATS = ("plain", "json", "xml")


def event_name(word: str) -> str | None:
    """``switch_name_event``: case-insensitive, optional ``SWITCH_EVENT_`` prefix."""
    name = word.upper()
    if name.startswith("SWITCH_EVENT_"):
        name = name[len("SWITCH_EVENT_"):]
    return name if name in _KNOWN else None


class Subscription:
    __slots__ = ("fmt", "names", "all", "subclasses", "filters", "listening", "myevents_uuid")

    def __init__(self) -> None:
        self.fmt = "plain"
        self.names: set[str] = set()
        self.all = False
        self.subclasses: set[str] = set()
        self.filters: list[tuple[str, str]] = []
        self.listening = False
        self.myevents_uuid: str | None = None

    # -- commands -------------------------------------------------------------------------
    def event(self, args: str) -> str:
        words = args.split()
        if words and words[0].lower() in FORMATS:
            self.fmt = words.pop(0).lower()
        keys = 0
        custom = False
        for word in words:
            if custom:
                self.subclasses.add(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            keys += 1
            if name == "ALL":
                self.all = True
            else:
                self.names.add(name)
            if name == "CUSTOM":
                custom = True
        if not keys:
            return "-ERR no keywords supplied"
        self.listening = True
        return f"+OK event listener enabled {self.fmt}"

    def nixevent(self, args: str) -> str:
        keys = 0
        custom = False
        for word in args.split():
            if custom:
                self.subclasses.discard(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            keys += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self.all = False
                self.names.clear()
            else:
                if self.all:
                    self.all = False
                    self.names = set(EVENT_NAMES) - {"ALL"}
                self.names.discard(name)
        if not keys:
            return "-ERR no keywords supplied"
        return "+OK events nixed"

    def noevents(self) -> str:
        if not self.listening:
            return "-ERR not listening for events"
        self.listening = False
        self.all = False
        self.names.clear()
        self.subclasses.clear()
        return "+OK no longer listening for events"

    def filter(self, args: str) -> str:
        header, _, rest = args.strip().partition(" ")
        value = rest.lstrip(" ")
        if not header or not value:
            return "-ERR invalid syntax"
        if header.lower() == "delete":
            target, _, val = value.partition(" ")
            val = val.lstrip(" ")
            if target.lower() == "all":
                self.filters.clear()
            elif val:
                self.filters = [f for f in self.filters if not (f[0].lower() == target.lower() and f[1] == val)]
            else:
                self.filters = [f for f in self.filters if f[0].lower() != target.lower()]
            return f"+OK filter deleted. [{target}][{val}]"
        if header.lower() == "add":
            header, _, value = value.partition(" ")
            value = value.lstrip(" ")
            if not header or not value:
                return "-ERR invalid syntax"
        self.filters.append((header, value))
        return f"+OK filter added. [{header}]=[{value}]"

    def bind_myevents(self, uuid: str, fmt: str | None = None) -> None:
        if fmt in FORMATS:
            self.fmt = fmt
        self.myevents_uuid = uuid
        self.names.update(MYEVENTS)
        self.listening = True

    # -- delivery -------------------------------------------------------------------------
    def wants(self, name: str, subclass: str | None) -> bool:
        if not self.listening:
            return False
        if self.all:
            return True
        if name not in self.names:
            return False
        if name == "CUSTOM" and subclass:
            return subclass in self.subclasses
        return True

    def passes(self, event) -> bool:
        """Filters and myevents, applied to an event ``wants()`` accepted."""
        if self.filters:
            send = False
            for header, wanted in self.filters:
                value = event.get(header)
                if value is None:
                    continue
                positive = True
                comp = wanted
                while comp and comp[0] in "+- ":
                    if comp[0] == "+":
                        positive = True
                    elif comp[0] == "-":
                        positive = False
                    comp = comp[1:]
                if send and positive:
                    continue
                if not comp:
                    continue
                if wanted.startswith("/"):
                    matched = _regex_match(comp, value)
                else:
                    matched = value.lower() == comp.lower()
                if matched:
                    if positive:
                        send = True
                    else:
                        send = False
                        break
            if not send:
                return False
        if self.myevents_uuid is not None:
            if event.unique_id != self.myevents_uuid and event.job_owner != self.myevents_uuid:
                return False
        return True


def _regex_match(expression: str, value: str) -> bool:
    """``switch_regex_perform`` with FreeSWITCH's ``/pattern/flags`` form."""
    pattern, flags = expression, 0
    if pattern.startswith("/"):
        body = pattern[1:]
        end = body.rfind("/")
        if end >= 0:
            pattern, opts = body[:end], body[end + 1:]
            if "i" in opts:
                flags |= re.IGNORECASE
        else:
            pattern = body
    try:
        return re.search(pattern, value, flags) is not None
    except re.error:
        return False
