"""``/v1/calls``: call an internal agent, read the call's normalized record.

Placing (``POST /v1/calls``), checked in this order:

1. the body: one of ``phone``/``phone_number`` and one of ``agent`` (internal key),
   ``agent_name`` or ``agent_id`` (400, also when two of them disagree);
2. the number, normalised to E.164 in the account's region (400);
3. the agent, among the account's active agents (404 ``Agent not found``; an
   ``agent_name`` shared by several agents is a 400 asking for the key or id);
4. credits: ``402 {"error": "Insufficient credits"}`` while the account's balance is
   zero or less; any positive balance admits a call, whatever the number's rate (an
   answered call is charged at the account's rates when it ends:
   ``gateway.billing.ledger.billing_hook``);
5. the account's default caller ID, which these calls go out with (409 if none);
6. a connected FreeSWITCH node (503 ``Could not place the call right now. Please retry``:
   the words of the public calling API, which name no part of the gateway).

The agent's driver decides where the media goes: ``websocket`` → its ``driver_ref``
URL, ``elevenlabs`` → ``elevenlabs&<driver_ref>``, ``vapi`` → ``vapi&<driver_ref>``
(stored as the call's ``socket_url``). ``contact_name`` defaults to
``custom_args["name"]`` when that is a string. The answer is
``{"call_id", "status": "registered"}``. (A ``custom_args["name"]`` with control characters
is not taken as the contact's name; it stays in ``custom_args``.)

Reading (``GET /v1/calls/{call_id}``): another account's call, or another agent's for a
key owned by an agent, answers exactly like an unknown id: 404 ``Call not found``.
"""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.agents import v1_status
from gateway.api.agents.schemas import AgentCallSchema, CallRegisteredSchema, PlaceAgentCallSchema
from gateway.api.common import find_call, normalize_number, place_call, seconds_between
from gateway.api.errors import fail
from gateway.api.fields import has_control_characters
from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import AGENTS
from gateway.domain import Surface
from gateway.models import Agent, Call, ProviderCall, utcnow
from gateway.numbering import InvalidNumber, normalize_caller_id

blp = SurfaceBlueprint(
    AGENTS, "agent-calls", __name__, url_prefix="/calls",
    description="Call an internal agent and read the call's normalized record.",
)

CALL_NOT_FOUND = "Call not found"
AGENT_NOT_FOUND = "Agent not found"
INSUFFICIENT_CREDITS = "Insufficient credits"
#: No switch can take the call now: said as the public calling API says it, naming no part
#: of the gateway.
CALL_NOT_PLACED = "Could not place the call right now. Please retry"
_MAX_ID = 2**31 - 1


@blp.route("")
class AgentCalls(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(PlaceAgentCallSchema, examples={
        "minimal": {"summary": "agent-calls-minimal", "value": {"phone": "+996700000000", "agent": "akylai"}},
        "events": {"summary": "agent-calls-events", "value": {
            "phone_number": "+919876543210", "agent_name": "Home Loan Agent",
            "custom_args": {"name": "Rahul Sharma", "product": "Home Loan"}}},
    })
    @blp.response(200, CallRegisteredSchema)
    @blp.error(400, "A field is invalid by the schema; or, what the schema cannot tell: phone or phone_number"
                    " is not a valid number in the account's region (its numbering plan), or agent_name is"
                    " shared by several agents (send agent or agent_id)")
    @blp.error(402, INSUFFICIENT_CREDITS)
    @blp.error(404, AGENT_NOT_FOUND)
    @blp.error(409, "The account has no caller ID to call from")
    @blp.error(503, CALL_NOT_PLACED)
    def post(self, args):
        """Call a number with an agent

        Send ``phone`` or ``phone_number`` and the agent as ``agent`` (internal key),
        ``agent_name`` or ``agent_id``.
        """
        account = g.auth.account
        field = "phone_number" if args.get("phone_number") is not None else "phone"
        to_number = normalize_number(field, args[field], account.region)
        agent = _find_agent(account.id, args, g.auth.owner_agent_id)
        if account.balance <= 0:
            fail(402, INSUFFICIENT_CREDITS)
        if not account.default_caller_id:
            fail(409, "No caller ID is configured for this account")
        try:
            from_number = normalize_caller_id(account.default_caller_id, account.region)
        except InvalidNumber as exc:
            fail(409, f"The account's caller ID is invalid: {exc}")
        custom_args = args.get("custom_args") or {}
        contact_name = args.get("contact_name")
        name = custom_args.get("name")
        if contact_name is None and isinstance(name, str) and not has_control_characters(name):
            contact_name = name.strip()[:255] or None
        call = place_call(
            account, to_number=to_number, from_number=from_number, surface=Surface.AGENTS.value,
            socket_url=agent.media_target, custom_args=custom_args, agent=agent, contact_name=contact_name,
            unavailable=CALL_NOT_PLACED,
        )
        return {"call_id": call.uuid, "status": v1_status(call)}


@blp.route("/<call_id>", parameters=[path_parameter(
    "call_id", "The call_id POST /v1/calls returned (404 Call not found for any other value)",
    {"type": "string", "format": "uuid"})])
class AgentCallById(MethodView):
    @blp.requires("calls:read")
    @blp.response(200, AgentCallSchema)
    @blp.error(404, CALL_NOT_FOUND)
    def get(self, call_id):
        """Read a call's record

        Status, transcript, analysis, recording URL, agent and contact. Transcript and
        analysis are null until the conversation has been processed.
        """
        call = find_call(g.auth.account.id, call_id, g.auth.owner_agent_id)
        if call is None:
            fail(404, CALL_NOT_FOUND)
        return call_record(call)


def _find_agent(account_id: int, args: dict, owner_agent_id: int | None) -> Agent:
    query = Agent.select().where((Agent.account == account_id) & (Agent.active == True))  # noqa: E712
    if owner_agent_id is not None:
        query = query.where(Agent.id == owner_agent_id)
    if args.get("agent") is not None:
        query = query.where(Agent.key == args["agent"].strip().lower())
    elif args.get("agent_name") is not None:
        matches = list(query.where(Agent.name == args["agent_name"].strip()).limit(2))
        if len(matches) > 1:
            fail(400, "agent_name: several agents have this name; send agent (the key) or agent_id")
        if not matches:
            fail(404, AGENT_NOT_FOUND)
        return matches[0]
    else:
        text = args["agent_id"].strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= _MAX_ID):
            fail(404, AGENT_NOT_FOUND)
        query = query.where(Agent.id == int(text))
    agent = query.get_or_none()
    if agent is None:
        fail(404, AGENT_NOT_FOUND)
    return agent


