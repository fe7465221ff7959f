"""FreeSWITCH's XML dialplan, run without FreeSWITCH.

The simulator routes the calls it injects through the dialplan we ship (``dialplan/*.xml``), so
that dialplan is executed by the tests, not only parsed. This module does what FreeSWITCH does
with those files, and nothing with sockets or threads:

* :func:`preprocess` is FreeSWITCH's XML pre-processor (``switch_xml.c`` ``preprocess``): line by
  line, ``$${var}`` expanded from the global variables (unknown ones become empty), lines holding
  ``<include>``, ``</include>`` or ``<?`` dropped, ``X-PRE-PROCESS`` ``set`` and ``include``
  executed (includes relative to the including file's directory, globbed in sorted order).
* :meth:`Dialplan.route` is the XML dialplan's hunt (``mod_dialplan_xml.c``): contexts by name
  (falling back to ``global``), extensions in order, ``continue``, conditions with ``field`` /
  ``expression`` (caller-profile fields, or ``${var}`` expanded), ``break`` on-false (default),
  on-true, always, never, nested conditions and ``require-nested``, ``regex="any|all|xor"``,
  ``<action>`` / ``<anti-action>``, ``$1``/``${1}`` captures, ``DP_MATCH``, ``loop`` and
  ``inline="true"`` applications executed while hunting. It returns the applications queued.
* ``${…}`` is expanded like ``switch_channel_expand_variables``, including its habit of expanding
  a variable's value again; an API call inside it (``${name args}``, ``${name(args)}``) gives
  ``<API Execute Permission Denied>`` as FreeSWITCH does with ``api-expansion=false``, which the
  shipped ``switch.conf.xml`` sets (:class:`DialplanError` if a dialplan asks for it enabled).
* :class:`Execution` runs those applications the way a channel does
  (``switch_core_state_machine.c``, ``mod_dptools.c``): ``set``/``export``/``unset`` and friends,
  ``answer``, ``ring_ready``, ``park``, ``hangup [cause]``, ``transfer`` (re-hunting, limited by
  ``max_forwards`` like ``switch_ivr_session_transfer``), ``bridge`` (it stops there, with the
  dial string: what happens next, the B leg and ``continue_on_fail``, ``hangup_after_bridge``,
  ``park_after_bridge``, is the running simulator's ``originate.bridge_leg``), ``playback``
  and any other application (recorded and passed over). ``${var}`` is expanded when an
  application runs, not when it is queued, as in FreeSWITCH.

Not modelled (a :class:`DialplanError` says so when a dialplan uses it): time-of-day conditions,
running API calls inside ``${…}``, asterisk-style ``_`` patterns, the ``exec``/``env-set``/``stun-set``
pre-processor commands, ``transfer -bleg``. Regular expressions are PCRE in FreeSWITCH and
Python's ``re`` here (ASCII mode); the two agree on the constructs dialplans use.
"""

from __future__ import annotations

import enum
import functools
import glob
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.esl.values import switch_true

from .causes import str2cause

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_GLOBALS",
    "Action",
    "Dialplan",
    "DialplanError",
    "Execution",
    "RouteResult",
    "Step",
    "Stop",
    "StopReason",
    "API_DENIED",
    "find_vars_file",
    "SimulatorRouter",
    "expand_variables",
    "load_dialplan",
    "load_vars",
    "make_router",
    "preprocess",
]


class DialplanError(Exception):
    """The dialplan cannot be loaded, or uses something this engine does not model."""


#: Global variables FreeSWITCH defines itself before reading its configuration
#: (``switch_core.c`` ``switch_core_set_globals``/``switch_core_init``), with values for a
#: stand-in host. Pass your own to :func:`load_vars` or :meth:`Dialplan.load` to change them.
BUILTIN_GLOBALS: dict[str, str] = {
    "hostname": "localhost",
    "local_ip_v4": "127.0.0.1",
    "local_mask_v4": "255.0.0.0",
    "local_ip_v6": "::1",
    "switch_serial": "0",
    "base_dir": "/usr",
    "conf_dir": "/etc/freeswitch",
    "log_dir": "/var/log/freeswitch",
    "run_dir": "/var/run/freeswitch",
    "db_dir": "/var/lib/freeswitch/db",
    "mod_dir": "/usr/lib/freeswitch/mod",
    "htdocs_dir": "/usr/share/freeswitch/htdocs",
    "script_dir": "/usr/share/freeswitch/scripts",
    "temp_dir": "/tmp",
    "grammar_dir": "/usr/share/freeswitch/grammar",
    "fonts_dir": "/usr/share/freeswitch/fonts",
    "images_dir": "/var/lib/freeswitch/images",
    "certs_dir": "/etc/freeswitch/tls",
    "storage_dir": "/var/lib/freeswitch/storage",
    "cache_dir": "/var/cache/freeswitch",
    "recordings_dir": "/var/lib/freeswitch/recordings",
    "sounds_dir": "/usr/share/freeswitch/sounds",
    "core_uuid": "00000000-0000-0000-0000-000000000000",
}

# Caller-profile fields a condition's ``field`` may name (``switch_caller.c``
# ``switch_caller_get_field_by_name``); anything else reads as an empty string.
PROFILE_FIELDS = frozenset({
    "dialplan", "username", "caller_id_name", "caller_id_number", "orig_caller_id_name",
    "orig_caller_id_number", "callee_id_name", "callee_id_number", "ani", "aniii",
    "network_addr", "rdnis", "destination_number", "uuid", "source", "transfer_source",
    "context", "chan_name", "profile_index", "caller_ton", "caller_numplan",
    "destination_number_ton", "destination_number_numplan", "ani_ton", "ani_numplan",
    "rdnis_ton", "rdnis_numplan", "screen_bit", "privacy_hide_name", "privacy_hide_number",
    "profile_created_time", "created_time", "answered_time", "progress_time",
    "progress_media_time", "hungup_time", "transferred_time",
})

