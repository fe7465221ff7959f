"""The HTTP application: one blueprint package per contract surface, on one framework.

==================  ==============================  ============================================
prefix              package                         contract
==================  ==============================  ============================================
``/api``            ``gateway.api.control``         call-control-and-bot-media.txt (live call control)
``/v1``             ``gateway.api.agents``          agent-calls-minimal.txt + agent-calls-events.txt
``/v1/webhooks``    ``gateway.api.agents.ingest``   agent-calls-minimal.txt (provider completion reports)
``/api/public/v1``  ``gateway.api.public``          public-calling-api.txt
``/api/agent-api/   ``gateway.api.voice_admin``     voice-agent-admin.txt
voice``
==================  ==============================  ============================================

Each surface is a declaration (``gateway.api.surfaces``) of its prefix, auth style, error
shape, body rule and rate-limit policy, served by one blueprint class, guard and parser
(``gateway.api.surface``). ``/openapi.json`` is the OpenAPI document of every endpoint,
``/docs`` shows it (Swagger UI), ``/healthz`` reports the FreeSWITCH links, ``/metrics``
is Prometheus' page (``gateway.metrics``). Errors:
``gateway.api.errors``; what the document declares beyond what the fields tell:
``gateway.api.openapi``.

Building the app reads the ``Gateway`` it serves (its database and controller) and
changes nothing of it: the process is wired by ``gateway.runtime``. Each request gets its
database connection back to the pool (PostgreSQL) or closed (SQLite) when it ends.
"""

from __future__ import annotations

import hmac

from flask import Flask, jsonify, request
from flask_smorest import Api

from gateway.api import errors
from gateway.api.errors import MAX_BODY_BYTES
from gateway.api.fields import UTCDateTime
from gateway.api.openapi import SchemaKeywordsPlugin
from gateway.api.surface import ErrorSchema, SurfaceBlueprint, init_app, limit_body
from gateway.api.surfaces import SURFACES
from gateway.metrics import CONTENT_TYPE

SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"


class GatewayApi(Api):
    """flask-smorest's Api with our error shape in the docs and no error handler of its
    own: ``errors.init_app`` installs the single app-wide one."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass


def blueprints() -> list[SurfaceBlueprint]:
    """Every surface's blueprints, in the order the document lists them."""
    from gateway.api.agents import agents, calls as agent_calls, ingest
    from gateway.api.control import calls as control_calls
    from gateway.api.public import account, calls as public_calls, campaigns, otp
    from gateway.api.voice_admin import actions as voice_actions, agents as voice_agents, campaigns as voice_campaigns
    from gateway.api.voice_admin import conversations, env_vars, knowledge, numbers, tools as voice_tools, voices

    return [control_calls.blp, agent_calls.blp, agents.blp, public_calls.blp, otp.blp, campaigns.blp, account.blp,
            voice_agents.blp, voices.blp, numbers.blp, knowledge.blp, env_vars.blp, voice_tools.blp, conversations.blp,
            voice_campaigns.blp, voice_actions.blp, ingest.blp]


def create_app(gateway) -> Flask:
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
            "info": {"description": "Live call control (/api), agent calls (/v1) and their providers' reports"
                                    " (/v1/webhooks), the public calling API (/api/public/v1), voice-agent"
                                    " admin (/api/agent-api/voice)."},
        },
    )
    app.json.sort_keys = False
    init_app(app)

    db = gateway.db

    @app.before_request
    def _open_connection():
        if not isinstance(app.blueprints.get(request.blueprint), SurfaceBlueprint):
            limit_body(MAX_BODY_BYTES)  # a surface's guard applies its own limit
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

    @app.get("/metrics")
    def metrics():
        """Prometheus text exposition of this gateway's metrics (``gateway.metrics``); when
        ``GATEWAY_METRICS_TOKEN`` is set, only with ``Authorization: Bearer <token>``."""
        token = gateway.settings.metrics_token
        if token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                             f"Bearer {token}".encode()):
            return jsonify({"error": "metrics need the bearer token (GATEWAY_METRICS_TOKEN)"}), 401
        return gateway.metrics.render(), 200, {"Content-Type": CONTENT_TYPE}

    api = GatewayApi(app, spec_kwargs={"extra_plugins": [SchemaKeywordsPlugin()]})
    api.register_field(UTCDateTime, "string", "date-time")
    for surface in SURFACES:
        errors.register_renderer(surface.prefix, surface.errors.render)
        for name, scheme in surface.auth.schemes.items():
            if name not in api.spec.components.security_schemes:
                api.spec.components.security_scheme(name, scheme)
    for blueprint in blueprints():
        api.register_blueprint(blueprint)
    return app
