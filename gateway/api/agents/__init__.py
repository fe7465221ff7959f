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

Status vocabulary: ``registered`` (just placed) and ``completed`` come from the
contracts; the others are ours, in the same snake_case:

===========  ============  ============
status       end_reason    /v1 status
===========  ============  ============
queued                     registered
ringing                    ringing
in_progress                in_progress
completed                  completed
missed       no_answer     no_answer
missed       canceled      canceled
failed       busy          busy
failed       rejected      busy
failed       canceled      canceled
failed       (other)       failed
===========  ============  ============
"""

from __future__ import annotations

from gateway.calls.states import StatusWords
from gateway.models import Call

_WORDS = StatusWords(
    live={"queued": "registered", "ringing": "ringing", "in_progress": "in_progress", "completed": "completed"},
    ended={"no_answer": "no_answer", "canceled": "canceled", "busy": "busy", "rejected": "busy"},
    missed="no_answer",
)


def v1_status(call: Call) -> str:
    """The call's status in this surface's vocabulary (the table above)."""
    return _WORDS.of(call.status, call.end_reason)


def register(api) -> None:
    from gateway.api.agents.agents import blp as agents_blp
    from gateway.api.agents.calls import blp as calls_blp

    api.register_blueprint(calls_blp)
    api.register_blueprint(agents_blp)
