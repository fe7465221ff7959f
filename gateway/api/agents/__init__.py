"""``/v1``: agent calls (contracts: agent-calls-minimal.txt and agent-calls-events.txt).

The two documents describe one surface; it accepts both spellings and answers with the
superset of both::

    POST /v1/calls             {"phone" | "phone_number", "agent" | "agent_name" | "agent_id",
                                "custom_args"?, "contact_name"?}
                               → 200 {"call_id", "status": "registered"}
    GET  /v1/calls/{call_id}   the call's record (status, transcript, analysis, …)
    GET  /v1/agents            ?limit&offset → {"agents", "total", "limit", "offset"}

Authentication: ``Authorization: Bearer …`` or ``X-API-KEY: …``; scopes ``calls:write``
(place), ``calls:read`` (read) and ``agents:read`` (list). A key that belongs to one
agent (``owner_agent``) sees and uses that agent alone. Errors are ``{"error": "…"}``.

Status words: ``registered`` (just placed) and ``completed`` come from the contracts;
the others are ours, in the same snake_case (``gateway.domain.STATUS_WORDS``).
"""

from __future__ import annotations

from gateway.domain import Surface, status_word
from gateway.models import Call


def v1_status(call: Call) -> str:
    """The call's status in this surface's words."""
    return status_word(Surface.AGENTS, call.status, call.end_reason)

