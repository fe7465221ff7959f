"""Every command the gateway sends FreeSWITCH, as text: small IO-free builders.

What the link sends is ``api <line>``, ``bgapi <line>`` or ``sendmsg <uuid>`` with headers
(``connection.ESLLink``); this module builds the line or the headers, and checks each
argument once, here, for what FreeSWITCH would read differently from what was meant:

* an ``api`` line is split on spaces (``switch_separate_string``), so a uuid, a variable
  name, a cause, a path or a URL must be one word (:func:`word`); only the last argument
  of a few commands (a variable's value, mod_audio_stream's metadata) is the rest of the
  line and may hold spaces;
* no part of a line may hold a line break (it would end the command and start another);
* an application argument sent with ``sendmsg`` execute passes ``app_args.check``;
* a channel-variable value in an ``originate`` ``{…}`` block survives its splitting and
  any later expansion (:func:`quote_var`).

A refused argument raises ``app_args.UnsafeArgument`` (a ``ValueError``) and nothing is
built.  The names follow FreeSWITCH's (``mod_commands``, ``mod_audio_stream``).
"""

from __future__ import annotations

import re

from gateway.esl.app_args import UnsafeArgument, check

#: ``show channels``, in the form the controller reconciles from.
SHOW_CHANNELS = "show channels as json"
STATUS = "status"
VERSION = "version"

_WORD = re.compile(r"[^\s\x00-\x1f\x7f]+")
_NAME = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_CAUSE = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_LINE_BREAK = re.compile(r"[\r\n]")
#: ``uuid_audio_stream … <mix-type> <sampling-rate>`` as mod_audio_stream accepts them.
STREAM_MIXES = frozenset({"mono", "mixed", "stereo"})
_STREAM_RATE = re.compile(r"[0-9]+k?", re.ASCII)


def word(value: str, what: str = "argument") -> str:
    """``value`` if FreeSWITCH reads it as one word of a command line, else
    :class:`UnsafeArgument` (empty, white space or a control character in it)."""
    text = str(value)
    if not _WORD.fullmatch(text):
        raise UnsafeArgument(f"{what} must be one word: {text!r}")
    return text


def rest_of_line(value: str, what: str = "argument") -> str:
    """A last argument, which may hold spaces but never a line break."""
    text = str(value)
    if _LINE_BREAK.search(text):
        raise UnsafeArgument(f"{what} holds a line break")
    return text


def _name(value: str, what: str = "variable name") -> str:
    text = str(value)
    if not _NAME.fullmatch(text):
        raise UnsafeArgument(f"not a {what}: {text!r}")
    return text


# -- the channel -------------------------------------------------------------------------
def kill(call_uuid: str, cause: str = "") -> str:
    """``uuid_kill <uuid> [<cause>]``: hang the call up with Hangup-Cause ``cause``
    (FreeSWITCH's default, NORMAL_CLEARING, without one)."""
    line = f"uuid_kill {word(call_uuid, 'uuid')}"
    if cause:
        if not _CAUSE.fullmatch(str(cause)):
            raise UnsafeArgument(f"not a hangup cause: {cause!r}")
        line += f" {cause}"
    return line


def answer(call_uuid: str) -> str:
    return f"uuid_answer {word(call_uuid, 'uuid')}"


def transfer(call_uuid: str, destination: str, dialplan: str, context: str) -> str:
    """``uuid_transfer <uuid> <destination> <dialplan> <context>`` (blind, the A leg)."""
    return (f"uuid_transfer {word(call_uuid, 'uuid')} {word(destination, 'destination')} "
            f"{word(dialplan, 'dialplan')} {word(context, 'context')}")


def setvar(call_uuid: str, name: str, value: str) -> str:
    """``uuid_setvar <uuid> <name> <value>``; the value is the rest of the line."""
    if value == "":
        raise UnsafeArgument("an empty value unsets the variable: use unsetvar")
    return f"uuid_setvar {word(call_uuid, 'uuid')} {_name(name)} {rest_of_line(value, 'value')}"


def unsetvar(call_uuid: str, name: str) -> str:
    """``uuid_setvar <uuid> <name>`` with no value, which unsets it."""
    return f"uuid_setvar {word(call_uuid, 'uuid')} {_name(name)}"


def getvar(call_uuid: str, name: str) -> str:
    """``uuid_getvar <uuid> <name>``: FreeSWITCH answers ``_undef_`` for an unset one."""
    return f"uuid_getvar {word(call_uuid, 'uuid')} {_name(name)}"


