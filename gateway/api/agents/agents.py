"""``/v1/agents``: the account's active agents, paginated in the body.

``?limit`` (1-100, default 50) and ``?offset`` (default 0); the answer carries
``total``, ``limit`` and ``offset`` as agent-calls-events documents. Each agent has
both contracts' fields: ``id`` (for ``agent_id``), ``key`` (the internal key, for
``agent``), ``name``, ``language`` and ``agent_type``. A key owned by an agent lists
that agent alone.
"""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.agents.schemas import AgentListArgsSchema, AgentListSchema
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import AGENTS
from gateway.models import Agent

blp = SurfaceBlueprint(
    AGENTS, "agents", __name__, url_prefix="/agents",
    description="The internal agents a client may call with.",
)


@blp.route("")
class Agents(MethodView):
    @blp.requires("agents:read")
    @blp.arguments(AgentListArgsSchema, location="query")
    @blp.response(200, AgentListSchema)
    def get(self, args):
        """List the account's agents"""
        query = Agent.select().where((Agent.account == g.auth.account.id) & (Agent.active == True))  # noqa: E712
        if g.auth.owner_agent_id is not None:
            query = query.where(Agent.id == g.auth.owner_agent_id)
        total = query.count()
        page = query.order_by(Agent.id).limit(args["limit"]).offset(args["offset"])
        return {
            "agents": [
                {"id": str(agent.id), "key": agent.key, "name": agent.name,
                 "language": agent.language, "agent_type": agent.agent_type}
                for agent in page
            ],
            "total": total,
            "limit": args["limit"],
            "offset": args["offset"],
        }
