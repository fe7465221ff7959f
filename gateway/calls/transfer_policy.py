"""Where an account may transfer its calls: a guard against toll fraud and internal SIP targets.

A transfer leaves through the operator's carrier trunk (a number, at the operator's cost)
or through FreeSWITCH's own SIP stack, from inside the operator's network (a SIP URI, an
extension registered on the switch, which all accounts share). So each account has a
policy, set by the operator (``voicegw accounts set ACCOUNT --transfer-numbers …
--transfer-sip-domains …``), and a destination it does not allow is refused before
anything reaches FreeSWITCH:

``transfer_numbers``, a list of rules (default ``+``: every E.164 number, no extension):

* ``+`` and up to 15 digits: E.164 numbers starting so (``+`` alone: every number;
  ``+1``, ``+4420``);
* ``+14155550100-+14155550199``: an inclusive range of E.164 numbers of one length;
* ``1000`` or ``1000-1099``: extensions (3-5 digits), one or an inclusive range.

``transfer_sip_domains``, a list of domains (default: none, so no SIP URI): ``pbx.acme.com``
allows that host exactly, ``*.acme.com`` every host under it (not the bare domain); a
host that is an IP address is allowed only if that exact address is listed. The port of
a URI does not matter.

The same policy applies wherever a transfer starts: ``POST /api/calls/transfer`` (403),
and a press-1 call's ``connect_agent`` to the account's agent destination, which is
checked when it is set (``voicegw agent-destination set``) and again when it is used.

``on_transfer_failure`` (``voicegw accounts set ACCOUNT --on-transfer-failure bot|hangup``)
says what a call whose transfer failed (busy, no answer, rejected, ...) does once the
transfer context has parked it again for the gateway:

* ``bot`` (the default): it goes back to its bot, the one it had before the transfer
  (a call without a bot, such as a press-1 call, ends as with ``hangup``);
* ``hangup``: it ends, with the failure's cause as its hangup cause (``USER_BUSY``, ...).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from gateway.dialplan_names import transfer_target
from gateway.numbering import normalize

logger = logging.getLogger(__name__)

DEFAULT_NUMBER_RULES = ("+",)
MAX_RULES = 100

#: ``Account.on_transfer_failure``: back to the call's bot, or hang up with the cause.
ON_FAILURE_BOT = "bot"
ON_FAILURE_HANGUP = "hangup"
ON_FAILURE_ACTIONS = (ON_FAILURE_BOT, ON_FAILURE_HANGUP)

_EXTENSION = re.compile(r"[0-9]{3,5}")
_E164 = re.compile(r"\+[0-9]{1,15}")
_E164_PREFIX = re.compile(r"\+[0-9]{0,15}")
_DOMAIN = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class TransferRefused(ValueError):
    """The account's transfer policy does not allow the destination (403 on the API)."""


def transfer_destination(text: str, region: str) -> str:
    """A destination as the surfaces read it: a SIP URI or a 3-5 digit extension as given,
    anything else a phone number in ``region``, in E.164 (``InvalidNumber`` if it is not)."""
    target = text.strip()
    if target.lower().startswith(("sip:", "sips:")) or _EXTENSION.fullmatch(target):
        return target
    return normalize(target, region)


def clean_number_rules(text: str) -> list[str]:
    """``"+1, +4420, 1000-1099"`` → the rules; raise ``ValueError`` naming a bad one."""
    rules = [item.strip() for item in text.split(",") if item.strip()]
    if not rules:
        raise ValueError("no transfer number rule given")
    if len(rules) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} transfer number rules")
    for rule in rules:
        low, dash, high = rule.partition("-")
        if not dash:
            if not (_E164_PREFIX.fullmatch(rule) or _EXTENSION.fullmatch(rule)):
                raise ValueError(f"transfer number rule {rule!r} is invalid; expected an E.164 prefix (+, +1,"
                                 " +4420), a range (+14155550100-+14155550199) or extensions (1000, 1000-1099)")
            continue
        same_kind = (_E164.fullmatch(low) and _E164.fullmatch(high)) or \
            (_EXTENSION.fullmatch(low) and _EXTENSION.fullmatch(high))
        if not same_kind or len(low) != len(high) or low > high:
            raise ValueError(f"transfer number range {rule!r} is invalid; expected two numbers of one kind and"
                             " length, the lower first (+14155550100-+14155550199, 1000-1099)")
    return rules


