"""What FreeSWITCH logs, as mod_event_socket sends it to a connection that asked (``log <level>``).

A line goes to every connection whose level is at least the line's (``socket_logger``), as
a ``log/data`` message: ``Content-Type`` first, then ``Content-Length`` and the log node's
``Log-Level``, ``Text-Channel``, ``Log-File``, ``Log-Func``, ``Log-Line`` and ``User-Data`` (the
session's uuid), then the line (1.10.12 ``mod_event_socket.c``, the ``log/data`` block of the
listener loop; research/freeswitch.md §1). Only the lines the gateway's calls make
FreeSWITCH write at the shipped level (info) are modelled; each names where FreeSWITCH
writes it.
"""
from __future__ import annotations

from dataclasses import dataclass

#: ``switch_log_level_t``
INFO = 6
#: ``switch_text_channel_t``: SWITCH_CHANNEL_ID_LOG_CLEAN (no date/file prefix in the line)
CHANNEL_LOG_CLEAN = 1

#: ``switch_core_session_exec``: ``EXECUTE [depth=%d] %s %s(%s)\n`` at INFO, with the
#: application's argument *after* variable expansion (SWITCH_CHANNEL_SESSION_LOG_CLEAN).
EXECUTE_AT = ("switch_core_session.c", "switch_core_session_exec", 2902)


@dataclass(frozen=True)
class LogLine:
    level: int
    text: str  # the whole line, ending in a newline
    file: str
    func: str
    line: int
    user_data: str = ""
    text_channel: int = CHANNEL_LOG_CLEAN

    def framed(self, fmt: str | None = None) -> bytes:
        """The ``log/data`` message (the event format of the connection does not apply)."""
        data = self.text.encode("utf-8")
        head = (f"Content-Type: log/data\nContent-Length: {len(data)}\nLog-Level: {self.level}\n"
                f"Text-Channel: {self.text_channel}\nLog-File: {self.file}\nLog-Func: {self.func}\n"
                f"Log-Line: {self.line}\nUser-Data: {self.user_data}\n\n")
        return head.encode("utf-8") + data


def execute_line(depth: int, channel_name: str, app: str, arg: str, uuid: str) -> LogLine:
    """The line FreeSWITCH logs as an application starts on a channel."""
    file, func, line = EXECUTE_AT
    return LogLine(INFO, f"EXECUTE [depth={depth}] {channel_name} {app}({arg})\n", file, func, line, uuid)
