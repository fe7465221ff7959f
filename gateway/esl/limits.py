"""What a FreeSWITCH node allows (its sessions-per-second and max-sessions limits) and
which FreeSWITCH it is, read from its ``api status`` reply.

Both are in the reply to ``api status`` (mod_commands ``status_function``), whose lines
are fixed ``printf`` formats::

    0 session(s) per Sec out of max 30, peak 2, last 5min 2 \\n
    1000 session(s) max\\n

"out of max" is ``runtime.sps_total`` (switch.conf.xml's ``sessions-per-second``, or
``fsctl sps <n>``) and the next line is ``max-sessions``.  ``status`` is read-only and
answered by every ESL user that may run ``api`` at all, unlike ``fsctl``.  HEARTBEAT's
``Session-Per-Sec`` header is no substitute: it is what is left of the current second's
budget (``runtime.sps``), not the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PER_SECOND = re.compile(r"^-?\d+ session\(s\) per Sec out of max (-?\d+),", re.MULTILINE)
_MAX_SESSIONS = re.compile(r"^(-?\d+) session\(s\) max$", re.MULTILINE)
#: ``FreeSWITCH (Version 1.10.12-release git a88d069 … 64bit) is ready`` (a real 1.10.12's status)
_VERSION = re.compile(r"^FreeSWITCH \(Version ([^\s)]+)", re.MULTILINE)

#: FreeSWITCH's own defaults (src/switch_core.c, src/switch_core_session.c), which the
#: shipped freeswitch-conf/autoload_configs/switch.conf.xml repeats.
FREESWITCH_DEFAULTS = (30, 1000)


@dataclass(frozen=True, slots=True)
class SwitchLimits:
    """A node's session limits as FreeSWITCH reports them."""

    sessions_per_second: int
    max_sessions: int

    @classmethod
    def from_status(cls, text: str) -> SwitchLimits:
        """Read the limits from an ``api status`` reply; ``ValueError`` if either is missing."""
        per_second = _PER_SECOND.search(text)
        max_sessions = _MAX_SESSIONS.search(text)
        if per_second is None or max_sessions is None:
            raise ValueError("no sessions-per-second or max-sessions line in the status reply")
        return cls(int(per_second.group(1)), int(max_sessions.group(1)))

    def __str__(self) -> str:
        return f"{self.sessions_per_second} sessions/s, {self.max_sessions} sessions max"


def version_from_status(text: str) -> str | None:
    """FreeSWITCH's version (``1.10.12-release``) from an ``api status`` reply, if it says."""
    found = _VERSION.search(text)
    return found.group(1) if found else None