# Condition attributes of FreeSWITCH's time-of-day matching (switch_xml_std_datetime_check).
_TIME_ATTRIBUTES = frozenset({
    "date-time", "year", "yday", "mon", "mday", "week", "mweek", "wday", "hour", "minute",
    "minute-of-day", "time-of-day", "tz-offset", "dst",
})

# Applications FreeSWITCH lets run inline while hunting (flag SAF_ROUTING_EXEC in mod_dptools);
# the second set is the part of them this engine executes.
_ROUTING_EXEC_APPS = frozenset({
    "set", "unset", "export", "bridge_export", "multiset", "multiunset", "push", "unshift",
    "set_global", "set_profile_var", "log", "info", "event", "eval", "stop", "presence",
    "check_acl", "verbose_events", "novideo", "cng_plc", "early_hangup", "set_zombie_exec",
    "set_user", "set_media_stats",
})
_VARIABLE_APPS = frozenset({
    "set", "unset", "export", "multiset", "multiunset", "push", "unshift", "set_global",
})
_NO_OP_APPS = frozenset({"log", "info", "event", "eval", "stop", "sleep", "verbose_events"})

_MAX_RECURSION = 100
_ARRAY_PREFIX = "ARRAY::"
_ARRAY_SEPARATOR = "|:"


# --------------------------------------------------------------------------------------------
# Pre-processor


def _expand_globals(line: str, variables: Mapping[str, str]) -> str:
    """``$${name}`` → the global variable's value, or nothing when it is unset."""
    if "$${" not in line:
        return line
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line.startswith("$${", i):
            depth, j = 1, i + 3
            while j < n and depth:
                if line[j] == "{":
                    depth += 1
                elif line[j] == "}":
                    depth -= 1
                j += 1
            if depth == 0:
                out.append(variables.get(line[i + 3:j - 1], ""))
                i = j
                continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _quoted_after(text: str, keyword: str) -> tuple[str, str] | None:
    """Find ``keyword`` … ``=`` … ``"value"`` as FreeSWITCH's pre-processor does (leniently)."""
    low = text.lower()
    at = low.find(keyword)
    if at < 0:
        return None
    eq = text.find("=", at + len(keyword))
    if eq < 0:
        return None
    quote = text.find('"', eq)
    if quote < 0:
        return None
    end = text.find('"', quote + 1)
    if end < 0:
        return text[quote + 1:], ""
    return text[quote + 1:end], text[end + 1:]


def preprocess(
    path: str | os.PathLike,
    variables: dict[str, str],
    *,
    _depth: int = 0,
    _read: Callable[[str], str] | None = None,
) -> str:
    """Run one configuration file through FreeSWITCH's pre-processor and return the result.

    ``variables`` holds the global variables: ``$${…}`` reads them and ``set`` writes them, so
    after the call it has every variable the file (and its includes) set.
    """
    if _depth > _MAX_RECURSION:
        raise DialplanError(f"include depth over {_MAX_RECURSION} at {path}")
    read = _read or (lambda p: Path(p).read_text(encoding="utf-8"))
    filename = os.fspath(path)
    cwd = os.path.dirname(os.path.abspath(filename))
    out: list[str] = []
    for raw in read(filename).splitlines():
        line = _expand_globals(raw, variables)
        if "<include>" in raw or "</include>" in raw or "<?" in raw:
            continue
        at = line.lower().find("x-pre-process")
        if at >= 0:
            if at == 0 or line[at - 1] != "<":
                continue  # FreeSWITCH drops the line
            found = _quoted_after(line[at:], "cmd")
            if found is None:
                continue
            cmd, rest = found
            found = _quoted_after(rest, "data")
            if found is None:
                continue
            data = found[0]
            command = cmd.lower()
            if command == "set":
                name, sep, value = data.partition("=")
                if sep:
                    variables[name.rstrip(" ")] = value.lstrip(" ")
            elif command == "include":
                out.extend(_include(cwd, data, variables, _depth + 1, read))
            else:
                raise DialplanError(f"{filename}: pre-processor command {cmd!r} is not modelled")
            continue
        if "<!--#" in line:
            raise DialplanError(f"{filename}: '<!--#' pre-processor comments are not modelled")
        out.append(line)
    return "\n".join(out)


def _include(cwd: str, pattern: str, variables: dict[str, str], depth: int,
             read: Callable[[str], str]) -> list[str]:
    full = pattern if os.path.isabs(pattern) else os.path.join(cwd, pattern)
    matches = sorted(glob.glob(full))
    if not matches:
        logger.debug("no files to include at %s", full)
    return [preprocess(match, variables, _depth=depth, _read=read) for match in matches]


