"""What the API surfaces share: the blueprint class, its request guard, fields, lookups.

A ``SurfaceBlueprint`` runs :func:`guard` before each of its views, in this order:

1. authenticate the key (401/403) and count the request against the rate limit (429);
2. check the scope the view declared with ``@blp.requires(scope)`` (403); a view that
   declared none is refused with a 500, so a forgotten declaration cannot open a view;
3. for views that take a body: ``application/json`` (415), at most
   ``errors.MAX_BODY_BYTES`` (413), valid JSON (400) and a JSON object (400).

Argument validation then runs through webargs with status 400 (``Parser``), so every
invalid field is a 400 in the surface's shape; no contract asks for 422.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from datetime import datetime, timezone

import flask_smorest
import marshmallow as ma
from flask import current_app, request
from webargs.flaskparser import FlaskParser

from gateway.api.auth import authenticate_request, require_scope
from gateway.api.errors import MAX_BODY_BYTES, fail
from gateway.api.openapi import NO_CONTROL
from gateway.calls.controller import CallError
from gateway.models import Call
from gateway.numbering import InvalidNumber, normalize

# Characters never accepted in a text field: C0 controls (NUL included, which PostgreSQL
# refuses in text) and DEL.
_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400


class ErrorSchema(ma.Schema):
    """The error body of the ``/api`` and ``/v1`` surfaces."""

    error = ma.fields.String(required=True, metadata={"description": "What went wrong, for a person"})


def has_control_characters(text: str) -> bool:
    return any(ch in _CONTROL for ch in text)


class Text(ma.fields.String):
    """A string without control characters; the OpenAPI document says so with a pattern,
    unless the field declares a narrower one (``gateway.api.openapi``)."""

    default_error_messages = {"control": "Must not contain control characters."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = {"pattern": NO_CONTROL, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if has_control_characters(text):
            raise self.make_error("control")
        return text


class UTCDateTime(ma.fields.DateTime):
    """An aware datetime written as ``2026-05-24T10:30:00Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


_BODY_ERRORS = {
    413: "Request body is too large",
    415: "Unsupported media type: send application/json",
}


class SurfaceBlueprint(flask_smorest.Blueprint):
    """A blueprint of one contract surface: guarded views, 400 on invalid arguments."""

    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(guard)

    def requires(self, scope: str, *, body: bool = False):
        """Declare the scope a view needs (and whether it takes a JSON body); document the
        errors the guard may answer with."""

        def decorator(func):
            func._required_scope = scope
            func._json_body = body
            documented = [
                (401, "Missing or invalid API key"),
                (403, "Key revoked, account suspended or API disabled, or scope missing"),
                (429, "Rate limit exceeded"),
            ]
            if body:
                documented += [(413, _BODY_ERRORS[413]), (415, _BODY_ERRORS[415])]
            for status, description in documented:
                func = self.alt_response(status, schema=ErrorSchema, description=description)(func)
            func._required_scope = scope
            func._json_body = body
            return func

        return decorator

    def error(self, status: int, description: str):
        """Document one more error answer of a view, in the error shape."""
        return self.alt_response(status, schema=ErrorSchema, description=description)


def guard():
    if request.method == "OPTIONS":
        return None
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    method = "get" if request.method == "HEAD" else request.method.lower()
    target = getattr(view_class, method, None) if view_class is not None else view
    if target is None:
        return None  # Flask answers 405
    scope = getattr(target, "_required_scope", None)
    if scope is None:
        raise RuntimeError(f"view {request.endpoint} declares no scope (@blp.requires)")
    authenticate_request(current_app.extensions["gateway"]["limiter"])
    require_scope(scope)
    if getattr(target, "_json_body", False):
        check_json_body()
    return None


def check_json_body() -> None:
    if not request.is_json:
        fail(415, "Unsupported media type: send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        fail(413, f"Request body is too large; the limit is {MAX_BODY_BYTES} bytes")
    data = request.get_data(cache=True)  # 413 from Werkzeug past MAX_CONTENT_LENGTH
    if request.content_length is None and len(data) >= MAX_BODY_BYTES:
        # A chunked body is cut at MAX_CONTENT_LENGTH by Werkzeug, not refused.
        fail(413, f"Request body is too large; the limit is {MAX_BODY_BYTES} bytes")
    if not data.strip():
        fail(400, "Request body is empty: send a JSON object")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        fail(400, "Request body is not valid JSON")
    if not isinstance(body, dict):
        fail(400, "Request body must be a JSON object")


def gateway():
    """The ``Gateway`` this app serves."""
    return current_app.config["GATEWAY"]


def parse_uuid(text: str) -> str | None:
    """``text`` as a canonical lower-case UUID, or None if it is not one."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        return None


def find_call(account_id: int, call_uuid: str, agent_id: int | None = None) -> Call | None:
    """The account's call with this uuid (and this agent's, if given); None otherwise,
    whether it does not exist or belongs to someone else."""
    canonical = parse_uuid(call_uuid)
    if canonical is None:
        return None
    query = Call.select().where((Call.uuid == canonical) & (Call.account == account_id))
    if agent_id is not None:
        query = query.where(Call.agent == agent_id)
    return query.get_or_none()


def seconds_between(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds()))


def normalize_number(field: str, value: str, region: str) -> str:
    """``value`` in E.164, read in ``region``; a 400 naming ``field`` if it is no valid number."""
    try:
        return normalize(value, region)
    except InvalidNumber as exc:
        fail(400, f"{field}: {exc}")


def place_call(account, *, to_number: str, from_number: str, caller_id_name: str = "",
               socket_url: str | None = None, webhook_url: str | None = None,
               custom_args: dict | None = None, agent=None, contact_name: str | None = None,
               surface: str) -> Call:
    """Write the call's row with everything the surfaces know about it, then originate it.

    The row is written whole before ``originate`` is sent (``CallController.place``), so
    no event or webhook about the call can see it without its agent or surface.
    """
    controller = gateway().controller
    try:
        node = controller.pick_node()
    except CallError as exc:
        fail(exc.code, str(exc))
    call = Call.create(
        uuid=str(uuidlib.uuid4()), account=account.id, direction="outbound",
        from_number=from_number, to_number=to_number, caller_id_name=caller_id_name or "",
        node=node.name, socket_url=socket_url, webhook_url=webhook_url,
        custom_args=custom_args or {}, agent=agent, contact_name=contact_name, surface=surface,
        job_uuid=str(uuidlib.uuid4()),
    )
    try:
        controller.place(call, node)
    except CallError as exc:
        fail(exc.code, str(exc))
    return call