def provider_duration(call: Call) -> int | None:
    """The duration the call's provider (or WebSocket agent) reported, as it said it."""
    link = (ProviderCall.select(ProviderCall.duration)
            .where((ProviderCall.call == call.uuid) & ProviderCall.completed_at.is_null(False))
            .order_by(ProviderCall.completed_at)
            .first())
    return link.duration if link is not None else None


def call_record(call: Call) -> dict:
    """The superset of both contracts' call records, and the provider's own duration
    beside the gateway's (``duration_seconds``: FreeSWITCH's measure wins)."""
    agent = call.agent if call.agent_id is not None else None
    if call.billsec is not None:
        duration = call.billsec
    elif call.status == "in_progress":
        duration = seconds_between(call.answered_at, utcnow())
    else:
        duration = 0
    phone = call.to_number if call.direction == "outbound" else call.from_number
    return {
        "call_id": call.uuid,
        "status": v1_status(call),
        "direction": call.direction,
        "phone_number": phone,
        "phone": phone,
        "agent": agent.key if agent else None,
        "agent_id": str(agent.id) if agent else None,
        "agent_name": agent.name if agent else None,
        "contact_name": call.contact_name,
        "custom_args": call.custom_args if isinstance(call.custom_args, dict) else {},
        "duration_seconds": duration,
        "duration": duration,
        "provider_duration_seconds": provider_duration(call),
        "recording_url": call.recording_url,
        "transcript": transcript_turns(call.transcript),
        "analysis": call.analysis if isinstance(call.analysis, dict) else None,
        "called_at": call.created_at,
        "ended_at": call.ended_at,
    }


_SPEAKERS = {"agent": "bot", "bot": "bot", "assistant": "bot", "user": "user", "customer": "user"}


def transcript_turns(value) -> list[dict] | None:
    """The stored transcript as ``[{"bot": …}, {"user": …}]``.

    The completion webhook of agent-calls-minimal sends text (``"agent: Hello\\nuser:
    Hi"``); such a transcript, if stored as is, is split into turns here.
    """
    if value is None:
        return None
    if isinstance(value, str):
        turns = []
        for line in value.splitlines():
            speaker, sep, text = line.partition(":")
            if sep and speaker.strip().lower() in _SPEAKERS:
                turns.append({_SPEAKERS[speaker.strip().lower()]: text.strip()})
            elif line.strip() and turns:
                key = next(iter(turns[-1]))
                turns[-1][key] += "\n" + line.strip()
        return turns
    if isinstance(value, list):
        return [{str(k): "" if v is None else str(v) for k, v in turn.items()}
                for turn in value if isinstance(turn, dict)]
    return None
