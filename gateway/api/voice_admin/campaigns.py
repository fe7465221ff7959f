"""``/api/agent-api/voice/campaigns``: campaigns, their contacts, and requests to start,
pause or stop them, which wait for a person's approval (``gateway.dialer.approvals``).

=============================  ========================  ==================================
endpoint                       scope                     answer
=============================  ========================  ==================================
``GET /campaigns``             ``voice:read``            the campaigns the key may read
``GET /campaigns/:id``         ``voice:read``            one, with its contacts' counts
``POST /campaigns``            ``voice:campaign:write``  201, the campaign (``draft``)
``POST /campaigns/:id/contacts``  ``voice:campaign:write``  the load report
``GET /campaigns/:id/contacts``   ``voice:read``         contacts, by ``state``
``POST /campaigns/:id/start``  ``voice:campaign:execute``  202, the action awaiting approval
(and ``pause``, ``stop``)
=============================  ========================  ==================================

What a key may read and change is ``ownership``'s rule; another owner's or account's
campaign is a 404 ``Campaign not found``. The campaign's agent must be one the key may
use: for a key with an owner agent, that agent (or one it created).
"""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.errors import fail
from gateway.api.openapi import path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin import ownership
from gateway.api.voice_admin.campaign_schemas import (
    ID_PATTERN,
    CampaignActionRequestedSchema,
    VoiceCampaignListSchema,
    VoiceCampaignSchema,
    CampaignContactListArgsSchema,
    CampaignContactListSchema,
    CreateVoiceCampaignSchema,
    LoadCampaignContactsSchema,
    CampaignContactsReportSchema,
    CampaignPageArgsSchema,
)
from gateway.dialer import approvals, campaigns, contacts
from gateway.models import Agent, CampaignContact, VoiceCampaign, database
from gateway.numbering import InvalidNumber

blp = SurfaceBlueprint(
    VOICE_ADMIN, "voice-campaigns", __name__, url_prefix="/campaigns",
    description="Outbound campaigns of a voice agent: contacts, and start/pause/stop requests that a person"
                " approves before anything is dialled.",
)

CAMPAIGN_NOT_FOUND = "Campaign not found"
AGENT_NOT_FOUND = "Agent not found"
CLOSED = "The campaign is {status}; it takes no more contacts"
#: 5,000 contacts with names and variables do not fit the surface's 64 KiB.
MAX_CONTACTS_BODY_BYTES = 8 * 1024 * 1024
_ID = path_parameter("campaign_id", "The campaign's id (404 Campaign not found for any other value)",
                     {"type": "string", "pattern": ID_PATTERN})


def campaign_doc(campaign: VoiceCampaign) -> dict:
    return {
        "id": str(campaign.id),
        "name": campaign.name,
        "agent_id": str(campaign.agent_id),
        "owner_agent_id": str(campaign.owner_agent_id) if campaign.owner_agent_id is not None else None,
        "from_number": campaign.from_number,
        "calls_per_second": campaign.calls_per_second,
        "max_concurrent": campaign.max_concurrent,
        "max_attempts": campaign.max_attempts,
        "retry_backoff_seconds": campaign.retry_backoff_sec,
        "calling_window": {"days": list(campaign.window_days), "start": campaign.window_start,
                           "end": campaign.window_end},
        "timezone": campaign.timezone,
        "status": campaign.status,
        "status_reason": campaign.status_reason,
        "contacts": campaigns.counts(campaign.id),
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
        "started_at": campaign.started_at,
        "completed_at": campaign.completed_at,
    }


def _usable_agent(agent_id: str) -> Agent:
    """An active agent of the account that this key may give calls to."""
    agent = Agent.get_or_none((Agent.id == int(agent_id)) & (Agent.account == g.auth.account.id)
                              & (Agent.active == True)) if len(agent_id) < 10 else None  # noqa: E712
    owner = g.auth.owner_agent_id
    if agent is not None and owner is not None and agent.id != owner \
            and getattr(agent, "owner_agent_id", None) != owner:
        agent = None
    if agent is None:
        fail(404, AGENT_NOT_FOUND)
    return agent