def load_vars(path: str | os.PathLike, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """The global variables after FreeSWITCH read ``vars.xml`` (``path``).

    Starts from :data:`BUILTIN_GLOBALS` updated with ``variables``; the file's ``set`` commands
    (and those of the files it includes, such as ``vars.local.xml``) come on top.
    """
    result = dict(BUILTIN_GLOBALS)
    result.update(variables or {})
    preprocess(path, result)
    return result


# --------------------------------------------------------------------------------------------
# Variable expansion


def _var_check(text: str) -> bool:
    """``switch_string_var_check_const`` or ``switch_string_has_escaped_data``."""
    dollar = False
    for ch in text:
        if ch == "$":
            dollar = True
        elif dollar:
            if ch == "{":
                return True
            if ch != "\\":
                dollar = False
    i = text.find("\\")
    while 0 <= i < len(text) - 1:
        if text[i + 1] in "\\nst'":
            return True
        i = text.find("\\", i + 1)
    return False


def _array_item(value: str, index: int) -> str | None:
    if index < 0:
        return value
    items = value[len(_ARRAY_PREFIX):].split(_ARRAY_SEPARATOR) if value.startswith(_ARRAY_PREFIX) else [value]
    return items[index] if index < len(items) else None


API_DENIED = "<API Execute Permission Denied>"


def expand_variables(
    text: str,
    lookup: Callable[[str], str | None],
    *,
    api_expansion: bool = False,
    _depth: int = 0,
) -> str:
    """FreeSWITCH's ``switch_channel_expand_variables`` over ``lookup(name) -> value | None``.

    ``${name}`` and ``$${name}`` become the value (empty when unknown), itself expanded;
    ``${name:offset:length}`` and ``${name[index]}`` slice it; ``\\$`` is a literal dollar,
    ``\\\\`` a backslash. An API call (``${api args}``, ``${api(args)}``) becomes
    :data:`API_DENIED`, as with ``api-expansion=false``; with ``api_expansion=True`` it raises
    :class:`DialplanError`, since this engine cannot run FreeSWITCH's API commands.
    """
    if _depth > _MAX_RECURSION or not text or not _var_check(text):
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        literal = False
        if text[i] == "\\" and i + 1 < n:
            following = text[i + 1]
            if following == "$":
                literal = True
                i += 1
                if i + 1 < n and text[i + 1] == "$":
                    i += 1
            elif following == "'":
                i += 2
                continue
            elif following == "\\":
                out.append("\\")
                i += 2
                continue
        if text[i] == "$" and not literal:
            if i + 1 < n and text[i + 1] == "$":
                i += 1
            if not (i + 1 < n and text[i + 1] == "{"):
                literal = True
        if literal or text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        # text[i] is '$' and text[i + 1] is '{'
        start = i + 2
        depth, j = 1, start
        while j < n:
            if text[j] == "}" and depth == 1:
                break
            if text[j] == "{" and j != start:
                depth += 1
            elif text[j] == "}" and depth > 1:
                depth -= 1
            j += 1
        name = text[start:j]
        i = j + 1
        if " " in name or "(" in name:
            if api_expansion:
                raise DialplanError(f"API expansion ${{{name}}} is not modelled")
            out.append(API_DENIED)
            continue
        name = expand_variables(name, lookup, api_expansion=api_expansion, _depth=_depth + 1)
        offset = length = 0
        if ":" in name:
            name, _, spec = name.partition(":")
            first, _, second = spec.partition(":")
            offset, length = _atoi(first), _atoi(second)
        index = -1
        if "[" in name and "]" in name[name.index("["):]:
            name, _, rest = name.partition("[")
            index = _atoi(rest)
        value = lookup(name)
        if value is not None:
            value = _array_item(value, index)
        if value is None:
            continue
        value = expand_variables(value, lookup, api_expansion=api_expansion, _depth=_depth + 1)
        if offset >= 0:
            value = value[offset:]
        elif -offset <= len(value):
            value = value[len(value) + offset:]
        if 0 < length < len(value):
            value = value[:length]
        out.append(value)
    return "".join(out)


def _atoi(text: str) -> int:
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------------------------
# Regular expressions and captures

@functools.lru_cache(maxsize=1024)
def _compile(expression: str) -> re.Pattern[str]:
    """A condition's expression as ``switch_regex_perform`` compiles it."""
    flags = re.ASCII
    body = expression
    if body.startswith("_"):
        raise DialplanError(f"asterisk-style pattern {expression!r} is not modelled")
    if body.startswith("/"):
        close = body.rfind("/")
        if close == 0:
            raise DialplanError(f"regex {expression!r} lacks its closing '/'")
        options = body[close + 1:]
        body = body[1:close]
        if "i" in options:
            flags |= re.IGNORECASE
        if "s" in options:
            flags |= re.DOTALL
    try:
        pattern = re.compile(body, flags)
    except re.error as exc:
        raise DialplanError(f"invalid regex {expression!r}: {exc}") from exc
    return pattern


def _substitute(match: re.Match[str], data: str) -> str:
    """``switch_perform_substitution``: ``$N`` and ``${N}`` become capture N (unset: nothing)."""
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        if data[i] != "$":
            out.append(data[i])
            i += 1
            continue
        j = i + 1
        brace = j < n and data[j] == "{"
        if brace:
            j += 1
        k = j
        while k < n and data[k].isdigit() and k - j < 9:
            k += 1
        if k == j or (brace and (k >= n or data[k] != "}")):
            out.append("$")
            i += 1
            continue
        number = int(data[j:k])
        i = k + 1 if brace else k
        if number <= (match.re.groups or 0):
            value = match.group(number)
            if value is not None:
                out.append(value)
    return "".join(out)


def _captures(match: re.Match[str]) -> list[str]:
    """Captures in ``switch_capture_regex`` order: the whole match, then each set group."""
    return [value for value in (match.group(0), *match.groups()) if value is not None]


# --------------------------------------------------------------------------------------------
# Channel state shared by routing and execution


class _Channel:
    """Channel variables, caller profile and the global variables they fall back to."""

    def __init__(self, variables: Mapping[str, str] | None, profile: Mapping[str, str],
                 globals_: dict[str, str], api_expansion: bool = False):
        self.variables: dict[str, str] = dict(variables or {})
        self.profile: dict[str, str] = dict(profile)
        self.globals = globals_
        self.api_expansion = api_expansion

    # FreeSWITCH's channel variables are case-insensitive (switch_event headers).
    def _key(self, name: str) -> str | None:
        if name in self.variables:
            return name
        lower = name.lower()
        for key in self.variables:
            if key.lower() == lower:
                return key
        return None

    def get(self, name: str) -> str | None:
        """``switch_channel_get_variable``: channel, then caller profile, then globals."""
        key = self._key(name)
        if key is not None:
            return self.variables[key]
        if name in PROFILE_FIELDS and name in self.profile:
            return self.profile[name]
        return self.globals.get(name)

    def set(self, name: str, value: str | None) -> None:
        key = self._key(name)
        if key is not None:
            del self.variables[key]
        if value is not None:
            self.variables[name] = value

    def push(self, name: str, value: str) -> None:
        old = self.variables.get(self._key(name) or name)
        if old is None:
            self.set(name, value)
        elif old.startswith(_ARRAY_PREFIX):
            self.set(name, old + _ARRAY_SEPARATOR + value)
        else:
            self.set(name, _ARRAY_PREFIX + old + _ARRAY_SEPARATOR + value)

    def unshift(self, name: str, value: str) -> None:
        old = self.variables.get(self._key(name) or name)
        if old is None:
            self.set(name, value)
        else:
            body = old[len(_ARRAY_PREFIX):] if old.startswith(_ARRAY_PREFIX) else old
            self.set(name, _ARRAY_PREFIX + value + _ARRAY_SEPARATOR + body)

    def expand(self, text: str) -> str:
        return expand_variables(text, self.get, api_expansion=self.api_expansion)

    def field(self, name: str) -> str:
        """A condition's ``field``: ``${…}`` expanded, else a caller-profile field."""
        if "$" in name:
            return self.expand(name)
        return self.profile.get(name, "") if name in PROFILE_FIELDS else ""

    def run_variable_app(self, application: str, data: str) -> None:
        """The variable applications of mod_dptools, ``data`` already expanded."""
        if application == "set":
            self._base_set(data, self.set)
        elif application == "push":
            self._base_set(data, self.push)
        elif application == "unshift":
            self._base_set(data, self.unshift)
        elif application == "multiset":
            for item in _split_multi(data):
                self._base_set(item, self.set)
        elif application == "unset":
            if data:
                self.set(data, None)
        elif application == "multiunset":
            for item in _split_multi(data):
                self.set(item, None)
        elif application == "set_global":
            name, sep, value = data.partition("=")
            if name:
                if sep and value:
                    self.globals[name] = value
                else:
                    self.globals.pop(name, None)
        elif application == "export":
            self._export(data)
        else:  # pragma: no cover - callers only pass _VARIABLE_APPS
            raise DialplanError(f"{application} is not a variable application")

    def _base_set(self, data: str, store: Callable[[str, str], None]) -> None:
        if not data:
            return
        cut = data.find("=")
        if cut < 0:
            cut = data.find(",")
        if cut < 0:
            name, value = data, ""
        else:
            name, value = data[:cut], data[cut + 1:]
        if not value:
            self.set(name, None)
        else:
            store(name, self.expand(value))

    def _export(self, data: str) -> None:
        name, sep, value = data.partition("=")
        local = True
        if name.startswith("nolocal:"):
            name, local = name[len("nolocal:"):], False
        if not name:
            return
        if sep and value and local:
            self.set(name, value)
        exported = [item for item in (self.get("export_vars") or "").split(",") if item]
        if name not in exported:
            exported.append(name)
        self.set("export_vars", ",".join(exported))


def _split_multi(data: str) -> list[str]:
    delimiter = " "
    if data.startswith("^^") and len(data) > 2:
        delimiter, data = data[2], data[3:]
    return [item for item in data.split(delimiter) if item]


# --------------------------------------------------------------------------------------------
# Routing


@dataclass(frozen=True)
class Action:
    """One application queued by the hunt, as FreeSWITCH queues it.

    ``data`` has the condition's captures (``$1``…) substituted and ``${…}`` not yet expanded:
    FreeSWITCH expands it when the application runs.
    """

    application: str
    data: str
    extension: str
    anti: bool = False


@dataclass
class RouteResult:
    """What hunting one destination through one context produced."""

    #: The context asked for and the one used (``global`` when the first does not exist).
    context: str
    resolved_context: str | None
    destination_number: str
    #: Name of the caller extension FreeSWITCH builds: that of the first extension that queued
    #: an application (``<name>_recur_<n>`` for nested conditions). ``None``: no route.
    extension: str | None
    #: Extensions whose hunt succeeded, in order (several with ``continue="true"``).
    matched_extensions: tuple[str, ...]
    #: Applications to execute, in order.
    actions: tuple[Action, ...]
    #: Channel variables when the hunt ended (the inputs, changed by inline applications and
    #: ``DP_MATCH``/``DP_REGEX_MATCH_<n>``).
    variables: dict[str, str]
    #: Variables the inline applications set (unset ones map to ``None``).
    inline_variables: dict[str, str | None] = field(default_factory=dict)
    #: Inline applications run while hunting, ``data`` expanded.
    inline_actions: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        """False when FreeSWITCH would hang up ``NO_ROUTE_DESTINATION``."""
        return bool(self.actions)

    @property
    def applications(self) -> list[tuple[str, str]]:
        """The queued ``(application, data)`` pairs."""
        return [(action.application, action.data) for action in self.actions]


class _Hunt:
    """State of one ``dialplan_hunt`` call."""

    def __init__(self, channel: _Channel):
        self.channel = channel
        self.extension_name: str | None = None
        self.actions: list[Action] = []
        self.inline_actions: list[tuple[str, str]] = []
        self.inline_variables: dict[str, str | None] = {}
        self.warnings: list[str] = []

    def queue(self, application: str, data: str, extension: str, anti: bool) -> None:
        if self.extension_name is None:
            self.extension_name = extension
        self.actions.append(Action(application, data, extension, anti))

    def run_inline(self, application: str, data: str, extension: str) -> None:
        if self.extension_name is None:
            self.extension_name = extension
        if application not in _ROUTING_EXEC_APPS:
            # mod_dialplan_xml exec_app: "This application cannot be executed inline"
            self.warnings.append(f"{extension}: {application} cannot be executed inline")
            return
        expanded = self.channel.expand(data)
        self.inline_actions.append((application, expanded))
        if application in _NO_OP_APPS:
            return
        if application not in _VARIABLE_APPS:
            raise DialplanError(f"inline {application} is not modelled")
        before = dict(self.channel.variables)
        self.channel.run_variable_app(application, expanded)
        after = self.channel.variables
        for name in before.keys() | after.keys():
            if before.get(name) != after.get(name):
                self.inline_variables[name] = after.get(name)


class Dialplan:
    """The XML dialplan: contexts of extensions, plus FreeSWITCH's global variables."""

    def __init__(
        self,
        document: ET.Element,
        global_variables: Mapping[str, str] | None = None,
        *,
        api_expansion: bool | None = None,
    ):
        self.global_variables: dict[str, str] = dict(BUILTIN_GLOBALS)
        self.global_variables.update(global_variables or {})
        if api_expansion is None:
            api_expansion = _api_expansion_setting(document)
        #: switch.conf's ``api-expansion``: False (the shipped setting) denies API calls in ``${…}``.
        self.api_expansion = api_expansion
        self.contexts: dict[str, ET.Element] = {}
        self.warnings: list[str] = []
        sections = [document] if document.tag == "section" else document.iter("section")
        for section in sections:
            if section.get("name") != "dialplan":
                continue
            for context in section.findall("context"):
                name = context.get("name", "")
                if name in self.contexts:
                    self.warnings.append(f"context {name!r} defined twice: the first one is used")
                    continue
                self.contexts[name] = context

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    def from_string(cls, text: str, global_variables: Mapping[str, str] | None = None, *,
                    api_expansion: bool = False) -> Dialplan:
        """A dialplan from the XML of its contexts (pre-processed already or not needing it)."""
        try:
            document = ET.fromstring(f'<section name="dialplan">{text}</section>')
        except ET.ParseError as exc:
            raise DialplanError(f"dialplan XML does not parse: {exc}") from exc
        return cls(document, global_variables, api_expansion=api_expansion)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        *,
        vars_file: str | os.PathLike | None = None,
        variables: Mapping[str, str] | None = None,
        api_expansion: bool = False,
    ) -> Dialplan:
        """Load ``directory/*.xml`` as FreeSWITCH's ``dialplan`` section includes them.

        The global variables are :data:`BUILTIN_GLOBALS`, then ``variables``, then what
        ``vars_file`` (``vars.xml``) sets; ``variables`` given here win over the file's, so tests
        can change a setting. Each file is pre-processed (``set``, ``include``, ``$${…}``) in
        name order, as the glob of ``freeswitch.xml`` reads them. ``api_expansion`` is
        switch.conf's setting (off in the shipped configuration).
        """
        globals_ = dict(BUILTIN_GLOBALS)
        globals_.update(variables or {})
        if vars_file is not None:
            preprocess(vars_file, globals_)
            globals_.update(variables or {})
        parts = [preprocess(path, globals_) for path in sorted(glob.glob(os.path.join(os.fspath(directory), "*.xml")))]
        if not parts:
            raise DialplanError(f"no *.xml dialplan files in {directory}")
        return cls.from_string("\n".join(parts), globals_, api_expansion=api_expansion)

    @classmethod
    def load_config(cls, freeswitch_xml: str | os.PathLike,
                    variables: Mapping[str, str] | None = None) -> Dialplan:
        """Load the dialplan section of a whole configuration (``freeswitch.xml`` and includes).

        ``api-expansion`` is read from its switch.conf (on when absent, as in FreeSWITCH).
        """
        globals_ = dict(BUILTIN_GLOBALS)
        globals_.update(variables or {})
        text = preprocess(freeswitch_xml, globals_)
        try:
            document = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DialplanError(f"{freeswitch_xml} does not parse after pre-processing: {exc}") from exc
        return cls(document, globals_)

    # --- inspection -------------------------------------------------------------------------

    def extension_names(self, context: str) -> list[str]:
        return [ext.get("name", "") for ext in self.contexts[context].findall("extension")]

    def iter_actions(self) -> Iterable[tuple[str, str, ET.Element]]:
        """Every ``(context, extension, action element)``, anti-actions and nested ones included."""
        for context_name, context in self.contexts.items():
            for extension in context.findall("extension"):
                for element in extension.iter():
                    if element.tag in ("action", "anti-action"):
                        yield context_name, extension.get("name", ""), element

    # --- routing ----------------------------------------------------------------------------

    def route(
        self,
        context: str,
        destination_number: str,
        variables: Mapping[str, str] | None = None,
        *,
        caller_profile: Mapping[str, str] | None = None,
    ) -> RouteResult:
        """Hunt ``destination_number`` through ``context`` like ``mod_dialplan_xml``.

        ``variables`` are the channel's variables; ``caller_profile`` its caller-profile fields
        (``caller_id_number``, ``network_addr``, …). Nothing is executed but inline actions.
        """
        profile = dict(caller_profile or {})
        profile.update(destination_number=destination_number, context=context)
        profile.setdefault("dialplan", "XML")
        channel = _Channel(variables, profile, self.global_variables, self.api_expansion)
        return self._hunt(channel)

    def _hunt(self, channel: _Channel) -> RouteResult:
        context = channel.profile.get("context") or "default"
        destination = channel.profile.get("destination_number", "")
        hunt = _Hunt(channel)
        resolved: str | None = context
        xcontext = self.contexts.get(context)
        if xcontext is None:
            resolved = "global" if "global" in self.contexts else None
            xcontext = self.contexts.get("global")
        matched: list[str] = []
        if xcontext is not None:
            extensions = xcontext.findall("extension")
            start = 0
            if switch_true(channel.get("auto_hunt")):
                for index, ext in enumerate(extensions):
                    if ext.get("name") == destination:
                        start = index
                        break
            for ext in extensions[start:]:
                name = ext.get("name") or "UNKNOWN"
                proceed = self._parse_exten(hunt, ext, name, 0)
                if proceed:
                    matched.append(name)
                if proceed and not switch_true(ext.get("continue")):
                    break
        return RouteResult(
            context=context,
            resolved_context=resolved,
            destination_number=destination,
            extension=hunt.extension_name if hunt.actions else None,
            matched_extensions=tuple(matched),
            actions=tuple(hunt.actions),
            variables=dict(channel.variables),
            inline_variables=dict(hunt.inline_variables),
            inline_actions=tuple(hunt.inline_actions),
            warnings=tuple(hunt.warnings),
        )

    def _parse_exten(self, hunt: _Hunt, xexten: ET.Element, exten_name: str, recur: int) -> bool:
        """``mod_dialplan_xml.c`` ``parse_exten``: the conditions of one extension (or level)."""
        channel = hunt.channel
        proceed = False
        require_nested = True
        orig_name = exten_name
        if recur:
            if recur > _MAX_RECURSION:
                hunt.warnings.append(f"{exten_name}: recursion limit")
                return False
            exten_name = f"{exten_name}_recur_{recur}"
            if xexten.get("require-nested") is not None:
                require_nested = switch_true(xexten.get("require-nested"))
        else:
            exten_name = xexten.get("name") or exten_name

        for xcond in xexten.findall("condition"):
            for attribute in xcond.attrib:
                if attribute in _TIME_ATTRIBUTES:
                    raise DialplanError(f"{exten_name}: time condition {attribute!r} is not modelled")
            field_name = xcond.get("field")
            brk = (xcond.get("break") or "on-false").lower()
            if brk not in ("on-true", "on-false", "always", "never"):
                brk = "on-false"
            anti = True
            match: re.Match[str] | None = None
            expression = ""

            if xcond.get("regex") is not None:
                anti, proceed, match, expression = self._regex_condition(channel, xcond, exten_name)
                # captures of the last <regex> with a group stand in for the condition's own
                field_name = "" if match is not None else None
            else:
                expression = channel.expand(_expression_of(xcond))
                if field_name is not None:
                    match = _compile(expression).search(channel.field(field_name))
                    proceed = match is not None
                    anti = not proceed
                else:  # no field: an absolute condition
                    anti = False
                    proceed = True

            if anti:
                for xaction in xcond.findall("anti-action"):
                    application = xaction.get("application", "")
                    data = _data_of(xaction)
                    for _ in range(_loop_count(xaction)):
                        if switch_true(xaction.get("inline")):
                            hunt.run_inline(application, data, exten_name)
                        else:
                            hunt.queue(application, data, exten_name, anti=True)
                    proceed = True
            else:
                capture = field_name is not None and match is not None and "(" in expression
                if capture:
                    channel.set("DP_MATCH", None)
                    for value in _captures(match):
                        channel.push("DP_MATCH", value)
                for xaction in xcond.findall("action"):
                    application = xaction.get("application", "")
                    data = _data_of(xaction)
                    if capture:
                        data = _substitute(match, data)
                    for _ in range(_loop_count(xaction)):
                        if switch_true(xaction.get("inline")):
                            hunt.run_inline(application, data, exten_name)
                        else:
                            hunt.queue(application, data, exten_name, anti=False)

            if (not anti and brk == "on-true") or (anti and brk == "on-false") or brk == "always":
                break
            if proceed and xcond.find("condition") is not None:
                proceed = self._parse_exten(hunt, xcond, orig_name, recur + 1)
                if not proceed:
                    if brk == "never":
                        continue
                    break

        if not require_nested:
            proceed = True
        return proceed

    def _regex_condition(
        self, channel: _Channel, xcond: ET.Element, exten_name: str
    ) -> tuple[bool, bool, re.Match[str] | None, str]:
        """A condition with ``regex="all|any|xor"`` and ``<regex>`` children.

        Returns ``(anti, proceed, match, expression)``; ``match`` is that of the last ``<regex>``
        whose expression has a group, used for ``$N`` in the actions.
        """
        rule = (xcond.get("regex") or "").lower()
        match_all, xor = rule == "all", rule == "xor"
        passed = failed = total = 0
        proceed = False
        saved: tuple[re.Match[str], str, bool] | None = None
        for name in list(channel.variables):
            if name.upper().startswith("DP_REGEX_MATCH"):
                channel.set(name, None)
        for xregex in xcond.findall("regex"):
            for attribute in xregex.attrib:
                if attribute in _TIME_ATTRIBUTES:
                    raise DialplanError(f"{exten_name}: time condition {attribute!r} is not modelled")
            expression = channel.expand(_expression_of(xregex))
            total += 1
            field_name = xregex.get("field")
            match = None
            if field_name is not None:
                match = _compile(expression).search(channel.field(field_name))
                proceed = match is not None
                if proceed:
                    passed += 1
                    if not match_all and not xor:
                        break
                else:
                    failed += 1
                    if match_all and not xor:
                        break
            else:
                passed += 1
                proceed = True
                if not match_all and not xor:
                    break
            if field_name is not None and "(" in expression:
                var = f"DP_REGEX_MATCH_{total}"
                channel.set(var, None)
                if match is not None:
                    for value in _captures(match):
                        channel.push(var, value)
                    saved = (match, expression, proceed)
        if xor:
            anti = passed != 1
        else:
            anti = not ((match_all and not failed) or (not match_all and passed))
        if saved is not None:
            match, expression, proceed = saved
            return anti, proceed, match, expression
        return anti, proceed, None, ""

    # --- execution --------------------------------------------------------------------------

    def execute(
        self,
        context: str,
        destination_number: str,
        variables: Mapping[str, str] | None = None,
        *,
        caller_profile: Mapping[str, str] | None = None,
    ) -> Execution:
        """Route a new channel and run its applications until it parks, bridges or hangs up."""
        execution = Execution(self, context, destination_number, variables, caller_profile=caller_profile)
        execution.run()
        return execution


