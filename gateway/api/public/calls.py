"""``/api/public/v1/calls``: place a call, list calls, a call's status, its recording.

Placing (``POST /calls``), checked in this order, the first failure answering:

1. the body's fields (400, the schema's sentences; ``type`` first, then ``number``:
   "A valid Indian mobile number is required." for an ``IN`` account, the same naming
   the account's country for another: "A valid mobile number for Brazil is required.");
2. ``audio_blast``/``press1``: ``audio_id`` given (400) and a clip of the account's
   library (400); ``press1``: ``dtmf_map`` (default ``{"1": "connect_agent"}``) valid, and
   an agent destination configured on the account, and allowed by its transfer policy,
   when it uses ``connect_agent`` (400);
3. the caller ID: the account default, or one of its active numbers (400);
4. the wallet covers one pulse at the number's rate (403);
5. ``otp``: the per-number send throttle (429);
6. a FreeSWITCH node takes the call (503 "Could not place the call right now. Please
   retry.").

``audio_blast`` and ``press1`` answer ``unique_id: "run_<n>"``, ``details: "Call queued."``;
``otp`` answers as ``POST /otp/send``.
"""
from __future__ import annotations

from pathlib import Path

from flask import current_app, g, send_file
from flask.views import MethodView

from gateway import recordings
from gateway.api.openapi import UUID_TEXT, path_parameter
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import PUBLIC
from gateway.calls.placement import PlacementFailed
from gateway.calls.scripts import check_dtmf_map
from gateway.calls.transfer_policy import allowed_agent_destination
from gateway.campaigns.audio import find_clip
from gateway.campaigns.runs import RunRequest, run_label, start_run
from gateway.domain import Surface, status_word
from gateway.models import Call
from gateway.otp import service as otp_service

from . import common, envelope, listing
from .otp import otp_answer, send_code
from .schemas import (
    AUDIO_REQUIRED,
    AUDIO_UNKNOWN,
    DTMF_MAP,
    CallListSchema,
    CallStatusSchema,
    ListCallsQuerySchema,
    PublicCallQueuedSchema,
    PublicPlaceCallSchema,
)

NO_AGENT_DESTINATION = "No agent destination is configured for this account. Please contact support."
NO_RECORDING = "No recording is available for this call."

#: ``run_<n>``, or a call's or verification request's UUID; anything else is a 404.
_UNIQUE_ID = path_parameter(
    "unique_id", "The unique_id a call or verification answered with: run_<n>, or a call id or request id",
    {"type": "string", "pattern": rf"^(?:run_[0-9]{{1,19}}|{UUID_TEXT})$"})

blp = SurfaceBlueprint(
    PUBLIC, "public-calls", __name__, url_prefix="/calls",
    description="Place audio blast, press-1 and verification calls; list calls; status and recordings.",
)


