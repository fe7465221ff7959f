"""The API framework: a surface is a declaration, served by one blueprint class.

A ``Surface`` (``gateway.api.surfaces`` declares them) says what one contract's surface
is: its path prefix, how a caller proves who it is (``auth``, ``gateway.api.auth``), the
shape of its errors and the words of its validation failures (``errors``), its rule for
JSON bodies (``body``, ``gateway.api.bodies``), its rate-limit policy
(``gateway.api.ratelimit``) and the largest body it takes. Its views live on
``SurfaceBlueprint``\\ s built with it, which run one guard before each view, in this
order:

1. the surface's body size limit (413);
2. authenticate (401/403; a provider's report is read and its signature checked here);
3. count the request against the account's limit on the surface (429, ``Retry-After``;
   with the ``RateLimit-*`` headers on every answer from here on, errors included);
4. check the scope the view declared with ``@blp.requires(scope)`` (403); a view that
   declared none is refused with a 500, so a forgotten declaration cannot open a view;
5. for views that take a body: the surface's body rule (415/413/400).

Arguments are then parsed by webargs through one parser, which reads the body the guard
read and words a failure as the surface's errors do: a 400 (no contract asks for 422).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import flask_smorest
import marshmallow as ma
from flask import Flask, current_app, g, request
from webargs import core
from webargs.flaskparser import FlaskParser

from gateway.api import bodies, errors, ratelimit
from gateway.api.errors import MAX_BODY_BYTES, fail


@dataclass(frozen=True)
class ErrorShape:
    """How a surface's errors look: ``render(status, message)`` is the body;
    ``invalid(messages, schema)`` words a validation failure (webargs' messages, by
    location then field) as the 400's message; ``schema`` is the body as the document
    shows it; ``invalid_description`` documents the 400 of every view with arguments
    (None: flask-smorest's own)."""

    render: errors.Renderer
    invalid: Callable[[dict, ma.Schema], str]
    schema: type[ma.Schema]
    invalid_description: str | None = None


class ErrorSchema(ma.Schema):
    """The error body of the ``/api`` and ``/v1`` surfaces."""

    error = ma.fields.String(required=True, metadata={"description": "What went wrong, for a person"})


def every_message(messages: dict, schema: ma.Schema) -> str:
    """Every field's message, ``field: message``, joined with ``"; "``."""
    lines = errors.flatten_messages(messages)
    return "; ".join(dict.fromkeys(lines)) if lines else errors.DEFAULT_MESSAGES[400]


#: ``{"error": "…"}``, every invalid field named.
PLAIN = ErrorShape(errors.plain_error, every_message, ErrorSchema)


class AuthStyle(Protocol):
    """How a surface's callers prove who they are (the styles: ``gateway.api.auth``)."""

    scoped: bool  #: whether its callers' keys carry scopes that views require
    schemes: dict  #: OpenAPI security schemes, by name
    security: list | None  #: each operation's security (None: the document's default)
    documented: tuple  #: (status, description) of the errors ``authenticate`` answers with

    def authenticate(self):
        """Whom the request proved to be (with its ``.account``), or stop it (401/403)."""

    def require_scope(self, result, scope: str) -> None:
        """Stop the request (403) unless ``result`` grants ``scope``."""


class BodyRule(Protocol):
    """What a surface's views that take a JSON body accept (the rules: ``gateway.api.bodies``)."""

    documented: tuple  #: (status, description) of the errors ``check`` answers with

    def check(self) -> None:
        """Stop the request unless its body is acceptable."""


@dataclass(frozen=True)
class Surface:
    """One contract's surface (see the module docstring). ``body`` None: its views take no
    JSON body; ``rate_limit`` None: not limited."""

    name: str
    prefix: str
    auth: AuthStyle
    errors: ErrorShape
    body: BodyRule | None = None
    rate_limit: ratelimit.RateLimit | None = None
    max_body_bytes: int = MAX_BODY_BYTES


class SurfaceParser(FlaskParser):
    """webargs' parser for one surface: JSON from ``bodies.json_object``, failures worded
    by the surface's ``ErrorShape``."""

    DEFAULT_VALIDATION_STATUS = 400

    def __init__(self, surface: Surface) -> None:
        super().__init__()
        self.surface = surface

    def _raw_load_json(self, req):
        data = bodies.json_object()
        return core.missing if data is None else data

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        fail(400, self.surface.errors.invalid(error.normalized_messages(), schema))


_UNDECLARED = object()


class SurfaceBlueprint(flask_smorest.Blueprint):
    """A blueprint of one surface: ``url_prefix`` is under the surface's prefix; its views
    are guarded (see the module docstring) and declare what they need with
    :meth:`requires`."""

    def __init__(self, surface: Surface, name: str, import_name: str, *, url_prefix: str = "",
                 description: str | None = None) -> None:
        super().__init__(name, import_name, url_prefix=surface.prefix + url_prefix, description=description)
        self.surface = surface
        self.ARGUMENTS_PARSER = SurfaceParser(surface)
        self.before_request(self._guard)

    def requires(self, scope: str | None, *, body: bool = False, error_extra: dict | None = None,
                 max_body_bytes: int | None = None):
        """Declare the scope a view needs (None on a surface whose callers have no scopes)
        and whether it takes a JSON body; document the errors the guard may answer with.
        ``error_extra``: fields every error answer of the view carries (the public API's
        verify: ``verified: false``). ``max_body_bytes``: the view's own body limit, where
        it takes more than the surface's (a bulk load)."""
        surface = self.surface
        if (scope is None) == surface.auth.scoped:
            raise ValueError(f"{surface.name}: a view {'needs' if surface.auth.scoped else 'has no'} scope")

        def decorator(func):
            documented = []
            if surface.errors.invalid_description and (body or getattr(func, "_apidoc", {}).get("arguments")):
                # The view's own @blp.error(400, …), closer to it, names the rules beyond
                # the schema and wins over this description.
                documented.append((400, surface.errors.invalid_description))
            documented += surface.auth.documented
            if surface.rate_limit is not None:
                documented.append((429, surface.rate_limit.description))
            if body:
                documented += surface.body.documented
            for status, description in documented:
                func = self.error(status, description)(func)
            if surface.auth.security is not None:
                func = self.doc(security=surface.auth.security)(func)
            func._required_scope = scope
            func._json_body = body
            func._error_extra = dict(error_extra or {})
            func._max_body_bytes = max_body_bytes
            return func

        return decorator

    def error(self, status: int, description: str):
        """Document one more error answer of a view, in the surface's error shape."""
        return self.alt_response(status, schema=self.surface.errors.schema, description=description)

    def _guard(self):
        if request.method == "OPTIONS":
            return None
        view = current_app.view_functions.get(request.endpoint)
        view_class = getattr(view, "view_class", None)
        method = "get" if request.method == "HEAD" else request.method.lower()
        target = getattr(view_class, method, None) if view_class is not None else view
        if target is None:
            return None  # Flask answers 405
        scope = getattr(target, "_required_scope", _UNDECLARED)
        if scope is _UNDECLARED:
            raise RuntimeError(f"view {request.endpoint} declares no scope (@blp.requires)")
        surface = self.surface
        limit_body(target._max_body_bytes or surface.max_body_bytes)
        g.error_extra = target._error_extra
        g.auth = surface.auth.authenticate()
        if surface.rate_limit is not None:
            count_request(surface.rate_limit, g.auth.account)
        if surface.auth.scoped:
            surface.auth.require_scope(g.auth, scope)
        if target._json_body:
            surface.body.check()
        return None


def limit_body(limit: int) -> None:
    """Take bodies of up to ``limit`` bytes in this request; refuse a larger one (413)."""
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        fail(413, f"Request body is too large; the limit is {limit} bytes")


def count_request(policy: ratelimit.RateLimit, account) -> None:
    """Count the request in the account's window of ``policy``'s bucket; 429 past it."""
    verdict = ratelimit.hit(account.id, ratelimit.limit_for(account, policy), policy.bucket)
    if verdict is None:
        return
    g.rate_limit = verdict
    if not verdict.allowed:
        metrics = getattr(current_app.config.get("GATEWAY"), "metrics", None)
        if metrics is not None:
            metrics.rate_limited.labels(policy.bucket).inc()
        fail(429, policy.exceeded(verdict.limit), headers={"Retry-After": str(verdict.reset)})


def add_rate_limit_headers(response):
    """After every request: the ``RateLimit-*`` headers, if the request was counted."""
    verdict = g.get("rate_limit")
    if verdict is not None:
        for name, value in verdict.headers().items():
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """What an app serving surfaces needs besides their blueprints: the one error handler
    (``gateway.api.errors``) and the ``RateLimit-*`` headers."""
    errors.init_app(app)
    app.after_request(add_rate_limit_headers)
