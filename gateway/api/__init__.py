"""The HTTP application: one blueprint package per contract surface (added per issue)."""

from __future__ import annotations

from flask import Flask, jsonify


def create_app(gateway) -> Flask:
    app = Flask("gateway")
    app.config["GATEWAY"] = gateway

    @app.get("/healthz")
    def healthz():
        """Liveness plus the state of every FreeSWITCH node link (503 if none is up)."""
        nodes = {
            name: {"connected": node.connected.is_set(), "last_error": node.last_error}
            for name, node in gateway.controller.nodes.items()
        }
        healthy = any(n["connected"] for n in nodes.values())
        return jsonify({"status": "ok" if healthy else "degraded", "freeswitch": nodes}), 200 if healthy else 503

    return app
