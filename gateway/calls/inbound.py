"""Where an inbound call goes, decided from what the dialplan handed over.

The shipped dialplan parks a call for a DID the gateway serves with ``gateway_did`` and
``gateway_direction=inbound`` set, and possibly a route the dialplan author pinned
(``gateway_route`` + its target, ``gateway_account``).  A pinned route wins; otherwise
the gateway's own number table decides.

The call stays unanswered until the gateway knows where it goes, so that a call it will
not take is *refused*, never answered and dropped.  The Hangup-Cause of a refusal is
chosen for the SIP response FreeSWITCH then sends to the caller (mod_sofia's
``hangup_cause_to_sip``, which answers an unanswered inbound INVITE with it):

==========================  ===============================  ==============================
refusal                     Hangup-Cause                     SIP response
==========================  ===============================  ==============================
DID nobody owns             ``UNALLOCATED_NUMBER``           404 Not Found (as a carrier)
owned, but routed nowhere   ``NO_ROUTE_DESTINATION``         404 Not Found
routing webhook ``hangup``  ``CALL_REJECTED``                603 Decline
media target unusable       ``NORMAL_TEMPORARY_FAILURE``     503 Service Unavailable
==========================  ===============================  ==============================

Every refusal is recorded (``RefusedCall``, and the call's own row and log when an
account owns the number) so that ``voicegw calls refused`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import dialplan_names as names
from gateway.models import Account, Agent, PhoneNumber, RefusedCall

UNKNOWN_NUMBER = "UNALLOCATED_NUMBER"
NO_ROUTE = "NO_ROUTE_DESTINATION"
DECLINED = "CALL_REJECTED"
UNAVAILABLE = "NORMAL_TEMPORARY_FAILURE"


@dataclass(frozen=True)
class InboundRefusal:
    """Why an inbound call is refused (``reason``, for people) and the Hangup-Cause it is
    refused with (``cause``, for the caller's switch)."""

    reason: str
    cause: str


@dataclass(frozen=True)
class InboundRoute:
    account_id: int | None  # None only when nobody owns the number
    socket_url: str | None = None
    webhook_url: str | None = None
    refusal: InboundRefusal | None = None  # set: refuse the call instead
    agent_id: int | None = None  # the agent the call goes to, recorded on the call (its conversations)

    @classmethod
    def refuse(cls, reason: str, cause: str, account_id: int | None = None) -> "InboundRoute":
        return cls(account_id, refusal=InboundRefusal(reason, cause))


@dataclass(frozen=True)
class InboundCall:
    """What the dialplan handed over about a parked inbound call."""

    uuid: str
    node: str
    did: str
    from_number: str
    caller_id_name: str


def record_refusal(call: InboundCall, account_id: int | None, refusal: InboundRefusal) -> RefusedCall:
    return RefusedCall.create(
        call_uuid=call.uuid, account=account_id, node=call.node, did=call.did[:32],
        from_number=call.from_number[:32], caller_id_name=call.caller_id_name[:64],
        reason=refusal.reason[:255], hangup_cause=refusal.cause,
    )


def did_candidates(did: str) -> list[str]:
    """The forms a DID may be stored under: as dialled, and with a leading ``+``."""
    digits = did.lstrip("+")
    return [did, f"+{digits}"] if not did.startswith("+") else [did, digits]


def _account_id(value: str | None) -> int | None:
    if value and value.isdigit():
        account = Account.get_or_none(Account.id == int(value))
        return account.id if account is not None else None
    return None


def _agent(account_id: int | None, key: str | None) -> Agent | None:
    if account_id is None or not key:
        return None
    return Agent.get_or_none(Agent.account == account_id, Agent.key == key, Agent.active == True)  # noqa: E712


def route_inbound(did: str, variables: dict[str, str | None]) -> InboundRoute:
    """Decide the route for an inbound call to ``did`` with the channel's ``variables``."""
    pinned = variables.get(names.VAR_ROUTE)
    number = (PhoneNumber.select().where(PhoneNumber.e164.in_(did_candidates(did)), PhoneNumber.active == True)  # noqa: E712
              .first())
    account_id = _account_id(variables.get(names.VAR_ACCOUNT)) or (number.account_id if number else None)
    if account_id is None:
        return InboundRoute.refuse("unknown_number", UNKNOWN_NUMBER)
    if pinned == names.ROUTE_BOT and variables.get(names.VAR_SOCKET_URL):
        return InboundRoute(account_id, socket_url=variables[names.VAR_SOCKET_URL])
    if pinned == names.ROUTE_WEBHOOK and variables.get(names.VAR_WEBHOOK_URL):
        return InboundRoute(account_id, webhook_url=variables[names.VAR_WEBHOOK_URL])
    if pinned == names.ROUTE_AGENT:
        agent = _agent(account_id, variables.get(names.VAR_AGENT))
        if agent is not None:
            return InboundRoute(account_id, socket_url=agent.media_target, agent_id=agent.id)
    if number is None:
        if pinned:  # the dialplan's route names a target the gateway cannot use
            return InboundRoute.refuse("pinned_route_unusable", NO_ROUTE, account_id)
        return InboundRoute.refuse("unknown_number", UNKNOWN_NUMBER, account_id)
    if number.route == "bot":
        return InboundRoute(account_id, socket_url=number.socket_url)
    if number.route == "webhook":
        return InboundRoute(account_id, webhook_url=number.webhook_url)
    if number.agent_id is not None and number.agent.active:
        return InboundRoute(account_id, socket_url=number.agent.media_target, agent_id=number.agent_id)
    return InboundRoute.refuse("agent_unavailable", NO_ROUTE, account_id)
