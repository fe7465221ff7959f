"""``/phone-numbers`` and ``/agents/:id/phone``: the account's existing numbers, and
attaching one to an agent, so that inbound calls on that DID go to it.

Numbers are the account's, not an owner's: an operator provisions them (never this
surface: the contract's carve-out), so every key with ``voice:read`` lists all of them.
Attaching needs an agent the key may change, and a number that no agent outside the
key's reach holds: one owner cannot take another owner's number away.
"""
from __future__ import annotations

from flask.views import MethodView

from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.agents import writable_agent
from gateway.api.voice_admin.schemas import AttachPhoneSchema, PageArgsSchema, PhoneNumberListSchema, PhoneNumberSchema
from gateway.models import Agent, PhoneNumber

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-phone-numbers", __name__,
                       description="The account's phone numbers, and which agent each one's calls go to.")

HELD_ELSEWHERE = "This number is attached to an agent this key cannot change"


def _numbers():
    return PhoneNumber.select().where((PhoneNumber.account == ownership.account_id())
                                      & (PhoneNumber.active == True))  # noqa: E712


def number_body(number: PhoneNumber) -> dict:
    routed = number.route == "agent" and number.agent_id is not None
    return {"id": str(number.id), "phone_number": number.e164,
            "agent_id": str(number.agent_id) if routed else None, "route": number.route}


@blp.route("/phone-numbers")
class PhoneNumbers(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PhoneNumberListSchema)
    def get(self, args):
        """List the account's phone numbers"""
        query = _numbers()
        total = query.count()
        page = query.order_by(PhoneNumber.e164).limit(args["limit"]).offset(args["offset"])
        return {"phone_numbers": [number_body(number) for number in page], "total": total, **args}


@blp.route("/agents/<agent_id>/phone")
class AttachPhone(MethodView):
    @blp.requires("voice:write", body=True)
    @blp.arguments(AttachPhoneSchema)
    @blp.response(200, PhoneNumberSchema)
    @blp.error(404, "No such agent or number, or not this key's")
    @blp.error(409, HELD_ELSEWHERE)
    def post(self, body, agent_id):
        """Attach one of the account's numbers to an agent: its inbound calls go to the agent"""
        agent = writable_agent(agent_id)
        if "phone_number" in body:
            wanted = body["phone_number"]
            number = _numbers().where(PhoneNumber.e164.in_([wanted, "+" + wanted.lstrip("+")])).first()
        else:
            number = ownership.one(_numbers(), body["phone_number_id"], "Phone number")
        if number is None:
            fail(404, "Phone number not found")
        if number.route == "agent" and number.agent_id not in (None, agent.id):
            holder = ownership.writable(Agent).where(Agent.id == number.agent_id).first()
            if holder is None:
                fail(409, HELD_ELSEWHERE)
        PhoneNumber.update(route="agent", agent=agent.id, socket_url=None, webhook_url=None).where(
            PhoneNumber.id == number.id).execute()
        return number_body(PhoneNumber.get_by_id(number.id))