def dump(call_uuid: str) -> str:
    """``uuid_dump <uuid> json``: the channel's CHANNEL_DATA as one JSON object."""
    return f"uuid_dump {word(call_uuid, 'uuid')} json"


def break_playback(call_uuid: str) -> str:
    """``uuid_break <uuid> all``: stop what plays now and drop what is queued."""
    return f"uuid_break {word(call_uuid, 'uuid')} all"


def record(call_uuid: str, action: str, path: str) -> str:
    """``uuid_record <uuid> start|stop <path>``."""
    if action not in ("start", "stop"):
        raise UnsafeArgument(f"uuid_record takes start or stop, not {action!r}")
    return f"uuid_record {word(call_uuid, 'uuid')} {action} {word(path, 'path')}"


def audio_stream_start(call_uuid: str, url: str, mix: str = "mono", rate: str = "8k", metadata: str = "") -> str:
    """``uuid_audio_stream <uuid> start <url> <mix> <rate> [<metadata>]``: fork the call's
    audio to a WebSocket; the metadata (mod_audio_stream's first TEXT frame) is the rest
    of the line."""
    if mix not in STREAM_MIXES:
        raise UnsafeArgument(f"not a mod_audio_stream mix: {mix!r}")
    if not _STREAM_RATE.fullmatch(str(rate)):
        raise UnsafeArgument(f"not a mod_audio_stream sampling rate: {rate!r}")
    line = f"uuid_audio_stream {word(call_uuid, 'uuid')} start {word(url, 'stream URL')} {mix} {rate}"
    if metadata:
        line += f" {rest_of_line(metadata, 'stream metadata')}"
    return line


def audio_stream_stop(call_uuid: str) -> str:
    return f"uuid_audio_stream {word(call_uuid, 'uuid')} stop"


def execute(app: str, arg: str = "", event_uuid: str | None = None, event_lock: bool = True) -> dict[str, str]:
    """The headers of a ``sendmsg <uuid>`` that runs dialplan application ``app``.

    ``event_uuid`` comes back as the Application-UUID of its CHANNEL_EXECUTE(_COMPLETE)
    events; ``event_lock`` keeps queued applications from starting inside this one."""
    headers = {"call-command": "execute", "execute-app-name": _name(app, "application name")}
    if event_uuid:
        headers["event-uuid"] = word(event_uuid, "event uuid")
    if arg:
        headers["execute-app-arg"] = check(arg)
    if event_lock:
        headers["event-lock"] = "true"
    return headers


# -- placing a leg -----------------------------------------------------------------------
def quote_var(value: str) -> str:
    """A channel-variable value safe inside the ``{a=b,c=d}`` block of an originate.

    ``originate`` splits its arguments on spaces (``'…'`` groups a value with spaces) and
    the block on commas (``\\,`` keeps one).  FreeSWITCH does not expand a value when
    originate sets it, but it expands a variable's value again wherever it is referenced
    later (``${origination_caller_id_name}`` in a dialplan,
    ``switch_channel_expand_variables_check``), so a value loses the characters of a
    reference (``$ { }``), of its escapes (``\\``), quotes and control characters."""
    text = "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f")
    text = text.replace("'", "").replace("\\", "").replace("{", "").replace("}", "").replace("$", "")
    text = text.replace(",", "\\,")
    return f"'{text}'" if " " in text else text


def originate(variables: dict[str, str], endpoint: str, app: str = "&park()") -> str:
    """``originate {vars}<endpoint> <app>``, each value through :func:`quote_var`."""
    block = ",".join(f"{_name(name)}={quote_var(value)}" for name, value in variables.items())
    return f"originate {{{block}}}{word(endpoint, 'endpoint')} {word(app, 'application')}"


# -- the switch --------------------------------------------------------------------------
def global_getvar(name: str) -> str:
    return f"global_getvar {_name(name)}"


def module_exists(module: str) -> str:
    return f"module_exists {_name(module, 'module name')}"


def locate_context(context: str) -> str:
    """``xml_locate dialplan context name <context>``: the context's XML, if loaded."""
    return f"xml_locate dialplan context name {_name(context, 'context name')}"


# -- the connection ----------------------------------------------------------------------
def subscribe(events: str) -> str:
    """``event plain <names>``: CUSTOM subclasses must come last (each word after
    ``CUSTOM`` is read as a subclass)."""
    return f"event plain {rest_of_line(events, 'event list')}"


def filter_events(header: str, value: str) -> str:
    """``filter <header> <value>``: only events whose header has that value."""
    return f"filter {word(header, 'header')} {word(value, 'filter value')}"
