"""``/api/agent-api/voice/actions/:id``: poll a campaign action a key requested.

Its status moves ``awaiting_approval`` → ``approved`` / ``rejected`` (with a reason) →
``executed`` or ``failed`` (with a reason); ``history`` lists each step with who took it
and when. Deciding is for people only (``voicegw approvals``, the dashboard): this surface
has no endpoint that approves or rejects, whatever a key's scopes.
"""
from __future__ import annotations

from flask.views import MethodView

from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.campaign_schemas import ID_PATTERN, CampaignActionSchema
from gateway.dialer import approvals
from gateway.models import CampaignAction

blp = SurfaceBlueprint(
    VOICE_ADMIN, "voice-actions", __name__, url_prefix="/actions",
    description="The status and history of requested campaign actions (approved by people only).",
)

ACTION_NOT_FOUND = "Action not found"


@blp.route("/<action_id>", parameters=[path_parameter(
    "action_id", "The action_id a start, pause or stop request returned (404 Action not found for any other"
                 " value)", {"type": "string", "pattern": ID_PATTERN})])
class ActionById(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, CampaignActionSchema)
    @blp.error(404, ACTION_NOT_FOUND)
    def get(self, action_id):
        """Read an action

        Its status and its history: who requested, approved or rejected it, and when.
        """
        action = ownership.one(ownership.readable(CampaignAction), action_id, "Action")
        return {
            "id": str(action.id), "kind": action.kind, "status": action.status, "reason": action.reason,
            "campaign_id": str(action.campaign_id), "requested_by": action.requested_by,
            "created_at": action.created_at, "decided_by": action.decided_by, "decided_at": action.decided_at,
            "executed_at": action.executed_at,
            "history": [{"status": e.status, "by": e.by, "reason": e.reason, "at": e.at}
                        for e in approvals.history(action)],
        }
