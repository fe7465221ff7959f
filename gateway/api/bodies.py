"""Request bodies: the JSON a request carries, read once, and each surface's rule for it.

:func:`json_value` parses the body once per request (``EMPTY`` for none, ``INVALID`` for
bytes that are no JSON) and :func:`json_object` gives the object the views, the
credentials and the argument parser read. A surface checks the body of the views that
take one with its rule, before their arguments are parsed:

* ``StrictJson`` (``/api``, ``/v1``): ``application/json`` (415), at most
  ``errors.MAX_BODY_BYTES`` (413, a chunked body included), not empty, valid JSON and a
  JSON object (400);
* ``AnyJsonObject`` (``/api/public/v1``): a JSON object (400), whatever its Content-Type,
  since ``curl -d`` without ``-H`` sends JSON labelled as a form; no body is ``{}``.
"""
from __future__ import annotations

import json

from flask import g, request

from gateway.api.errors import MAX_BODY_BYTES, fail

#: ``json_value()`` of a request without a body, and of one whose body is not JSON.
EMPTY, INVALID = object(), object()


def json_value():
    """The body's JSON value, ``EMPTY`` or ``INVALID``; parsed once per request."""
    if "json_body" not in g:
        data = request.get_data(cache=True)
        if not data.strip():
            g.json_body = EMPTY
        else:
            try:
                g.json_body = json.loads(data)
            except (ValueError, RecursionError):  # UnicodeDecodeError included; too deep
                g.json_body = INVALID
    return g.json_body


def json_object() -> dict | None:
    """The body when it is a JSON object; ``{}`` for no body; None otherwise."""
    value = json_value()
    if value is EMPTY:
        return {}
    return value if isinstance(value, dict) else None


class StrictJson:
    """A JSON object sent as ``application/json``."""

    documented = ((413, "Request body is too large"), (415, "Unsupported media type: send application/json"))

    def check(self) -> None:
        if not request.is_json:
            fail(415, "Unsupported media type: send the body as application/json")
        limit = request.max_content_length or MAX_BODY_BYTES  # the guard's: the surface's or the view's
        too_large = f"Request body is too large; the limit is {limit} bytes"
        if request.content_length is not None and request.content_length > limit:
            fail(413, too_large)
        data = request.get_data(cache=True)  # 413 from Werkzeug past MAX_CONTENT_LENGTH
        if request.content_length is None and len(data) >= limit:
            fail(413, too_large)  # a chunked body is cut at MAX_CONTENT_LENGTH by Werkzeug, not refused
        value = json_value()
        if value is EMPTY:
            fail(400, "Request body is empty: send a JSON object")
        if value is INVALID:
            fail(400, "Request body is not valid JSON")
        if not isinstance(value, dict):
            fail(400, "Request body must be a JSON object")


class AnyJsonObject:
    """A JSON object, or nothing, whatever the Content-Type says."""

    documented = ()

    def __init__(self, not_an_object: str) -> None:
        self.not_an_object = not_an_object

    def check(self) -> None:
        if json_object() is None:
            fail(400, self.not_an_object)
