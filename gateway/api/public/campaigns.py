"""``/api/public/v1/campaigns``: list saved campaigns, trigger one for a number.

The trigger's refusals, their order and texts, are in ``gateway.campaigns.saved``. A
triggered campaign places a run with the campaign's clip, ``dtmf_map`` and caller ID.
"""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import PUBLIC
from gateway.calls.placement import PlacementFailed
from gateway.calls.scripts import check_dtmf_map
from gateway.calls.transfer_policy import allowed_agent_destination
from gateway.campaigns import saved
from gateway.campaigns.runs import RunRequest, run_label, start_run

from . import common, envelope
from .calls import NO_AGENT_DESTINATION
from .schemas import CampaignListSchema, EnvelopeSchema, TriggerSchema

blp = SurfaceBlueprint(
    PUBLIC, "public-campaigns", __name__, url_prefix="/campaigns",
    description="The account's saved campaigns; trigger an audio blast or press-1 campaign for one number.",
)


@blp.route("")
class Campaigns(MethodView):
    @blp.requires("campaigns:read")
    @blp.response(200, CampaignListSchema)
    def get(self):
        """List campaigns

        The campaigns of the account that the API knows: ``audio_blast`` and ``press1``
        (trigger them), ``otp`` (delivered with the OTP endpoints).
        """
        campaigns = saved.listed(g.auth.account.id)
        data = [{"id": c.id, "name": c.name, "type": c.type, "status": c.status} for c in campaigns]
        return envelope.envelope("OK", data=data)


@blp.route("/<campaign_id>/trigger", parameters=[path_parameter(
    "campaign_id", "The numeric id of the campaign (404 Campaign not found. for any other value)",
    {"type": "string", "pattern": r"^[0-9]{1,18}$"})])
class TriggerCampaign(MethodView):
    @blp.requires("campaigns:trigger", body=True)
    @blp.arguments(TriggerSchema, examples={
        "trigger": {"value": {"number": "9812345678", "reference_id": "lead-5567"}},
    })
    @blp.response(200, EnvelopeSchema)
    @blp.error(400, "A field is missing or invalid by the schema; or, what the schema cannot tell: the"
                    " campaign is a verification-code one, cannot be triggered for one number, has no audio"
                    " or is not active; number is not a mobile number of the account's country (its numbering"
                    " plan); or the campaign uses connect_agent and the account has no agent destination")
    @blp.error(404, saved.NOT_FOUND)
    @blp.error(503, "The call could not be placed right now")
    def post(self, args, campaign_id):
        """Trigger a saved campaign

        Runs an audio blast or press-1 campaign for one number, with the campaign's own
        audio and settings.
        """
        account = g.auth.account
        try:
            campaign, clip = saved.triggerable(account.id, campaign_id)
        except saved.TriggerRefused as refused:
            envelope.abort(refused.status, refused.details)
        number = common.recipient(args.get("number"), account)
        dtmf_map = None
        if campaign.type == "press1":  # checked when saved; the account's destination may have changed
            dtmf_map = check_dtmf_map(campaign.dtmf_map or None)
            if "connect_agent" in dtmf_map.values() and not allowed_agent_destination(account):
                envelope.abort(400, NO_AGENT_DESTINATION)
        from_number = common.caller_number(account, campaign.caller_id)
        common.require_balance(account, number)
        request_ = RunRequest(campaign.type, number, from_number, clip, dtmf_map, envelope.reference_id(),
                              campaign=campaign)
        try:
            run, _call = start_run(current_app.config["GATEWAY"].controller, account, request_)
        except PlacementFailed:
            common.placement_failed()
        return envelope.envelope(common.QUEUED, unique_id=run_label(run.id))
