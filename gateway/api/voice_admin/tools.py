"""``/agents/:id/tools``: the tools an agent's conversations may call: custom webhooks
(method, URL, headers, a JSON Schema of the parameters) and the Calendly preset
(``gateway.voice_agents.calendly``). ``gateway.voice_agents.tools`` runs them."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import jsonschema
from flask.views import MethodView
from peewee import IntegrityError

from gateway.api.errors import fail
from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin.agents import readable_agent, writable_agent
from gateway.api.voice_admin.schemas import (
    TOOL_NAME,
    CalendlyToolSchema,
    DeletedSchema,
    ToolListSchema,
    ToolSchema,
    WebhookToolSchema,
)
from gateway.models import AgentTool
from gateway.models.validators import check_webhook_url
from gateway.voice_agents import calendly
from gateway.voice_agents.env import PLACEHOLDER, placeholders_blanked

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-tools", __name__, url_prefix="/agents/<agent_id>/tools",
                       description="The tools an agent may call during its conversations.")

REFUSALS = ("the URL's host is not a public address (or holds an env var), or parameters is not a valid JSON"
            " Schema of an object")
NAME_PARAMETER = path_parameter("name", "The tool's name", {"type": "string", "pattern": TOOL_NAME})


def tool_body(tool: AgentTool) -> dict:
    return {"name": tool.name, "kind": tool.kind, "description": tool.description, "method": tool.method,
            "url": tool.url, "header_names": sorted(tool.headers), "parameters": tool.parameters,
            "created_at": tool.created_at}


def _checked_url(url: str) -> str:
    if PLACEHOLDER.search(urlsplit(url).netloc):
        fail(400, "url: env vars may be used in the URL's path and query, not its host")
    try:
        check_webhook_url(placeholders_blanked(url), "URL")
    except ValueError as exc:
        fail(400, f"url: {exc}")
    return url


def _checked_schema(schema: dict) -> dict:
    try:
        json.dumps(schema, allow_nan=False)
    except ValueError:
        fail(400, "parameters: not a valid JSON Schema: NaN and Infinity are not JSON")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        fail(400, f"parameters: not a valid JSON Schema: {exc.message}")
    if schema.get("type") != "object":
        fail(400, 'parameters: the schema must describe an object ("type": "object")')
    return schema


def _create(agent, **fields) -> dict:
    try:
        return tool_body(AgentTool.create(agent=agent.id, **fields))
    except IntegrityError:
        fail(409, f"The agent has a tool named {fields['name']!r}; delete it first")


@blp.route("")
class Tools(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, ToolListSchema)
    @blp.error(404, "No such agent, or not this key's")
    def get(self, agent_id):
        """List an agent's tools"""
        agent = readable_agent(agent_id)
        return {"tools": [tool_body(tool) for tool in
                          AgentTool.select().where(AgentTool.agent == agent.id).order_by(AgentTool.name)]}

    @blp.requires("voice:write", body=True)
    @blp.arguments(WebhookToolSchema)
    @blp.response(201, ToolSchema)
    @blp.error(400, f"Invalid body, or {REFUSALS}")
    @blp.error(404, "No such agent, or not this key's")
    @blp.error(409, "The agent has a tool of this name")
    def post(self, body, agent_id):
        """Attach a custom webhook tool"""
        agent = writable_agent(agent_id)
        url = _checked_url(body["url"])
        return _create(agent, name=body["name"], kind="webhook", description=body["description"],
                       method=body["method"], url=url, headers=body["headers"],
                       parameters=_checked_schema(body["parameters"]))


@blp.route("/calendly")
class CalendlyTool(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(CalendlyToolSchema)
    @blp.response(201, ToolSchema)
    @blp.error(404, "No such agent, or not this key's")
    @blp.error(409, "The agent has a tool of this name")
    def post(self, body, agent_id):
        """Attach the Calendly preset (availability and booking with the agent's Calendly token env var)"""
        agent = writable_agent(agent_id)
        return _create(agent, name=body["name"], kind="calendly", description=calendly.DESCRIPTION, method="",
                       url=calendly.API_URL, parameters=calendly.PARAMETERS,
                       config={"event_type": body["event_type"], "token_env": body["token_env"]})

    @blp.requires("voice:write")
    @blp.response(200, DeletedSchema)
    @blp.error(404, "No such agent or tool, or not this key's")
    def delete(self, agent_id):
        """Detach the tool named calendly (this path is the preset's, so DELETE /tools/{name} cannot reach it)"""
        return _delete(agent_id, "calendly")


@blp.route("/<name>", parameters=[NAME_PARAMETER])
class OneTool(MethodView):
    @blp.requires("voice:write")
    @blp.response(200, DeletedSchema)
    @blp.error(404, "No such agent or tool, or not this key's")
    def delete(self, agent_id, name):
        """Detach a tool"""
        return _delete(agent_id, name)


def _delete(agent_id, name: str) -> dict:
    agent = writable_agent(agent_id)
    if not AgentTool.delete().where((AgentTool.agent == agent.id) & (AgentTool.name == name)).execute():
        fail(404, "Tool not found")
    return {"deleted": True}
