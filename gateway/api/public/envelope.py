"""The public calling API's envelope: every answer, success or error, is

    {"status": "success"|"error", "code": <HTTP status>, "unique_id": …, "reference_id": …,
     "details": "…", …extra fields}

``reference_id`` echoes what the client sent (body, else query string): a string (a
number is taken as its decimal text), control characters stripped, cut to 120
characters; null if none was sent. Errors are raised with :func:`abort` and rendered by
:func:`render_error`, which ``gateway.api.errors`` calls for every error under
``/api/public/v1`` (including 404/405 of unknown routes and unhandled exceptions, which
answer without any internal detail). A validation failure is the message of the first
failing field, in the schema's order (:func:`first_message`); the schema's sentence for a
recipient's number names India, as the contract does, and is said naming the account's own
country for any other account (``schemas.number_required``). ``ENVELOPE`` is this shape,
as the surface declares it.
"""
from __future__ import annotations

import unicodedata
from typing import NoReturn

from flask import g, has_request_context, request

from gateway.api import bodies, errors
from gateway.api.surface import ErrorShape

from .schemas import NUMBER, ErrorEnvelopeSchema, number_required

PREFIX = "/api/public/v1"
MAX_REFERENCE_LENGTH = 120

#: What this surface says instead of the app-wide default messages.
DEFAULT_DETAILS = {
    400: "Bad request.",
    401: "Invalid API credentials.",
    403: "Forbidden.",
    404: "Not found.",
    405: "Method not allowed.",
    413: f"The request body is too large. The limit is {errors.MAX_BODY_BYTES} bytes.",
    415: "Send the request body as JSON.",
    416: "The requested range is not satisfiable.",
    429: "Too many requests. Please slow down and retry shortly.",
    500: "Something went wrong on our side. Please retry shortly.",
    503: "Could not place the call right now. Please retry.",
}


def clean_reference_id(value) -> str | None:
    """A client's reference_id as it is echoed and stored; None if absent or empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if unicodedata.category(ch) != "Cc")
    text = text[:MAX_REFERENCE_LENGTH]
    return text or None


def reference_id() -> str | None:
    """The reference_id this request sent (body first, then the query string)."""
    if not has_request_context():
        return None
    if "public_reference_id" not in g:
        sent = None
        if request.method in ("POST", "PUT", "PATCH"):
            data = bodies.json_object()
            if data is not None:
                sent = data.get("reference_id")
        if sent is None:
            sent = request.args.get("reference_id")
        g.public_reference_id = clean_reference_id(sent)
    return g.public_reference_id


def envelope(details: str, *, code: int = 200, unique_id: str | None = None,
             reference: str | None = None, **extra) -> dict:
    """A success (code < 400) or error answer; ``reference`` overrides the echoed id."""
    answer = {
        "status": "success" if code < 400 else "error",
        "code": code,
        "unique_id": unique_id,
        "reference_id": reference if reference is not None else reference_id(),
        "details": details,
    }
    answer.update(extra)
    return answer


def abort(status: int, details: str, *, unique_id: str | None = None, headers: dict | None = None,
          **extra) -> NoReturn:
    """Stop the request with an error envelope; ``extra`` fields join it (``verified``…)."""
    g.public_error = {"unique_id": unique_id, "extra": extra}
    errors.fail(status, details, headers)


def render_error(status: int, message: str) -> dict:
    """``gateway.api.errors`` renderer for every error under ``PREFIX``."""
    if not message or message == errors.DEFAULT_MESSAGES.get(status):
        message = DEFAULT_DETAILS.get(status, DEFAULT_DETAILS[500] if status >= 500 else DEFAULT_DETAILS[400])
    if status >= 500 and status != 503:
        message = DEFAULT_DETAILS[500]  # never internal detail
    if message == NUMBER:  # the schema's words for a recipient: the account's country named
        auth = g.get("auth") if has_request_context() else None
        message = number_required(getattr(getattr(auth, "account", None), "region", None))
    context = (g.pop("public_error", None) if has_request_context() else None) or {}
    try:
        ref = reference_id()
    except Exception:  # the body could not be read (too large, broken stream): no echo
        ref = None
    answer = {"status": "error", "code": status, "unique_id": context.get("unique_id"),
              "reference_id": ref, "details": message}
    if has_request_context():
        answer.update(g.get("error_extra") or {})
    answer.update(context.get("extra", {}))
    return answer


def first_message(messages: dict, schema) -> str:
    """The message of the first failing field, in the schema's field order."""
    by_field: dict = {}
    for location_messages in messages.values():
        if isinstance(location_messages, dict):
            by_field.update(location_messages)
    order = getattr(schema, "CHECK_ORDER", None) or tuple(schema.fields)
    names = [schema.fields[name].data_key or name for name in order if name in schema.fields] + ["_schema"]
    for name in names + sorted(set(by_field) - set(names)):
        if name in by_field:
            found = by_field[name]
            while isinstance(found, (list, tuple)) and found:
                found = found[0]
            while isinstance(found, dict) and found:
                found = next(iter(found.values()))
                while isinstance(found, (list, tuple)) and found:
                    found = found[0]
            return str(found)
    return DEFAULT_DETAILS[400]


#: The envelope, as the surface declares its errors.
ENVELOPE = ErrorShape(render_error, first_message, ErrorEnvelopeSchema, "A field is missing or invalid")
