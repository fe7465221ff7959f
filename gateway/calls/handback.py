"""Calls that come back to the gateway: a transfer that failed, an answered call found again
after a restart.

A transfer hands the call to the dialplan (``dialplan/gateway_transfer.xml``); before it is
sent, the controller's ``before_transfer`` hooks run (the media sessions stop the bot's
stream there).  When the far end fails, the transfer context sets
``gateway_transfer_result`` to the cause and parks the call again.  The controller knows
that park (:func:`is_return`: a CHANNEL_PARK of an answered call whose ``Caller-Context``
is the transfer context) and hands it to :meth:`Handback.parked_again`, which, on a greenlet
of its own:

* logs it (kind ``transfer``): ``transfer_failed`` with the ``cause``, or
  ``transfer_returned`` for a park without a result (the ``gateway_park`` destination, a
  hand-back that is no failure), and unsets the variable, so that a later look at the
  channel (after a restart) does not take it for a new failure;
* does what the account's ``on_transfer_failure`` says (``transfer_policy``): ``bot``
  offers the call to the controller's ``take_back`` hooks (the media sessions give it its
  bot again: a new stream, the target it had); ``hangup``, or a call no hook takes (no
  bot, as a press-1 call), ends with the failure's cause (``hangup`` entry, reason
  ``transfer_failed``).  A hand-back without a failure is offered to the hooks, and left
  as it is if none takes it.

After a (re)connect the reconciliation hands each answered call of the node to
:meth:`Handback.reattached`, with its ``show channels`` row.  A parked one (``application``
``park``) comes back: if the transfer context parked it and ``gateway_transfer_result`` is
still set, a transfer failed while nobody listened, handled as above; otherwise it is
offered to the ``take_back`` hooks (after a restart, the new process's media session first
stops the old one's stream; a call whose session lives on, its link having come back,
keeps it).  One running anything else (a transfer's ``bridge``, a script's step) is left
to it, with a note in its log (kind ``reconcile``): a call bridged to a person must not
get the bot back.
"""

from __future__ import annotations

import logging
import re

from gateway import dialplan_names as names
from gateway.calls.errors import CallError
from gateway.calls.transfer_policy import ON_FAILURE_BOT, ON_FAILURE_HANGUP
from gateway.greenlets import GreenletOwner
from gateway.models import Account, Call
from gateway.models.db import connection_scope

logger = logging.getLogger(__name__)

# What a cause taken from a channel variable must look like before it goes into uuid_kill.
_CAUSE = re.compile(r"[A-Z][A-Z_]{1,63}")


def is_return(event) -> bool:
    """Is this event of an answered call the transfer context parking it again?"""
    return event.name == "CHANNEL_PARK" and event.get("Caller-Context") == names.TRANSFER_CONTEXT


class Handback:
    """See the module docstring; ``controller`` is the ``CallController`` that owns it."""

    def __init__(self, controller) -> None:
        self.controller = controller
        self._greenlets = GreenletOwner("calls handed back")

    def stop(self, grace: float = 5.0) -> None:
        self._greenlets.stop(grace)

    # -- the controller's worker: must not block -------------------------------------------
    def parked_again(self, call_uuid: str, event) -> None:
        result = event.get(f"variable_{names.VAR_TRANSFER_RESULT}") or None
        self._greenlets.spawn(self._came_back, call_uuid, result)

    def reattached(self, call_uuid: str, row: dict) -> None:
        application = row.get("application") or ""
        if application != "park":
            self._log(call_uuid, "reconcile", {"event": "reattached", "application": application,
                                               "note": f"running {application or 'no application'}: left to it"})
            return
        self._greenlets.spawn(self._reattach, call_uuid, row.get("context") == names.TRANSFER_CONTEXT)

    # -- on greenlets of their own -------------------------------------------------------------
    def _reattach(self, call_uuid: str, parked_by_transfer: bool) -> None:
        if parked_by_transfer:
            try:
                result = self.controller.get_var(call_uuid, names.VAR_TRANSFER_RESULT)
            except CallError as exc:
                logger.info("call %s: re-attached, but %s", call_uuid, exc)
                return
            if result:
                self._came_back(call_uuid, result)
                return
        if not self._offer(call_uuid):
            self._log(call_uuid, "reconcile", {"event": "reattached", "application": "park",
                                               "note": "parked, and nothing here serves it"})

    def _came_back(self, call_uuid: str, result: str | None) -> None:
        if result is None:
            self._log(call_uuid, "transfer", {"event": "transfer_returned"})
            if not self._offer(call_uuid):
                self._log(call_uuid, "transfer", {"event": "no_bot", "note": "left parked"})
            return
        self._log(call_uuid, "transfer", {"event": "transfer_failed", "cause": result})
        try:
            self.controller.unset_var(call_uuid, names.VAR_TRANSFER_RESULT)
        except CallError as exc:  # ended meanwhile, or its node is down: nothing to take back now
            logger.info("call %s: back from a failed transfer, but %s", call_uuid, exc)
            return
        action = self._on_failure(call_uuid)
        if action == ON_FAILURE_BOT and self._offer(call_uuid):
            return
        cause = result if _CAUSE.fullmatch(result) else "NORMAL_CLEARING"
        self._log(call_uuid, "transfer", {"event": "hangup", "reason": "transfer_failed", "cause": cause,
                                          **({} if action == ON_FAILURE_HANGUP else {"note": "no bot to go back to"})})
        try:
            self.controller.hangup(call_uuid, cause)
        except CallError as exc:  # the call ended meanwhile, its node is down
            logger.info("call %s: hangup after a failed transfer not sent: %s", call_uuid, exc)

    def _on_failure(self, call_uuid: str) -> str:
        with connection_scope():
            call = Call.get_or_none(Call.uuid == call_uuid)
            account = Account.get_or_none(Account.id == call.account_id) if call is not None else None
        return account.on_transfer_failure if account is not None else ON_FAILURE_BOT

    def _offer(self, call_uuid: str) -> bool:
        """True once a ``take_back`` hook has the call (its bot, or its end with a reason)."""
        for hook in self.controller.take_back:
            try:
                if hook(call_uuid):
                    return True
            except Exception:
                logger.exception("call %s: a take-back hook failed", call_uuid)
        return False

    def _log(self, call_uuid: str, kind: str, detail: dict) -> None:
        self.controller.log(call_uuid, kind, detail)
