"""``/api/public/v1/otp``: send a voice verification code, verify it.

The rules (throttle, TTL, attempts, the per-number guess cap, every answer's text) are in
``gateway.otp.service``. Every answer of verify carries ``verified`` (true or false), errors
included; a wrong code's answer also carries ``attempts_left``, and the guess cap's 429
a ``Retry-After`` header.
"""
from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView

from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import PUBLIC
from gateway.calls.placement import PlacementFailed
from gateway.models import OtpRequest
from gateway.otp import codes
from gateway.otp import service as otp_service

from . import common, envelope
from .schemas import CODE, OtpSendSchema, OtpSentSchema, OtpVerifySchema, VerifiedSchema

blp = SurfaceBlueprint(
    PUBLIC, "public-otp", __name__, url_prefix="/otp",
    description="Read a verification code out in a voice call, and verify it.",
)


def send_code(account, number: str, args: dict) -> OtpRequest:
    """Checks the rest of a send (caller ID, wallet), then stores and places it."""
    code = args.get("code")
    if code is not None and not codes.is_code(code):
        envelope.abort(400, CODE)
    from_number = common.caller_number(account, args.get("caller_id"))
    common.require_balance(account, number)
    request = otp_service.SendRequest(
        to_number=number, from_number=from_number, code=code,
        length=args.get("length") or codes.DEFAULT_LENGTH,
        ttl=args.get("ttl") or otp_service.DEFAULT_TTL,
        max_attempts=args.get("max_attempts") or otp_service.DEFAULT_MAX_ATTEMPTS,
        message=args.get("message"), reference_id=envelope.reference_id(),
    )
    try:
        return otp_service.send(current_app.config["GATEWAY"].controller, account, request)
    except otp_service.Throttled:
        envelope.abort(429, otp_service.THROTTLED)
    except PlacementFailed:
        common.placement_failed()


def otp_answer(otp: OtpRequest) -> dict:
    ttl = int(round((otp.expires_at - otp.created_at).total_seconds()))
    return envelope.envelope(common.OTP_QUEUED, unique_id=otp.id, request_id=otp.id, expires_in_sec=ttl)


@blp.route("/send")
class OtpSend(MethodView):
    @blp.requires("otp:send", body=True)
    @blp.arguments(OtpSendSchema, examples={
        "generated": {"value": {"number": "9812345678", "length": 4, "ttl": 600, "reference_id": "signup-7781"}},
        "own code": {"value": {"number": "+919812345678", "code": "482913",
                               "message": "Your Acme login code is {code}."}},
    })
    @blp.response(200, OtpSentSchema)
    @blp.error(400, "A field is missing or invalid by the schema; or, what the schema cannot tell: number is no"
                    " mobile number of the account's country (its numbering plan), caller_id is not a verified"
                    " caller number of the account, or the account has no caller ID")
    @blp.error(503, "The call could not be placed right now")
    def post(self, args):
        """Send a verification code

        Places a call that reads the code digit by digit, twice, then ends.
        """
        account = g.auth.account
        number = common.recipient(args["number"], account)
        return otp_answer(send_code(account, number, args))


@blp.route("/verify")
class OtpVerify(MethodView):
    @blp.requires("otp:verify", body=True, error_extra={"verified": False})
    @blp.arguments(OtpVerifySchema, examples={
        "by request": {"value": {"request_id": "5f3c8b2a-1d4e-4a9c-9e7b-2c6f0a1b3d8e", "code": "1234"}},
        "by number": {"value": {"number": "9812345678", "code": "1234"}},
    })
    @blp.response(200, VerifiedSchema)
    @blp.error(400, "A field is missing or invalid by the schema; or, what the schema cannot tell: no such"
                    " request (Verification failed.), the code has expired, has already been used or has had"
                    " too many incorrect attempts, or number is not a mobile number of the account's country")
    @blp.error(401, "Incorrect code: verified false, with attempts_left")
    def post(self, args):
        """Verify a code

        Identify the request by ``request_id`` or by the recipient's ``number`` (its most
        recent pending request). Every attempt counts, right or wrong. After 20 wrong codes
        for one number within 24 hours (across all its requests), no code is checked for it
        until the oldest of them is 24 hours old: 429, with Retry-After.
        """
        account = g.auth.account
        number = args.get("number")
        if number and not args.get("request_id") and args.get("code"):
            number = common.recipient(number, account)
        outcome = otp_service.verify(account, args.get("code"), request_id=args.get("request_id"), number=number)
        otp = outcome.request
        unique_id = otp.id if otp is not None else None
        reference = envelope.reference_id() or (otp.reference_id if otp is not None else None)
        if outcome.http != 200:
            extra = {"verified": False}
            if outcome.attempts_left is not None:
                extra["attempts_left"] = outcome.attempts_left
            g.public_reference_id = reference
            headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else None
            envelope.abort(outcome.http, outcome.details, unique_id=unique_id, headers=headers, **extra)
        return envelope.envelope(outcome.details, unique_id=unique_id, reference=reference, request_id=otp.id,
                                 verified=True)