@blp.route("")
class Campaigns(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(CampaignPageArgsSchema, location="query")
    @blp.response(200, VoiceCampaignListSchema)
    def get(self, args):
        """List campaigns

        The campaigns this key may read (its owner's, or the account's with
        ``voice:read:all``), oldest first.
        """
        query = ownership.readable(VoiceCampaign)
        total = query.count()
        page = query.order_by(VoiceCampaign.id).limit(args["limit"]).offset(args["offset"])
        return {"campaigns": [campaign_doc(c) for c in page], "total": total, "limit": args["limit"],
                "offset": args["offset"]}

    @blp.requires("voice:campaign:write", body=True)
    @blp.arguments(CreateVoiceCampaignSchema, examples={"campaign": {"value": {
        "name": "Renewals", "agent_id": "1", "calls_per_second": 2, "max_concurrent": 10, "max_attempts": 3,
        "retry_backoff_seconds": 900, "calling_window": {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "20:00"},
        "timezone": "America/New_York"}}})
    @blp.response(201, VoiceCampaignSchema)
    @blp.error(400, "A field is invalid by the schema; or, what the schema cannot tell: the name is blank,"
                    " from_number is not a valid number in the account's region (or the account has no caller"
                    " ID to default to), the window's start equals its end, or timezone is not an IANA zone")
    @blp.error(404, AGENT_NOT_FOUND)
    def post(self, args):
        """Create a campaign

        The campaign starts as ``draft``: load its contacts, then request a start, which a
        person approves before the first call.
        """
        account = g.auth.account
        agent = _usable_agent(args["agent_id"])
        try:
            settings = campaigns.clean_settings(
                account, agent, name=args["name"], from_number=args.get("from_number"),
                window=args.get("calling_window"), timezone=args.get("timezone"),
                calls_per_second=args.get("calls_per_second"), max_concurrent=args.get("max_concurrent"),
                max_attempts=args.get("max_attempts"), retry_backoff_seconds=args.get("retry_backoff_seconds"))
        except InvalidNumber as exc:
            fail(400, f"from_number: {exc}")
        except ValueError as exc:
            fail(400, str(exc))
        campaign = campaigns.create(account, settings, ownership.owner_of_new_rows())
        return campaign_doc(VoiceCampaign.get_by_id(campaign.id))


@blp.route("/<campaign_id>", parameters=[_ID])
class CampaignById(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, VoiceCampaignSchema)
    @blp.error(404, CAMPAIGN_NOT_FOUND)
    def get(self, campaign_id):
        """Read a campaign"""
        return campaign_doc(ownership.one(ownership.readable(VoiceCampaign), campaign_id, "Campaign"))


@blp.route("/<campaign_id>/contacts", parameters=[_ID])
class CampaignContacts(MethodView):
    @blp.requires("voice:read")
    @blp.arguments(CampaignContactListArgsSchema, location="query")
    @blp.response(200, CampaignContactListSchema)
    @blp.error(404, CAMPAIGN_NOT_FOUND)
    def get(self, args, campaign_id):
        """List a campaign's contacts

        In loading order, optionally only those in one ``state``.
        """
        campaign = ownership.one(ownership.readable(VoiceCampaign), campaign_id, "Campaign")
        query = CampaignContact.select().where(CampaignContact.campaign == campaign.id)
        if args.get("state"):
            query = query.where(CampaignContact.state == args["state"])
        total = query.count()
        page = query.order_by(CampaignContact.id).limit(args["limit"]).offset(args["offset"])
        return {"contacts": [_contact_doc(c) for c in page], "total": total, "limit": args["limit"],
                "offset": args["offset"]}

    @blp.requires("voice:campaign:write", body=True, max_body_bytes=MAX_CONTACTS_BODY_BYTES)
    @blp.arguments(LoadCampaignContactsSchema, examples={"contacts": {"value": {"contacts": [
        {"phone": "+14155550123", "name": "Ada", "variables": {"plan": "gold"}},
        {"phone": "(212) 555-0188"}]}}})
    @blp.response(200, CampaignContactsReportSchema)
    @blp.error(400, "A field is invalid by the schema (more than 5,000 contacts among them); rows that fail"
                    " their own checks are reported in rejected, not refused")
    @blp.error(404, CAMPAIGN_NOT_FOUND)
    @blp.error(409, "The campaign is stopped or completed")
    def post(self, args, campaign_id):
        """Load contacts

        Up to 5,000 per request. Each number is normalised to E.164 in the account's
        region; a row that fails is reported with its index and reason while the others
        load; numbers already in the campaign are skipped and counted; numbers on the
        account's do-not-call list are loaded as ``do_not_call`` and never dialled.
        """
        campaign = ownership.one(ownership.writable(VoiceCampaign), campaign_id, "Campaign")
        if campaign.status in ("stopped", "completed"):
            fail(409, CLOSED.format(status=campaign.status))
        with database.atomic():
            report = contacts.load(g.auth.account, campaign, args["contacts"])
        return report.as_dict()


def _contact_doc(contact: CampaignContact) -> dict:
    return {"id": str(contact.id), "phone": contact.phone, "name": contact.name,
            "variables": contact.variables or {}, "timezone": contact.timezone, "state": contact.state,
            "attempts": contact.attempts, "last_call_id": contact.last_call_uuid,
            "last_outcome": contact.last_outcome,
            "next_attempt_at": contact.next_attempt_at if contact.state == "pending" else None}


def _action_view(kind: str):
    class RequestAction(MethodView):
        @blp.requires("voice:campaign:execute")
        @blp.response(202, CampaignActionRequestedSchema)
        @blp.error(404, CAMPAIGN_NOT_FOUND)
        def post(self, campaign_id):
            campaign = ownership.one(ownership.writable(VoiceCampaign), campaign_id, "Campaign")
            action = approvals.request(campaign, kind, g.auth.api_key)
            return {"action_id": str(action.id), "kind": kind, "status": action.status,
                    "campaign_id": str(campaign.id)}

    RequestAction.post.__doc__ = (
        f"Request a {kind}\n\nQueues a {kind} of the campaign for a person's approval (``awaiting_approval``);"
        f" nothing changes until it is approved. Poll ``GET /actions/{{action_id}}``.")
    RequestAction.__name__ = f"Request{kind.capitalize()}"
    return RequestAction


for _kind in ("start", "pause", "stop"):
    blp.route(f"/<campaign_id>/{_kind}", parameters=[_ID])(_action_view(_kind))
