"""One error handler for the whole app; each surface renders errors in its own shape.

Every HTTP error (``abort``, a route that does not exist, a method not allowed, a body
too large, a validation failure from webargs) and every unhandled exception ends here.
The shape is picked by the request path's longest matching prefix in ``RENDERERS``.
Each surface registers its renderer for its prefix (``gateway.api.surfaces``: the
public calling API's envelope under ``/api/public/v1``); ``{"error": "…"}`` is the default
(call control, agent calls, anything else).

A renderer gets ``(status, message)`` and returns the JSON body; headers the error
carries (``Allow`` on 405, ``Retry-After`` on 429) are kept. An unhandled exception is
logged with its traceback and answered 500 in the surface's shape, without any detail;
a database too busy to serve the request (``DATABASE_BUSY``) is answered 503 with
``Retry-After`` instead.

Views raise errors with :func:`fail`; a surface's argument parser words a validation
failure itself (``gateway.api.surface``), :func:`flatten_messages` giving the
``field: message`` lines of webargs' messages.
"""

from __future__ import annotations

import logging
from typing import Callable, NoReturn

from flask import Flask, jsonify, request
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions

logger = logging.getLogger(__name__)

#: Request bodies larger than this are refused with 413 (``MAX_CONTENT_LENGTH``).
MAX_BODY_BYTES = 64 * 1024

Renderer = Callable[[int, str], dict]

#: The message of an error raised without one.
DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: f"Request body is too large; the limit is {MAX_BODY_BYTES} bytes",
    415: "Unsupported media type: send the body as application/json",
    416: "Requested range not satisfiable",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}

#: The headers an HTTP error carries that its answer keeps: ``Allow`` on a 405,
#: ``Retry-After`` on a 429/503, and ``Content-Range: bytes */<size>`` on a 416, which
#: tells the client how long the resource is (RFC 9110 §15.5.17).
_KEPT_HEADERS = ("Allow", "Retry-After", "Content-Range")

#: The database cannot serve the request now: PostgreSQL's pool has no free connection
#: within its wait (``?timeout=`` in the URL), SQLite stayed locked past its busy
#: timeout, or the server is unreachable.  Load to shed, never a 500.
DATABASE_BUSY = (MaxConnectionsExceeded, OperationalError, InterfaceError)
BUSY_MESSAGE = "The service is busy; retry shortly"
RETRY_AFTER_SECONDS = 1


def plain_error(status: int, message: str) -> dict:
    """``{"error": "…"}``: the call-control and agent-call surfaces."""
    return {"error": message}


#: Path prefix → renderer; the longest prefix that matches on a segment boundary wins.
RENDERERS: dict[str, Renderer] = {
    "/api": plain_error,
    "/v1": plain_error,
}
DEFAULT_RENDERER: Renderer = plain_error


def register_renderer(prefix: str, renderer: Renderer) -> None:
    """Render the errors of every path under ``prefix`` with ``renderer``."""
    RENDERERS[prefix.rstrip("/")] = renderer


def renderer_for(path: str) -> Renderer:
    best = ""
    for prefix in RENDERERS:
        if (path == prefix or path.startswith(prefix + "/")) and len(prefix) > len(best):
            best = prefix
    return RENDERERS[best] if best else DEFAULT_RENDERER


def fail(status: int, message: str, headers: dict | None = None) -> NoReturn:
    """Stop the request with ``status`` and ``message``, in the surface's shape.

    Any status works, including those Werkzeug has no exception class for (402).
    """
    exc_class = default_exceptions.get(status)
    if exc_class is not None:
        exc = exc_class()
    else:
        exc = HTTPException()
        exc.code = status
    exc.data = {"message": message, "headers": headers or {}}
    raise exc


_LOCATIONS = ("json", "query", "querystring", "form", "view_args", "path", "headers", "cookies")


def flatten_messages(messages, prefix: str = "", *, top: bool = True) -> list[str]:
    """webargs/marshmallow messages (by location, then field) as ``field: message`` lines."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            key = str(key)
            if top and key in _LOCATIONS:
                lines += flatten_messages(value, "", top=False)  # the location adds nothing for the client
            elif key == "_schema":
                lines += flatten_messages(value, prefix, top=False)
            else:
                lines += flatten_messages(value, f"{prefix}.{key}" if prefix else key, top=False)
        return lines
    if isinstance(messages, (list, tuple)):
        lines = []
        for item in messages:
            lines += flatten_messages(item, prefix, top=False)
        return lines
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def _message(exc: HTTPException) -> str:
    data = getattr(exc, "data", None) or {}
    if data.get("message"):
        return str(data["message"])
    return DEFAULT_MESSAGES.get(exc.code or 500, exc.name)


def render(status: int, message: str, headers: dict | None = None):
    response = jsonify(renderer_for(request.path)(status, message))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_http_exception(exc: HTTPException):
    if isinstance(exc, InternalServerError) and exc.original_exception is not None:
        return handle_exception(exc.original_exception)
    status = exc.code or 500
    headers = dict((getattr(exc, "data", None) or {}).get("headers") or {})
    own = dict(exc.get_headers())  # e.g. Allow on 405
    for name in _KEPT_HEADERS:
        if own.get(name) and name not in headers:
            headers[name] = own[name]
    return render(status, _message(exc), headers)


def handle_exception(exc: Exception):
    """Anything a view did not expect: logged in full, answered without detail.  A
    database that cannot take the request now is shed with 503 and ``Retry-After``."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, DATABASE_BUSY):
        logger.warning("%s %s shed (503): %s: %s", request.method, request.path, type(exc).__name__,
                       " ".join(str(exc).split())[:200])
        return render(503, BUSY_MESSAGE, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    logger.exception("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return render(500, DEFAULT_MESSAGES[500])


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_exception)
