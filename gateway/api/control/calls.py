"""``/api/calls``: place calls and control live ones through the call controller.

Placing (``POST /api/calls``)
    * ``destination_number`` and ``caller_id_number`` are normalised to E.164: digits
      without ``+`` are read in the account's region when they are a valid number
      there, else as international digits (the contract's ``5511999999999``); the
      destination must be a valid number, the caller ID only a possible one
      (``gateway.numbering``). ``caller_id_number`` defaults to the account's default
      caller ID (400 if it has none).
    * Media: ``socket_url`` (a ws/wss URL, ``elevenlabs``, ``vapi``, ``elevenlabs&<agent
      id>``, ``vapi&<assistant id>``, stored as given) and/or ``webhook_url`` (the routing
      webhook, and where status callbacks go). With neither, the account's
      ``default_socket_url`` and ``default_webhook_url`` apply; with no default either,
      400. A request that names one of them gets no default for the other.
    * 200 ``{"call_uuid", "status": "queued"}`` once FreeSWITCH has the originate; the
      call then moves through ringing, in-progress, … (``GET /api/calls/{call_uuid}``).
    * 503 when no FreeSWITCH node is connected or the node refused the command.

Controlling (hangup, transfer, redirect)
    404 ``Call not found`` for an unknown call or another account's; 409 for a call that
    has ended; 503 when its FreeSWITCH node is unreachable. Commands are sent, not
    awaited: the answer carries the status the call had when the command went out.

Reading (``GET /api/calls/{call_uuid}``)
    The id is a UUID (the route's converter): any other path under ``/api/calls/`` is
    no route (404 ``Not found``), and ``GET /api/calls/hangup`` (transfer, redirect) is a
    405 from the action's own route, never a read.

Transfer
    To what the account's transfer policy allows (``gateway.calls.transfer_policy``: by
    default any E.164 number, no extension and no SIP URI); anything else is 403 with
    the reason. A destination that cannot be transferred at all is 400.

Native providers
    A bare ``elevenlabs`` or ``vapi`` (``socket_url`` or ``media_server``) talks to the
    agent the settings name: the call's number's, else the account's default, else the
    account's first agent of that provider (``gateway.calls.bot_target``; set with
    ``voicegw accounts set-voice`` / ``numbers set-voice``). With none, or ``vapi``
    without the account's Vapi API key, the answer is 400 saying what to set, and nothing
    is placed or changed.

Redirect
    The media bridge owns swapping the bot. Until the call is answered, redirect only
    stores the new target (``socket_url``), which the bridge uses on answer. On an
    answered call it calls the ``redirect_media(call, media_server)`` hook of the
    ``Gateway`` (set by the media bridge) and then stores the target; without that hook
    the answer is 409 ``media bridge not available`` and nothing changes.
"""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.common import find_call, gateway, normalize_number, place_call, seconds_between
from gateway.api.control import api_status
from gateway.api.control.schemas import (
    ActionResultSchema,
    CallCreatedSchema,
    CallRefSchema,
    CallSchema,
    PlaceCallSchema,
    RedirectSchema,
    TransferSchema,
)
from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import CONTROL
from gateway.calls.bot_target import NotConfigured, call_number, parse_target, provider_target
from gateway.calls.errors import CallError
from gateway.calls.transfer_policy import TransferPolicy, TransferRefused, transfer_destination
from gateway.domain import Surface
from gateway.models import Call, utcnow
from gateway.numbering import InvalidNumber

blp = SurfaceBlueprint(
    CONTROL, "call-control", __name__, url_prefix="/calls",
    description="Live call control: place calls, hang up, transfer, redirect media, read a call.",
)

CALL_NOT_FOUND = "Call not found"
MEDIA_BRIDGE_UNAVAILABLE = "media bridge not available"


def _owned_call(call_uuid: str) -> Call:
    call = find_call(g.auth.account.id, call_uuid)
    if call is None:
        fail(404, CALL_NOT_FOUND)
    return call


