"""What a contact's call came to, and what follows for the contact; no IO.

A call's final status and end reason (``gateway.domain``) give the attempt's outcome:
answered calls are ``completed``; ``no_answer`` and ``busy`` are themselves; everything
else (declined, unreachable, cancelled, vanished in a crash) is ``failed``. Retryable
outcomes go back to ``pending`` after the campaign's backoff while attempts remain and the
campaign is not stopped; otherwise the outcome is the contact's final state.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RETRYABLE = ("no_answer", "busy", "failed")


def outcome_of(status: str, end_reason: str | None, answered: bool) -> str:
    if answered or status == "completed":
        return "completed"
    if end_reason in ("no_answer", "busy"):
        return end_reason
    return "failed"


@dataclass(frozen=True)
class NextStep:
    state: str
    next_attempt_at: datetime | None = None


def after_attempt(outcome: str, attempts: int, max_attempts: int, backoff_sec: int, campaign_status: str,
                  now: datetime) -> NextStep:
    """The contact's state after an attempt with ``outcome`` (``attempts`` made so far)."""
    if outcome in RETRYABLE and attempts < max_attempts and campaign_status != "stopped":
        return NextStep("pending", now + timedelta(seconds=backoff_sec))
    return NextStep(outcome)
