"""The blueprint class of the public calling API: its request guard and argument parser.

Before each view, :func:`guard` runs, in this order:

1. authenticate the pk/sk pair (401/403, ``auth``);
2. count the request against the account's limit (429, ``ratelimit``); the
   ``RateLimit-*`` headers are added to every answer from here on, errors included;
3. check the scope the view declared with ``@blp.requires(scope)`` (403); a view that
   declared none is refused with a 500, so a forgotten declaration cannot open a view;
4. for views that take a body: it must be a JSON object (400). The Content-Type is not
   checked: ``curl -d`` without ``-H`` sends JSON labelled as a form.

Arguments are validated by marshmallow schemas whose error messages are written for
people (``schemas``); the first failing field, in the schema's order, is the answer's
``details``, a 400. Unknown fields are ignored.
"""
from __future__ import annotations

import flask_smorest
from flask import current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser

from . import auth, envelope, ratelimit
from .schemas import ErrorEnvelopeSchema

NOT_AN_OBJECT = "The request body must be a JSON object."

#: OpenAPI security schemes of this surface (registered by ``register``): the pk/sk
#: headers, or Basic with the pk as user name and the secret as password.
SECURITY_SCHEMES = {
    "PublishableKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "SecretKey": {"type": "apiKey", "in": "header", "name": "x-api-secret"},
    "PublicBasicAuth": {"type": "http", "scheme": "basic"},
}
SECURITY = [{"PublishableKey": [], "SecretKey": []}, {"PublicBasicAuth": []}]


class PublicParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        data = envelope.body()
        return core.missing if data is None else data

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        envelope.abort(400, first_message(error.normalized_messages(), schema))


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
    return envelope.DEFAULT_DETAILS[400]


class PublicBlueprint(flask_smorest.Blueprint):
    """A blueprint of ``/api/public/v1``: guarded views, contract-worded 400s."""

    ARGUMENTS_PARSER = PublicParser()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(guard)

    def requires(self, scope: str, *, body: bool = False, error_extra: dict | None = None):
        """Declare the scope a view needs and whether it takes a JSON body; document the
        errors the guard may answer with. ``error_extra``: fields every error answer of
        the view carries (verify's ``verified: false``)."""

        def decorator(func):
            documented = [(400, "A field is missing or invalid")] if _takes_arguments(func, body) else []
            documented += [
                (401, "Missing publishable key, or unknown key"),
                (403, "Wrong secret, account not active, API not enabled, or scope missing"),
                (429, "Too many requests"),
            ]
            for status, description in documented:
                func = self.alt_response(status, schema=ErrorEnvelopeSchema, description=description)(func)
            func = self.doc(security=SECURITY)(func)
            func._required_scope = scope
            func._json_body = body
            func._error_extra = dict(error_extra or {})
            return func

        return decorator

    def error(self, status: int, description: str):
        return self.alt_response(status, schema=ErrorEnvelopeSchema, description=description)


def _takes_arguments(func, body: bool) -> bool:
    """Whether a view reads a body or arguments, the only requests this surface answers 400
    (its own ``@blp.error(400, …)``, written closer to the view, names the rules beyond the
    schema and wins over the generic description)."""
    return body or bool(getattr(func, "_apidoc", {}).get("arguments"))


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
    g.public_error_defaults = getattr(target, "_error_extra", {})
    result = auth.authenticate()
    g.auth = result
    account = result.account
    verdict = ratelimit.hit(account.id, account.rate_limit_per_minute)
    g.public_ratelimit = verdict
    if verdict is not None and not verdict.allowed:
        envelope.abort(429, envelope.DEFAULT_DETAILS[429], headers={"Retry-After": str(verdict.reset)})
    auth.require_scope(result, scope)
    if getattr(target, "_json_body", False) and envelope.body() is None:
        envelope.abort(400, NOT_AN_OBJECT)
    return None


def add_ratelimit_headers(response):
    """After every request of the app: the account's ``RateLimit-*`` headers, if this
    request was counted."""
    verdict = g.get("public_ratelimit")
    if verdict is not None:
        for name, value in verdict.headers().items():
            response.headers[name] = value
    return response
