"""``/agents``: the voice agents, each an ``Agent`` row that numbers and calls already go to.

``POST`` needs no internal ``key``: one is derived from the name (``Sales Bot`` →
``sales-bot``, then ``sales-bot-2``…) when it is absent. ``DELETE`` deactivates the agent:
its calls keep their record, ``/v1`` no longer lists it, and a number still attached to
it refuses its inbound calls until it is attached to another agent.
"""
from __future__ import annotations

import re

from flask.views import MethodView
from peewee import IntegrityError

from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.schemas import (
    VoiceAgentCreateSchema,
    VoiceAgentListSchema,
    VoiceAgentSchema,
    VoiceAgentUpdateSchema,
    DeletedSchema,
    VoiceAgentListArgsSchema,
)
from gateway.models import Agent, AgentKnowledge, PhoneNumber, clean_agent_fields
from gateway.voice_agents.profile import FIELDS as PROFILE_FIELDS, profile_of

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-agents", __name__, url_prefix="/agents",
                       description="Voice agents: their driver, prompt, voice and variables.")

DEFAULT_DRIVER = "elevenlabs"
DEFAULT_TYPE = "inbound"
#: Why a create or update valid by the schema is refused: ``clean_agent_fields``' words.
REFUSALS = "the driver's reference is not valid for it (an ElevenLabs or Vapi id, a public ws(s):// URL)"


def active_agents(query):
    return query.where(Agent.active == True)  # noqa: E712


def readable_agent(agent_id) -> Agent:
    """The agent ``agent_id`` if this key may read it; else 404."""
    return ownership.one(active_agents(ownership.readable(Agent)), agent_id, "Agent")


def writable_agent(agent_id) -> Agent:
    """The agent ``agent_id`` if this key may change it; else 404."""
    return ownership.one(active_agents(ownership.writable(Agent)), agent_id, "Agent")


def agent_body(agent: Agent) -> dict:
    knowledge = [str(link.document_id) for link in
                 AgentKnowledge.select().where(AgentKnowledge.agent == agent.id).order_by(AgentKnowledge.document)]
    numbers = [number.e164 for number in
               PhoneNumber.select().where((PhoneNumber.agent == agent.id) & (PhoneNumber.route == "agent")
                                          & (PhoneNumber.active == True))  # noqa: E712
               .order_by(PhoneNumber.e164)]
    return {
        "id": str(agent.id), "key": agent.key, "name": agent.name, "language": agent.language,
        "agent_type": agent.agent_type, "driver": agent.driver, "driver_ref": agent.driver_ref,
        "owner_agent_id": str(agent.owner_agent_id) if agent.owner_agent_id is not None else None,
        **profile_of(agent), "knowledge": knowledge, "phone_numbers": numbers, "created_at": agent.created_at,
    }


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:56].strip("-")
    return slug or "agent"


def _free_key(account_id: int, name: str) -> str:
    base = _slug(name)
    taken = {key for (key,) in Agent.select(Agent.key).where(
        (Agent.account == account_id) & (Agent.key.startswith(base))).tuples()}
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def _cleaned(fields: dict) -> dict:
    try:
        return clean_agent_fields(**fields)
    except ValueError as exc:
        fail(400, str(exc))


def _profile(stored: dict, changes: dict) -> dict:
    merged = {**stored, **{name: changes[name] for name in PROFILE_FIELDS if name in changes}}
    return {name: value for name, value in merged.items() if value is not None and value != {}}


@blp.route("")
class Agents(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(VoiceAgentListArgsSchema, location="query")
    @blp.response(200, VoiceAgentListSchema)
    def get(self, args):
        """List the voice agents this key may read (its owner's; all with voice:read:all), by owner if asked"""
        query = active_agents(ownership.readable(Agent))
        owner = args.pop("owner_agent_id", None)
        if owner is not None:
            query = query.where(Agent.owner_agent == int(owner)) if int(owner) < 2**31 else query.where(False)
        total = query.count()
        page = query.order_by(Agent.id).limit(args["limit"]).offset(args["offset"])
        return {"agents": [agent_body(agent) for agent in page], "total": total, **args}

    @blp.requires("voice:write", body=True)
    @blp.arguments(VoiceAgentCreateSchema)
    @blp.response(201, VoiceAgentSchema)
    @blp.error(400, f"Invalid body, or {REFUSALS}")
    @blp.error(409, "An agent of the account has this key")
    def post(self, body):
        """Create a voice agent"""
        account_id = ownership.account_id()
        fields = _cleaned({
            "key": body.get("key") or _free_key(account_id, body["name"]), "name": body["name"],
            "language": body.get("language", "en"), "agent_type": body.get("agent_type", DEFAULT_TYPE),
            "driver": body.get("driver", DEFAULT_DRIVER), "driver_ref": body["driver_ref"],
        })
        try:
            agent = Agent.create(account=account_id, owner_agent=ownership.owner_of_new_rows(),
                                 profile=_profile({}, body), **fields)
        except IntegrityError:
            fail(409, f"An agent with key {fields['key']!r} exists; choose another key")
        return agent_body(agent)


@blp.route("/<agent_id>")
class OneAgent(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, VoiceAgentSchema)
    @blp.error(404, "No such agent, or not this key's")
    def get(self, agent_id):
        """Read a voice agent"""
        return agent_body(readable_agent(agent_id))

    @blp.requires("voice:write", body=True)
    @blp.arguments(VoiceAgentUpdateSchema)
    @blp.response(200, VoiceAgentSchema)
    @blp.error(400, f"Invalid body, or {REFUSALS}")
    @blp.error(404, "No such agent, or not this key's")
    def patch(self, body, agent_id):
        """Change some of a voice agent's fields"""
        agent = writable_agent(agent_id)
        fields = _cleaned({
            "key": agent.key, "name": body.get("name", agent.name), "language": body.get("language", agent.language),
            "agent_type": body.get("agent_type", agent.agent_type), "driver": body.get("driver", agent.driver),
            "driver_ref": body.get("driver_ref", agent.driver_ref),
        })
        Agent.update(profile=_profile(agent.profile or {}, body), **fields).where(Agent.id == agent.id).execute()
        return agent_body(Agent.get_by_id(agent.id))

    @blp.requires("voice:write")
    @blp.response(200, DeletedSchema)
    @blp.error(404, "No such agent, or not this key's")
    def delete(self, agent_id):
        """Delete a voice agent (its calls keep their record; its numbers refuse calls until re-attached)"""
        agent = writable_agent(agent_id)
        Agent.update(active=False).where(Agent.id == agent.id).execute()
        return {"deleted": True}
