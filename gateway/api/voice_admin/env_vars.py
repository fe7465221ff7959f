"""``/agents/:id/env-vars``: an agent's secrets (a Calendly token, a CRM key), which its
tools use as ``{{env.NAME}}``. Values are encrypted at rest with the gateway's secrets key
(``EncryptedTextField``) and never returned: the list is of names."""
from __future__ import annotations

import re

from flask.views import MethodView
from peewee import IntegrityError

from gateway.api.errors import fail
from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin.agents import readable_agent, writable_agent
from gateway.api.voice_admin.schemas import ENV_NAME, EnvVarListSchema, EnvVarSetSchema, EnvVarValueSchema
from gateway.models import AgentEnvVar, utcnow

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-env-vars", __name__, url_prefix="/agents/<agent_id>/env-vars",
                       description="An agent's secrets for its tools: names listed, values never returned.")

BAD_NAME = "The env var name must be 1-64 characters A-Z, 0-9 or '_', not starting with a digit"
NAME_PARAMETER = path_parameter("name", "The env var's name", {"type": "string", "pattern": ENV_NAME})


def _name(name: str) -> str:
    if not re.match(ENV_NAME, name):
        fail(400, BAD_NAME)
    return name


@blp.route("")
class EnvVars(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, EnvVarListSchema)
    @blp.error(404, "No such agent, or not this key's")
    def get(self, agent_id):
        """List the names of an agent's env vars"""
        agent = readable_agent(agent_id)
        names = [name for (name,) in AgentEnvVar.select(AgentEnvVar.name).where(AgentEnvVar.agent == agent.id)
                 .order_by(AgentEnvVar.name).tuples()]
        return {"env_vars": names}


@blp.route("/<name>", parameters=[NAME_PARAMETER])
class OneEnvVar(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(EnvVarValueSchema)
    @blp.response(200, EnvVarSetSchema)
    @blp.error(400, f"Invalid body, or: {BAD_NAME}")
    @blp.error(404, "No such agent, or not this key's")
    def put(self, body, agent_id, name):
        """Set an env var's value (stored encrypted, never returned)"""
        agent = writable_agent(agent_id)
        name = _name(name)
        updated = AgentEnvVar.update(value=body["value"], updated_at=utcnow()).where(
            (AgentEnvVar.agent == agent.id) & (AgentEnvVar.name == name)).execute()
        if not updated:
            try:
                AgentEnvVar.create(agent=agent.id, name=name, value=body["value"])
            except IntegrityError:  # set at the same moment by another request: this one wins
                AgentEnvVar.update(value=body["value"], updated_at=utcnow()).where(
                    (AgentEnvVar.agent == agent.id) & (AgentEnvVar.name == name)).execute()
        return {"name": name, "set": True}

    @blp.requires("voice:write")
    @blp.response(200, EnvVarSetSchema)
    @blp.error(404, "No such agent or env var, or not this key's")
    def delete(self, agent_id, name):
        """Delete an env var"""
        agent = writable_agent(agent_id)
        deleted = AgentEnvVar.delete().where((AgentEnvVar.agent == agent.id) & (AgentEnvVar.name == name)).execute()
        if not deleted:
            fail(404, "Env var not found")
        return {"name": name, "set": False}