@blp.route("")
class Calls(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(PublicPlaceCallSchema, examples={
        "audio_blast": {"value": {"type": "audio_blast", "number": "9812345678", "audio_id": 12,
                                  "reference_id": "order-99213"}},
        "press1": {"value": {"type": "press1", "number": "9812345678", "audio_id": 18,
                             "dtmf_map": {"1": "connect_agent"}, "reference_id": "promo-march"}},
        "otp": {"value": {"type": "otp", "number": "9812345678", "length": 4, "reference_id": "signup-7781"}},
    })
    @blp.response(200, PublicCallQueuedSchema)
    @blp.error(400, "A field is missing or invalid by the schema; or, what the schema cannot tell: number is no"
                    " mobile number of the account's country (its numbering plan), audio_id is not a clip of your"
                    " library, caller_id is not a verified caller number of the account, or the account has no"
                    " caller ID, or no agent destination for a press1 map that uses connect_agent")
    @blp.error(503, "The call could not be placed right now")
    def post(self, args):
        """Place a call

        ``audio_blast`` plays a clip then ends; ``press1`` plays a clip and acts on a key
        press; ``otp`` reads out a verification code.
        """
        account = g.auth.account
        kind = args["type"]
        number = common.recipient(args["number"], account)
        if kind == "otp":
            PUBLIC.auth.require_scope(g.auth, "otp:send")
            return otp_answer(send_code(account, number, args))
        if args.get("audio_id") is None:
            envelope.abort(400, AUDIO_REQUIRED)
        clip = find_clip(account.id, args["audio_id"])
        if clip is None:
            envelope.abort(400, AUDIO_UNKNOWN)
        dtmf_map = None
        if kind == "press1":
            try:
                dtmf_map = check_dtmf_map(args.get("dtmf_map"))
            except ValueError:
                envelope.abort(400, DTMF_MAP)
            if "connect_agent" in dtmf_map.values() and not allowed_agent_destination(account):
                envelope.abort(400, NO_AGENT_DESTINATION)
        from_number = common.caller_number(account, args.get("caller_id"))
        common.require_balance(account, number)
        request_ = RunRequest(kind, number, from_number, clip, dtmf_map, envelope.reference_id())
        try:
            run, _call = start_run(controller(), account, request_)
        except PlacementFailed:
            common.placement_failed()
        return envelope.envelope(common.QUEUED, unique_id=run_label(run.id))

    @blp.requires("calls:read")
    @blp.arguments(ListCallsQuerySchema, location="query")
    @blp.response(200, CallListSchema)
    @blp.error(400, "A parameter is invalid by the schema; or, what the schema cannot tell: number is not a"
                    " phone number (its numbering plan)")
    def get(self, args):
        """List calls

        The account's calls, most recent first, as call objects (closed ``status`` and
        ``end_reason`` sets), filtered and paginated.
        """
        page = listing.page_of(g.auth.account, args)
        return envelope.envelope("OK", **page)


@blp.route("/<unique_id>", parameters=[_UNIQUE_ID])
class CallById(MethodView):
    @blp.requires("calls:read")
    @blp.response(200, CallStatusSchema)
    @blp.error(404, "Call not found.")
    def get(self, unique_id):
        """Get call status

        A call (``run_…`` or call id): ``call_status`` queued, ringing, answered, completed
        or failed. A verification request (its request id): pending, verified, expired or
        failed.
        """
        account = g.auth.account
        sent = envelope.reference_id()
        otp = common.find_verification(account.id, unique_id)
        if otp is not None:
            status = otp_service.status_of(otp, otp_service.call_status_of(otp))
            return envelope.envelope(status, unique_id=otp.id, reference=sent or otp.reference_id,
                                     call_status=status, verified=otp.status == "verified", attempts=otp.attempts,
                                     max_attempts=otp.max_attempts)
        call = common.find_call(account.id, unique_id)
        if call is None:
            envelope.abort(404, common.CALL_NOT_FOUND)
        status = status_word(Surface.PUBLIC, call.status)
        return envelope.envelope(status, unique_id=common.public_id(call), reference=sent or call.reference_id,
                                 call_status=status, duration_sec=common.talk_seconds(call))


@blp.route("/<unique_id>/recording", parameters=[_UNIQUE_ID])
class CallRecording(MethodView):
    @blp.requires("recordings:read")
    @blp.doc(responses={
        "200": {"description": "The recording (audio/wav or audio/ogg)",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}},
                            "audio/ogg": {"schema": {"type": "string", "format": "binary"}}}},
        "206": {"description": "Part of the recording (Range request)",
                "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}},
                            "audio/ogg": {"schema": {"type": "string", "format": "binary"}}}},
    })
    @blp.error(404, "Call not found, or no recording is available for this call")
    @blp.error(416, "The requested range is not satisfiable")
    def get(self, unique_id):
        """Download a call's recording

        The raw audio; HTTP Range requests are answered with 206 Partial Content.
        """
        account = g.auth.account
        call = common.find_call(account.id, unique_id)
        if call is None:
            otp = common.find_verification(account.id, unique_id)
            call = Call.get_or_none(Call.uuid == otp.call_uuid) if otp is not None and otp.call_uuid else None
        if call is None:
            envelope.abort(404, common.CALL_NOT_FOUND)
        recording = recordings.available(call)
        if recording is None:
            envelope.abort(404, NO_RECORDING, unique_id=common.public_id(call))
        name = f"{common.public_id(call)}{Path(recording.path).suffix}"
        response = send_file(recording.path, mimetype=recording.content_type, conditional=True,
                             download_name=name, etag=True, max_age=0)
        response.headers["Accept-Ranges"] = "bytes"
        return response


def controller():
    return current_app.config["GATEWAY"].controller