def _api_expansion_setting(document: ET.Element) -> bool:
    """switch.conf's ``api-expansion`` in a whole configuration; FreeSWITCH's default is on."""
    for configuration in document.iter("configuration"):
        if configuration.get("name") == "switch.conf":
            for param in configuration.iter("param"):
                if param.get("name", "").lower() == "api-expansion":
                    return switch_true(param.get("value"))
    return True


def _expression_of(element: ET.Element) -> str:
    child = element.find("expression")
    if child is not None:
        return child.text or ""
    return element.get("expression", "")


def _data_of(element: ET.Element) -> str:
    if element.text and element.text.strip():
        return element.text
    return element.get("data", "")


def _loop_count(element: ET.Element) -> int:
    loop = element.get("loop")
    return _atoi(loop) if loop is not None else 1


# --------------------------------------------------------------------------------------------
# Execution


class StopReason(enum.Enum):
    """Why :meth:`Execution.run` returned."""

    #: ``park``: the channel waits for the controller (``uuid_transfer``, ``uuid_kill``, …).
    PARK = "park"
    #: ``bridge``: the channel would place the B leg (the simulator's ``originate.bridge_leg``).
    BRIDGE = "bridge"
    #: The channel hung up (``hangup``, no route, last application, too many transfers).
    HANGUP = "hangup"