def clean_sip_domains(text: str) -> list[str]:
    """``"pbx.acme.com, *.acme.net"`` → lower-case domains; raise ``ValueError``."""
    domains = [item.strip().lower() for item in text.split(",") if item.strip()]
    if not domains:
        raise ValueError("no SIP domain given")
    if len(domains) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} SIP domains")
    for domain in domains:
        if len(domain) > 253 or not _DOMAIN.fullmatch(domain):
            raise ValueError(f"SIP domain {domain!r} is invalid; expected a host name such as pbx.acme.com,"
                             " *.acme.com for the hosts under it, or an IPv4 address")
    return domains


def clean_failure_action(text: str) -> str:
    """``"bot"`` or ``"hangup"`` (any case); raise ``ValueError`` naming both."""
    action = text.strip().lower()
    if action not in ON_FAILURE_ACTIONS:
        raise ValueError(f"on transfer failure {text!r} is invalid; expected bot (the call goes back to its bot)"
                         " or hangup (the call ends with the failure's cause)")
    return action


def _number_allowed(rule: str, number: str) -> bool:
    low, dash, high = rule.partition("-")
    if dash:
        return len(number) == len(low) and low <= number <= high  # one length: text order is numeric order
    if rule.startswith("+"):
        return number.startswith(rule)
    return number == rule


def _domain_allowed(domain: str, host: str) -> bool:
    if domain.startswith("*."):
        return host.endswith(domain[1:])
    return host == domain


@dataclass(frozen=True)
class TransferPolicy:
    numbers: tuple[str, ...] = DEFAULT_NUMBER_RULES
    sip_domains: tuple[str, ...] = ()

    @classmethod
    def of(cls, account) -> TransferPolicy:
        return cls(tuple(account.transfer_numbers or DEFAULT_NUMBER_RULES), tuple(account.transfer_sip_domains or ()))

    def check(self, destination: str) -> str:
        """``destination`` (as :func:`transfer_destination` gives it) if the account may
        transfer there. Raises ``ValueError`` for what cannot be transferred at all (the
        transfer context's rules), :class:`TransferRefused` for what the policy refuses."""
        transfer_target(destination)
        target = destination.strip()
        scheme, _, rest = target.partition(":")
        if scheme.lower() in ("sip", "sips"):
            host = rest.rpartition("@")[2].partition(":")[0].lower()
            if not any(_domain_allowed(domain, host) for domain in self.sip_domains):
                raise TransferRefused(f"transfer to {target!r} is not allowed: SIP domain {host!r} is not"
                                      " one of the account's transfer SIP domains")
            return target
        if _EXTENSION.fullmatch(target):
            if not any(_number_allowed(rule, target) for rule in self.numbers if not rule.startswith("+")):
                raise TransferRefused(f"transfer to extension {target!r} is not allowed for this account")
            return target
        if not _E164.fullmatch(target):
            raise TransferRefused(f"transfer to {target!r} is not allowed: expected an E.164 number,"
                                  " an extension or a SIP URI")
        if not any(_number_allowed(rule, target) for rule in self.numbers if rule.startswith("+")):
            raise TransferRefused(f"transfer to {target} is not allowed: not in the account's transfer numbers")
        return target


def allowed_agent_destination(account) -> str | None:
    """The account's press-1 agent destination if its transfer policy allows it now (the
    policy may have changed since it was set), else None."""
    destination = account.agent_destination
    if not destination:
        return None
    try:
        return TransferPolicy.of(account).check(destination)
    except ValueError as exc:
        logger.warning("account %s: agent destination not used: %s", account.id, exc)
        return None
