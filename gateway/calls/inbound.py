"""Where an inbound call goes, decided from what the dialplan handed over.

The shipped dialplan parks a call for a DID the gateway serves with ``gateway_did`` and
``gateway_direction=inbound`` set, and possibly a route the dialplan author pinned
(``gateway_route`` + its target, ``gateway_account``).  A pinned route wins; otherwise
the gateway's own number table decides.  A DID nobody owns is refused with
UNALLOCATED_NUMBER, as a carrier would.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import dialplan_names as names
from gateway.models import Account, Agent, PhoneNumber


@dataclass(frozen=True)
class InboundRoute:
    account_id: int | None  # None only when refused
    socket_url: str | None = None
    webhook_url: str | None = None
    reject_cause: str | None = None  # set: hang up with this cause instead

    @classmethod
    def reject(cls, cause: str = "UNALLOCATED_NUMBER") -> "InboundRoute":
        return cls(None, reject_cause=cause)


def did_candidates(did: str) -> list[str]:
    """The forms a DID may be stored under: as dialled, and with a leading ``+``."""
    digits = did.lstrip("+")
    return [did, f"+{digits}"] if not did.startswith("+") else [did, digits]


def _account_id(value: str | None) -> int | None:
    if value and value.isdigit():
        account = Account.get_or_none(Account.id == int(value))
        return account.id if account is not None else None
    return None


def _agent_target(account_id: int | None, key: str | None) -> str | None:
    if account_id is None or not key:
        return None
    agent = Agent.get_or_none(Agent.account == account_id, Agent.key == key, Agent.active == True)  # noqa: E712
    return agent.media_target if agent is not None else None


def route_inbound(did: str, variables: dict[str, str | None]) -> InboundRoute:
    """Decide the route for an inbound call to ``did`` with the channel's ``variables``."""
    pinned = variables.get(names.VAR_ROUTE)
    number = (PhoneNumber.select().where(PhoneNumber.e164.in_(did_candidates(did)), PhoneNumber.active == True)  # noqa: E712
              .first())
    account_id = _account_id(variables.get(names.VAR_ACCOUNT)) or (number.account_id if number else None)
    if account_id is None:
        return InboundRoute.reject()
    if pinned == names.ROUTE_BOT and variables.get(names.VAR_SOCKET_URL):
        return InboundRoute(account_id, socket_url=variables[names.VAR_SOCKET_URL])
    if pinned == names.ROUTE_WEBHOOK and variables.get(names.VAR_WEBHOOK_URL):
        return InboundRoute(account_id, webhook_url=variables[names.VAR_WEBHOOK_URL])
    if pinned == names.ROUTE_AGENT:
        target = _agent_target(account_id, variables.get(names.VAR_AGENT))
        if target:
            return InboundRoute(account_id, socket_url=target)
    if number is None:
        return InboundRoute.reject()
    if number.route == "bot":
        return InboundRoute(account_id, socket_url=number.socket_url)
    if number.route == "webhook":
        return InboundRoute(account_id, webhook_url=number.webhook_url)
    target = number.agent.media_target if number.agent_id is not None and number.agent.active else None
    return InboundRoute(account_id, socket_url=target) if target else InboundRoute.reject("NO_ROUTE_DESTINATION")