@dataclass(frozen=True)
class Stop:
    reason: StopReason
    #: The hangup cause name (HANGUP) or the dial string (BRIDGE).
    data: str = ""

    @property
    def cause(self) -> str | None:
        return self.data if self.reason is StopReason.HANGUP else None


@dataclass(frozen=True)
class Step:
    """An application the channel ran, with its data expanded as the application received it."""

    application: str
    data: str
    context: str
    extension: str


class Execution:
    """A channel running the dialplan: routing, then its applications one by one.

    Everything the simulator needs to raise the right events is recorded: :attr:`steps` (each
    CHANNEL_EXECUTE), :attr:`routes` (each hunt, one per transfer), :attr:`answered`,
    :attr:`ringing`, :attr:`early_media`, :attr:`variables` and :attr:`stop`.
    """

    def __init__(
        self,
        dialplan: Dialplan,
        context: str,
        destination_number: str,
        variables: Mapping[str, str] | None = None,
        *,
        caller_profile: Mapping[str, str] | None = None,
    ):
        profile = dict(caller_profile or {})
        profile.update(destination_number=destination_number, context=context)
        profile.setdefault("dialplan", "XML")
        self.dialplan = dialplan
        self.channel = _Channel(variables, profile, dialplan.global_variables, dialplan.api_expansion)
        self.steps: list[Step] = []
        self.routes: list[RouteResult] = []
        self.answered = False
        self.early_media = False
        self.ringing = False
        self.stop: Stop | None = None
        self._pending: list[Action] = []
        self._route = True

    @property
    def variables(self) -> dict[str, str]:
        return self.channel.variables

    @property
    def caller_profile(self) -> dict[str, str]:
        return self.channel.profile

    @property
    def context(self) -> str:
        return self.channel.profile.get("context", "")

    @property
    def destination_number(self) -> str:
        return self.channel.profile.get("destination_number", "")

    @property
    def hangup_cause(self) -> str | None:
        return self.stop.cause if self.stop else None

    @property
    def applications(self) -> list[tuple[str, str]]:
        """``(application, data)`` of every step so far."""
        return [(step.application, step.data) for step in self.steps]

    def _check_live(self) -> None:
        if self.stop is not None and self.stop.reason is StopReason.HANGUP:
            raise DialplanError("the channel has hung up")

    def run(self) -> Stop:
        """Route if needed, then run applications until the channel parks, bridges or hangs up."""
        self._check_live()
        while True:
            if self._route:
                self._route = False
                result = self.dialplan._hunt(self.channel)
                self.routes.append(result)
                if not result.routed:
                    return self._hangup("NO_ROUTE_DESTINATION")
                self._pending = list(result.actions)
            if not self._pending:
                # switch_core_standard_on_execute: "executed the last dialplan instruction"
                return self._hangup("NORMAL_CLEARING")
            action = self._pending.pop(0)
            stop = self._execute(action)
            if stop is not None:
                self.stop = stop
                return stop

    def _execute(self, action: Action) -> Stop | None:
        channel = self.channel
        data = action.data
        if not switch_true(channel.get("app_disable_expand_variables")):
            data = channel.expand(data)
        application = action.application
        self.steps.append(Step(application, data, self.context, action.extension))
        if application in _VARIABLE_APPS:
            channel.run_variable_app(application, data)
        elif application == "answer":
            self.answered = True
        elif application == "pre_answer":
            self.early_media = True
        elif application == "ring_ready":
            self.ringing = True
        elif application == "park":
            return Stop(StopReason.PARK)
        elif application == "hangup":
            return self._hangup(str2cause(data or None))
        elif application == "transfer":
            args = data.split()
            if not args:
                return None  # "No extension specified."
            if args[0].lower() in ("-bleg", "-both"):
                raise DialplanError("transfer -bleg/-both is not modelled")
            return self._transfer(args[0], *args[1:3])
        elif application == "bridge":
            if not data:
                return None
            return Stop(StopReason.BRIDGE, data)
        return None

    def _hangup(self, cause: str) -> Stop:
        self.stop = Stop(StopReason.HANGUP, cause)
        self._pending = []
        return self.stop

    def _transfer(self, extension: str, dialplan: str = "", context: str = "") -> Stop | None:
        """``switch_ivr_session_transfer``: new destination, re-hunt; ``max_forwards`` limits it."""
        channel = self.channel
        counter = "max_session_transfers"
        value = channel.get(counter)
        if not value:
            counter = "max_forwards"
            value = channel.get(counter)
        remaining = _atoi(value) - 1 if value else 70
        if remaining <= 0:
            return self._hangup("EXCHANGE_ROUTING_ERROR")
        channel.set(counter, str(remaining))
        profile = channel.profile
        use_dialplan = dialplan or channel.get("force_transfer_dialplan") or profile.get("dialplan") or "XML"
        if use_dialplan.lower() == "inline" and not dialplan:
            use_dialplan = "XML"
        if use_dialplan.upper() != "XML":
            raise DialplanError(f"transfer to dialplan {use_dialplan!r} is not modelled")
        use_context = context or channel.get("force_transfer_context") or profile.get("context") or "default"
        previous = profile.get("destination_number", "")
        extension = extension or "service"
        profile.update(destination_number=extension, context=use_context, dialplan=use_dialplan, rdnis=previous)
        source = f"{int(time.time())}:{profile.get('uuid', '')}:bl_xfer:{extension}/{use_context}/{use_dialplan}"
        profile["transfer_source"] = source
        channel.push("transfer_history", source)
        channel.set("transfer_source", source)
        self._pending = []
        self._route = True
        return None

    # --- what the controller does ------------------------------------------------------------

    def transfer(self, destination: str, dialplan: str = "XML", context: str | None = None) -> Stop:
        """``uuid_transfer <uuid> <destination> [<dialplan> [<context>]]`` on this channel."""
        self._check_live()
        stop = self._transfer(destination, dialplan, context or "")
        if stop is not None:
            return stop
        self.stop = None
        return self.run()

    def kill(self, cause: str = "NORMAL_CLEARING") -> Stop:
        """``uuid_kill <uuid> [cause]``."""
        self._check_live()
        return self._hangup(str2cause(cause))


