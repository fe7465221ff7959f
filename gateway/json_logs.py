"""One JSON object a line (``voicegw serve --log-format json``, or ``GATEWAY_LOG_FORMAT=json``).

Lines about a call carry its uuid as the ``call_uuid`` field.  It comes from, in order:
``extra={"call_uuid": ...}`` on the call; the greenlet's call context (``call_context``:
contextvars are per greenlet under gevent); or the gateway's long-standing wording of a
call's lines, which start ``call <uuid>`` (the controller's, the media session's, the
bridge's ``call <uuid> <`` prefix), so existing lines need no change to be found.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
from contextlib import contextmanager
from datetime import datetime, timezone

LOG_FORMAT_VAR = "GATEWAY_LOG_FORMAT"
LOG_FORMATS = ("text", "json")

_current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_uuid", default=None)
_CALL_PREFIX = re.compile(r"^call ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b")


@contextmanager
def call_context(call_uuid: str):
    """Every line logged inside (on this greenlet) is about ``call_uuid``."""
    token = _current_call.set(call_uuid)
    try:
        yield
    finally:
        _current_call.reset(token)


def call_uuid_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "call_uuid", None)
    if explicit:
        return explicit
    current = _current_call.get()
    if current:
        return current
    match = _CALL_PREFIX.match(record.getMessage())
    return match.group(1).lower() if match else None


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "call_uuid"][, "exception"]}``, one a line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_uuid = call_uuid_of(record)
        if call_uuid:
            line["call_uuid"] = call_uuid
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def handler(log_format: str, stream=None) -> logging.Handler:
    """The root handler for ``log_format`` (``text`` or ``json``)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    out = logging.StreamHandler(stream)
    out.setFormatter(JsonFormatter() if log_format == "json"
                     else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return out