def _check_provider(account, value: str | None, number: str | None) -> None:
    """A bare ``elevenlabs``/``vapi`` target needs an agent id from the settings of the
    account or of its ``number`` on the call (and Vapi the account's API key): 400 saying
    which is missing, rather than a call whose bot cannot be had."""
    if not value:
        return
    try:
        target = parse_target(value)
    except ValueError:  # an account default stored malformed: the bridge refuses it at answer, logged
        return
    try:
        provider_target(account, target, number)
    except NotConfigured as exc:
        fail(400, str(exc))


def _command(call: Call, action: str, send) -> dict:
    """Send a controller command for ``call``; CallError becomes the error it names."""
    try:
        send()
    except CallError as exc:
        fail(exc.code, CALL_NOT_FOUND if exc.code == 404 else str(exc))
    return {"call_uuid": call.uuid, "action": action, "status": api_status(call)}


@blp.route("")
class Calls(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(PlaceCallSchema, example={
        "destination_number": "5511999999999", "caller_id_number": "5511888888888",
        "caller_id_name": "My Business", "socket_url": "wss://my-bot-server.com/media"})
    @blp.response(200, CallCreatedSchema)
    @blp.error(400, "A field is invalid by the schema; or, what the schema cannot tell: destination_number is"
                    " not a valid number (its numbering plan) or caller_id_number not a possible one, read in"
                    " the account's region or as international digits; a bare 'elevenlabs' or 'vapi'"
                    " socket_url finds no agent id in the settings of the account or of the caller ID's"
                    " number (or 'vapi' no API key on the account);"
                    " socket_url's or webhook_url's host does not resolve to public addresses only, or a"
                    " default the request relies on (caller ID, socket_url or webhook_url) is not set on"
                    " the account")
    @blp.error(503, "No FreeSWITCH node is connected, or it refused the call")
    def post(self, args):
        """Place a call

        The media goes to ``socket_url``, or the routing ``webhook_url`` decides, or the
        account's defaults apply. Numbers are normalised to E.164 in the account's region.
        """
        account = g.auth.account
        to_number = normalize_number("destination_number", args["destination_number"], account.region)
        caller = args.get("caller_id_number") or account.default_caller_id
        if not caller:
            fail(400, "caller_id_number is required: the account has no default caller ID")
        from_number = normalize_number("caller_id_number", caller, account.region, caller_id=True)
        socket_url, webhook_url = args.get("socket_url"), args.get("webhook_url")
        if socket_url is None and webhook_url is None:
            socket_url, webhook_url = account.default_socket_url, account.default_webhook_url
            if socket_url is None and webhook_url is None:
                fail(400, "socket_url or webhook_url is required: the account has no default for either")
        _check_provider(account, socket_url, from_number)
        call = place_call(
            account, to_number=to_number, from_number=from_number, surface=Surface.CONTROL.value,
            caller_id_name=args.get("caller_id_name") or "", socket_url=socket_url, webhook_url=webhook_url,
        )
        return {"call_uuid": call.uuid, "status": api_status(call)}


@blp.route("/hangup")
class Hangup(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(CallRefSchema, example={"call_uuid": "d3b07384-d113-444c-9e7b-2c6f0a1b3d8e"})
    @blp.response(200, ActionResultSchema)
    @blp.error(404, CALL_NOT_FOUND)
    @blp.error(409, "The call has already ended")
    @blp.error(503, "The call's FreeSWITCH node is unreachable")
    def post(self, args):
        """Hang up a live call"""
        call = _owned_call(args["call_uuid"])
        return _command(call, "hangup", lambda: gateway().controller.hangup(call.uuid))


@blp.route("/transfer")
class Transfer(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(TransferSchema, example={
        "call_uuid": "d3b07384-d113-444c-9e7b-2c6f0a1b3d8e", "destination_number": "+5511999999999"})
    @blp.response(200, ActionResultSchema)
    @blp.error(400, "A field is invalid by the schema; or, what the schema cannot tell: destination_number"
                    " is not a valid number in the account's region (its numbering plan)")
    @blp.error(404, CALL_NOT_FOUND)
    @blp.error(409, "The call has already ended")
    @blp.error(503, "The call's FreeSWITCH node is unreachable")
    def post(self, args):
        """Blind-transfer a live call

        To a PSTN number (normalised to E.164 in the account's region), a 3-5 digit
        extension, or a SIP URI (``sip:user@host``), as far as the account's transfer
        policy allows (403 otherwise).
        """
        call = _owned_call(args["call_uuid"])
        account = g.auth.account
        try:
            destination = TransferPolicy.of(account).check(
                transfer_destination(args["destination_number"], account.region))
        except InvalidNumber as exc:
            fail(400, f"destination_number: {exc}")
        except TransferRefused as exc:
            fail(403, str(exc))
        except ValueError as exc:
            fail(400, str(exc))
        return _command(call, "transfer", lambda: gateway().controller.transfer(call.uuid, destination))


@blp.route("/redirect")
class Redirect(MethodView):
    @blp.requires("calls:write", body=True)
    @blp.arguments(RedirectSchema, example={
        "call_uuid": "d3b07384-d113-444c-9e7b-2c6f0a1b3d8e", "media_server": "elevenlabs"})
    @blp.response(200, ActionResultSchema)
    @blp.error(400, "A field is invalid by the schema; or, what the schema cannot tell: media_server's host"
                    " does not resolve to public addresses only, or a bare 'elevenlabs' or 'vapi' finds no"
                    " agent id in the settings of the account or of the call's number (or 'vapi' no API"
                    " key on the account)")
    @blp.error(404, CALL_NOT_FOUND)
    @blp.error(409, "The call has ended, or the media bridge is not available")
    @blp.error(503, "The call's FreeSWITCH node is unreachable")
    def post(self, args):
        """Switch the media driver of a live call

        ``media_server``: ``elevenlabs`` or a WebSocket URL (also ``vapi`` and the
        ``&<id>`` forms). Before the answer the new target is stored and used on answer.
        """
        call = _owned_call(args["call_uuid"])
        target = args["media_server"]
        if call.status not in ("queued", "ringing", "in_progress"):
            fail(409, f"call has already ended ({call.status})")
        _check_provider(g.auth.account, target, call_number(call.direction, call.from_number, call.to_number))
        if call.status == "in_progress":
            hook = getattr(gateway(), "redirect_media", None)
            if not callable(hook):
                fail(409, MEDIA_BRIDGE_UNAVAILABLE)
            try:
                hook(call, target)
            except CallError as exc:
                fail(exc.code, CALL_NOT_FOUND if exc.code == 404 else str(exc))
        Call.update(socket_url=target, updated_at=utcnow()).where(Call.uuid == call.uuid).execute()
        return {"call_uuid": call.uuid, "action": "redirect", "status": api_status(call)}


# A UUID converter: ``GET /api/calls/hangup`` (and transfer, redirect) must not reach this
# view (it answers 405 from their own routes), and the document says what an id looks like.
@blp.route("/<uuid:call_uuid>")
class CallById(MethodView):
    @blp.requires("calls:read")
    @blp.response(200, CallSchema)
    @blp.error(404, CALL_NOT_FOUND)
    def get(self, call_uuid):
        """Read a call"""
        call = _owned_call(str(call_uuid))
        if call.billsec is not None:
            duration = call.billsec
        elif call.status == "in_progress":
            duration = seconds_between(call.answered_at, utcnow())
        else:
            duration = 0
        return {
            "call_uuid": call.uuid,
            "status": api_status(call),
            "direction": call.direction,
            "destination_number": call.to_number,
            "caller_id_number": call.from_number,
            "caller_id_name": call.caller_id_name,
            "socket_url": call.socket_url,
            "webhook_url": call.webhook_url,
            "hangup_cause": call.hangup_cause,
            "duration": duration,
            "created_at": call.created_at,
            "answered_at": call.answered_at,
            "ended_at": call.ended_at,
        }