# --------------------------------------------------------------------------------------------
# The simulator's adapter (gateway/simulator/routing.py looks for make_router)


def find_vars_file(dialplan_dir: str | os.PathLike) -> Path | None:
    """The ``vars.xml`` that goes with a dialplan directory, installed or in the repository."""
    directory = Path(dialplan_dir)
    for candidate in (directory.parent / "vars.xml", directory.parent / "freeswitch-conf" / "vars.xml"):
        if candidate.is_file():
            return candidate
    return None


def load_dialplan(path: str | os.PathLike) -> Dialplan:
    """A dialplan from ``freeswitch.xml``, a configuration directory, or a ``dialplan/`` directory.

    A ``dialplan/`` directory gets the global variables of the ``vars.xml`` beside it (installed
    layout) or in ``freeswitch-conf/`` beside it (repository layout): without them the shipped
    contexts would match on empty expressions.
    """
    location = Path(path)
    if location.is_file():
        return Dialplan.load_config(location)
    if (location / "freeswitch.xml").is_file():
        return Dialplan.load_config(location / "freeswitch.xml")
    vars_file = find_vars_file(location)
    if vars_file is None:
        raise DialplanError(f"no vars.xml for the dialplan in {location}")
    return Dialplan.load(location, vars_file=vars_file)


