"""Settling attempts from their calls' final status, in the transaction that writes it.

``results_hook(clock)`` is a ``CallController.transaction_hooks`` entry: for every call of a
batch that reached a final status and belongs to a campaign attempt not settled yet, the
attempt gets its outcome (``outcomes.outcome_of``), the contact its next state (a retry
after the campaign's backoff, or a final state) and the account a
``campaign.contact_result`` webhook, all committed with the call's status or not at all.
Whichever process applies the final status (the one that placed the call, or the one that
reconciled it after a crash) settles the attempt, once: the update is conditional on the
attempt having no outcome.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from gateway.dialer import events
from gateway.dialer.outcomes import after_attempt, outcome_of
from gateway.domain import FINAL, Status
from gateway.models import CampaignContact, ContactAttempt, VoiceCampaign, utcnow


def results_hook(clock: Callable[[], datetime]) -> Callable[[list], None]:
    def hook(changes: list) -> None:
        ended = {call_uuid: transition for call_uuid, _from, _seq, transition in changes
                 if transition.to_status in FINAL}
        if not ended:
            return
        attempts = list(ContactAttempt.select().where(ContactAttempt.call_uuid.in_(sorted(ended))
                                                      & ContactAttempt.outcome.is_null()))
        for attempt in attempts:
            transition = ended[attempt.call_uuid]
            settle(attempt, transition.to_status.value,
                   transition.end_reason.value if transition.end_reason else None,
                   transition.to_status is Status.COMPLETED, clock())
    return hook


def settle(attempt: ContactAttempt, status: str, end_reason: str | None, answered: bool, now: datetime) -> None:
    outcome = outcome_of(status, end_reason, answered)
    taken = (ContactAttempt.update(outcome=outcome, ended_at=utcnow())
             .where((ContactAttempt.id == attempt.id) & ContactAttempt.outcome.is_null()).execute())
    if not taken:
        return
    contact = CampaignContact.get_by_id(attempt.contact_id)
    campaign = VoiceCampaign.get_by_id(attempt.campaign_id)
    step = after_attempt(outcome, contact.attempts, campaign.max_attempts, campaign.retry_backoff_sec,
                         campaign.status, now)
    fields = {"state": step.state, "last_outcome": outcome, "updated_at": utcnow()}
    if step.next_attempt_at is not None:
        fields["next_attempt_at"] = step.next_attempt_at
    CampaignContact.update(**fields).where(CampaignContact.id == contact.id).execute()
    contact.state, contact.last_outcome = step.state, outcome
    events.announce("campaign.contact_result", campaign, contact, outcome)
