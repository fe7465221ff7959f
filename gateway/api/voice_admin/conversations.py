"""``/agents/:id/conversations`` and ``/conversations/:id``: an agent's calls with their
status, duration, transcript, recording, tool runs, and the conversion outcome (from
the provider's analysis: the post-call report's ``outcome``, ``classification`` or
ElevenLabs' ``call_successful``). A conversation is readable when its agent is."""
from __future__ import annotations

from flask.views import MethodView

from gateway.api.common import seconds_between
from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.agents import readable_agent
from gateway.api.voice_admin.schemas import ConversationListSchema, ConversationSchema, PageArgsSchema
from gateway.models import Agent, Call, ToolRun
from gateway.uuids import parse_uuid

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-conversations", __name__,
                       description="The calls of voice agents: transcripts, recordings, tool runs, outcomes.")

OUTCOME_KEYS = ("outcome", "classification", "call_successful")


def outcome_of(analysis) -> str | None:
    if not isinstance(analysis, dict):
        return None
    for key in OUTCOME_KEYS:
        if isinstance(analysis.get(key), str) and analysis[key]:
            return analysis[key]
    return None


def conversation_body(call: Call) -> dict:
    runs = ToolRun.select().where(ToolRun.call == call.uuid).order_by(ToolRun.id)
    return {
        "id": call.uuid, "agent_id": str(call.agent_id), "direction": call.direction, "status": call.status,
        "end_reason": call.end_reason, "from_number": call.from_number, "to_number": call.to_number,
        "started_at": call.created_at, "answered_at": call.answered_at, "ended_at": call.ended_at,
        "duration_seconds": call.billsec if call.billsec is not None else seconds_between(call.answered_at,
                                                                                          call.ended_at),
        "transcript": call.transcript, "recording_url": call.recording_url, "analysis": call.analysis,
        "outcome": outcome_of(call.analysis),
        "tool_runs": [{"tool_name": run.tool_name, "parameters": run.parameters, "result": run.result,
                       "is_error": run.is_error, "duration_ms": run.duration_ms, "started_at": run.started_at}
                      for run in runs],
    }


@blp.route("/agents/<agent_id>/conversations")
class AgentConversations(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ConversationListSchema)
    @blp.error(404, "No such agent, or not this key's")
    def get(self, args, agent_id):
        """List an agent's conversations, newest first"""
        agent = readable_agent(agent_id)
        query = Call.select().where((Call.account == agent.account_id) & (Call.agent == agent.id))
        total = query.count()
        page = query.order_by(Call.created_at.desc(), Call.uuid).limit(args["limit"]).offset(args["offset"])
        return {"conversations": [conversation_body(call) for call in page], "total": total, **args}


@blp.route("/conversations/<conversation_id>")
class OneConversation(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, ConversationSchema)
    @blp.error(404, "No such conversation, or not this key's")
    def get(self, conversation_id):
        """Read a conversation"""
        uuid = parse_uuid(conversation_id)
        agents = ownership.readable(Agent).where(Agent.active == True).select(Agent.id)  # noqa: E712
        call = None if uuid is None else Call.get_or_none(
            (Call.uuid == uuid) & (Call.account == ownership.account_id()) & (Call.agent.in_(agents)))
        if call is None:
            fail(404, "Conversation not found")
        return conversation_body(call)