class SimulatorRouter:
    """Routes a simulator channel through a :class:`Dialplan`.

    ``router(channel, destination, context)`` returns the ``(application, data)`` pairs to run
    (data not yet expanded: expand each with :meth:`expand` just before running it, as
    FreeSWITCH does, so that earlier applications' ``set`` are seen). Inline applications and
    ``DP_MATCH`` change the channel's variables at once. A destination with no route gets
    ``[("hangup", "NO_ROUTE_DESTINATION")]`` (FreeSWITCH hangs up with that cause, without
    running an application).

    The channel is duck-typed: ``variables`` (a dict), ``profile`` (caller-profile attributes)
    and ``set_var(name, value_or_None)``.
    """

    def __init__(self, dialplan: Dialplan):
        self.dialplan = dialplan

    @staticmethod
    def _profile(channel) -> dict[str, str]:
        profile = getattr(channel, "profile", None)
        values = {}
        for name in PROFILE_FIELDS:
            value = getattr(profile, name, None)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                values[name] = str(value)
        return values

    def __call__(self, channel, destination: str, context: str) -> list[tuple[str, str]]:
        variables = dict(getattr(channel, "variables", {}) or {})
        result = self.dialplan.route(context, destination, variables, caller_profile=self._profile(channel))
        for name in set(variables) | set(result.variables):
            if variables.get(name) != result.variables.get(name):
                channel.set_var(name, result.variables.get(name))
        for warning in result.warnings:
            logger.warning("dialplan %s/%s: %s", context, destination, warning)
        if not result.routed:
            return [("hangup", "NO_ROUTE_DESTINATION")]
        return result.applications

    def expand(self, channel, text: str) -> str:
        """``text`` with ``${…}`` expanded against the channel, as an application receives it."""
        profile = self._profile(channel)
        scope = _Channel(getattr(channel, "variables", {}) or {}, profile, self.dialplan.global_variables,
                         self.dialplan.api_expansion)
        return scope.expand(text)


def make_router(path: str | os.PathLike) -> SimulatorRouter:
    """The hook gateway/simulator/routing.py calls with its ``dialplan_dir``."""
    return SimulatorRouter(load_dialplan(path))
