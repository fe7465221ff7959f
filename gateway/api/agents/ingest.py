"""``POST /v1/webhooks/call-completed``: a provider's final result for a call.

Body (agent-call contract, minimal)::

    {"event_type": "call.completed", "provider_call_id": "…", "status": "completed",
     "transcript": "agent: Hello\\nuser: Hi", "duration": 120}

``analysis`` (object) and ``recording_url`` (string) may be added. ``provider_call_id``
is the provider's id for the call (ElevenLabs' ``conversation_id``, Vapi's call id) or,
from a plain-WebSocket agent, the gateway's call uuid (docs/webhooks.md). The request
must be signed with the webhook secret of the account that owns the call, the way the
gateway signs its own webhooks (``gateway.webhooks.provider.signed_by``); during a secret
rotation's overlap the previous secret is accepted too. The signature is checked before
anything is said about the call (``gateway.api.auth.ProviderSignature``). The report's
``duration`` is kept as given, beside the call's own (``provider_duration_seconds`` in
``GET /v1/calls/{id}``).

Answers (errors as ``{"error": "…"}``):

====  ==========================================================================
200   ``{"received": true, "call_id": "<uuid>", "duplicate": false}``; a repeated
      report for the same provider_call_id: the same with ``"duplicate": true``
      and nothing changed
400   before the signature, what makes the body unreadable: ``Invalid JSON body`` /
      ``The body is nested too deeply`` (deeper than ``gateway.peer_json.MAX_DEPTH``) /
      ``The body must be a JSON object`` / ``The body contains a NUL character`` (or
      ``an unpaired surrogate``) / ``provider_call_id is required``; after it, a
      field's message (``gateway.webhooks.provider.clean_completion``)
401   ``Invalid signature``: a missing or wrong signature, or a report naming no
      known call
413   the body is larger than 1 MiB
====  ==========================================================================
"""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.agents.schemas import ProviderReportSchema, ReportReceivedSchema
from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import INGEST
from gateway.models.db import connection_scope
from gateway.webhooks.provider import clean_completion, record_completion

blp = SurfaceBlueprint(
    INGEST, "provider-ingest", __name__,
    description="A provider's final result for a call: transcript, duration, analysis.",
)

_EXAMPLE = {"event_type": "call.completed", "provider_call_id": "internal-provider-reference",
            "status": "completed", "transcript": "agent: Hello\nuser: Hi", "duration": 120}


@blp.route("/call-completed")
class CallCompleted(MethodView):
    @blp.requires(None)
    @blp.doc(requestBody={"required": True, "content": {"application/json": {
        "schema": ProviderReportSchema, "example": _EXAMPLE}}})
    @blp.response(200, ReportReceivedSchema)
    @blp.error(400, "The body is not a JSON object (or is nested too deeply), contains a NUL character or an"
                    " unpaired surrogate, or has no provider_call_id; once the signature is checked, a field"
                    " is invalid")
    @blp.error(404, "Call not found")
    @blp.error(413, "The body is larger than 1 MiB")
    def post(self):
        """Report a call's result

        Saved once per provider_call_id: the transcript, the talk time, the analysis and the
        recording URL; a call still live ends with the provider's status.
        """
        report = g.auth
        try:
            completion = clean_completion(report.payload)
        except ValueError as exc:
            fail(400, str(exc))
        with connection_scope():
            try:
                call, duplicate = record_completion(completion, report.payload)
            except LookupError:
                fail(404, "Call not found")
        return {"received": True, "call_id": call.uuid, "duplicate": duplicate}
