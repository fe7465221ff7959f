"""The HTTP application: one blueprint package per contract surface.

==================  ========================  ============================================
prefix              package                   contract
==================  ========================  ============================================
``/api``            ``gateway.api.control``   call-control-and-bot-media.txt (live call control)
``/v1``             ``gateway.api.agents``    agent-calls-minimal.txt + agent-calls-events.txt
``/api/public/v1``  ``gateway.api.public``    public-calling-api.txt
==================  ========================  ============================================

``/openapi.json`` is the OpenAPI document of every surface, ``/docs`` shows it (Swagger
UI), ``/healthz`` reports the FreeSWITCH links. Errors: ``gateway.api.errors``;
authentication: ``gateway.api.auth``; what the surfaces share: ``gateway.api.surface``;
what the document declares beyond what the fields tell: ``gateway.api.openapi``.

Each request gets its database connection back to the pool (PostgreSQL) or closed
(SQLite) when it ends.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask_smorest import Api

from gateway.api import errors
from gateway.api.auth import API_KEY_HEADER, RateLimiter
from gateway.api.openapi import SchemaKeywordsPlugin
from gateway.api.surface import ErrorSchema, UTCDateTime

SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"


class GatewayApi(Api):
    """flask-smorest's Api with our error shape in the docs and no error handler of its
    own: ``errors.init_app`` installs the single app-wide one."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass


def create_app(gateway) -> Flask:
    from gateway.webhooks import ingest  # here: gateway.webhooks.events imports the surfaces

    app = Flask("gateway")
    app.config.update(
        GATEWAY=gateway,
        API_TITLE="Voice gateway",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
        API_SPEC_OPTIONS={
            "security": [{"ApiKeyAuth": []}, {"BearerAuth": []}],
            "info": {"description": "Live call control (/api) and agent calls (/v1)."},
        },
    )
    app.json.sort_keys = False
    app.extensions["gateway"] = {"limiter": RateLimiter()}
    errors.init_app(app)

    db = gateway.db

    @app.before_request
    def _open_connection():
        if request.blueprint == ingest.blueprint.name:
            request.max_content_length = ingest.MAX_INGEST_BYTES  # provider reports carry transcripts
        limit = request.max_content_length
        if request.content_length is not None and request.content_length > limit:
            errors.fail(413, f"Request body is too large; the limit is {limit} bytes")
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_connection(exc):
        if not db.is_closed():
            db.close()

    @app.get("/healthz")
    def healthz():
        """Liveness plus the state of every FreeSWITCH node link (503 if none is up)."""
        nodes = {
            name: {"connected": node.connected.is_set(), "last_error": node.last_error}
            for name, node in gateway.controller.nodes.items()
        }
        healthy = any(n["connected"] for n in nodes.values())
        return jsonify({"status": "ok" if healthy else "degraded", "freeswitch": nodes}), 200 if healthy else 503

    api = GatewayApi(app, spec_kwargs={"extra_plugins": [SchemaKeywordsPlugin()]})
    api.register_field(UTCDateTime, "string", "date-time")
    api.spec.components.security_scheme(
        "ApiKeyAuth", {"type": "apiKey", "in": "header", "name": API_KEY_HEADER})
    api.spec.components.security_scheme("BearerAuth", {"type": "http", "scheme": "bearer"})

    from gateway.api.agents import register as register_agents
    from gateway.api.control import register as register_control
    from gateway.api.public import register as register_public

    app.register_blueprint(ingest.blueprint)  # POST /v1/webhooks/call-completed (signed, no API key)
    register_control(api)
    register_agents(api)
    register_public(api, gateway)
    return app
