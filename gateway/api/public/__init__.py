"""``/api/public/v1``: the public calling API (contract: public-calling-api.txt).

=========================================  ==================  ======================================
endpoint                                   scope               module
=========================================  ==================  ======================================
POST /calls                                calls:write         ``calls`` (``otp`` type: + otp:send)
GET  /calls                                calls:read          ``calls``, ``listing``
GET  /calls/{unique_id}                    calls:read          ``calls``
GET  /calls/{unique_id}/recording          recordings:read     ``calls``
POST /otp/send                             otp:send            ``otp``
POST /otp/verify                           otp:verify          ``otp``
GET  /campaigns                            campaigns:read      ``campaigns``
POST /campaigns/{id}/trigger               campaigns:trigger   ``campaigns``
GET  /account                              account:read        ``account``
=========================================  ==================  ======================================

Authentication (``auth``): the pk/sk pair in ``x-api-key``/``x-api-secret``, Basic, or
``secret`` in the body. Every answer is the envelope (``envelope``); every counted
request gets ``RateLimit-*`` headers (``ratelimit``, shared by all processes through the
database).

:func:`register` also installs, once per controller, what makes these calls run: the
playback scripts (``gateway.calls.scripts.ScriptRunner``), the wallet's billing hook
(``gateway.billing.ledger.billing_hook``, inside the transaction of each final status)
and the list's day counts hook (``rollups.rollup_hook``).
"""
from __future__ import annotations

from gateway.api import errors
from gateway.billing.ledger import billing_hook
from gateway.calls.scripts import Script, ScriptRunner
from gateway.campaigns import runs
from gateway.models import Call, database
from gateway.otp import service as otp_service

from . import envelope
from .rollups import rollup_hook


def script_for(controller, call_uuid: str) -> Script | None:
    """The playback script of an answered call of this surface (None for other calls)."""
    call = Call.get_or_none(Call.uuid == call_uuid)
    if call is None or call.surface != runs.SURFACE:
        return None
    if call.campaign_id is not None:
        return runs.script_for(controller, call)
    return otp_service.script_for(controller, call)


def install(controller) -> ScriptRunner:
    """Wire the scripts and billing into ``controller`` (idempotent)."""
    runner = getattr(controller, "public_scripts", None)
    if runner is None:
        runner = ScriptRunner(controller, lambda call_uuid: script_for(controller, call_uuid), database)
        controller.listeners.append(runner.on_transition)
        controller.listeners.append(otp_service.SPEECH.on_transition)
        controller.public_scripts = runner
    for hook in (billing_hook, rollup_hook):
        if hook not in controller.transaction_hooks:
            controller.transaction_hooks.append(hook)
    return runner


def register(api, gateway=None) -> None:
    from .account import blp as account_blp
    from .blueprint import SECURITY_SCHEMES, add_ratelimit_headers
    from .calls import blp as calls_blp
    from .campaigns import blp as campaigns_blp
    from .otp import blp as otp_blp

    errors.register_renderer(envelope.PREFIX, envelope.render_error)
    for name, scheme in SECURITY_SCHEMES.items():
        if name not in api.spec.components.security_schemes:
            api.spec.components.security_scheme(name, scheme)
    for blueprint in (calls_blp, otp_blp, campaigns_blp, account_blp):
        api.register_blueprint(blueprint)
    app = api._app
    if add_ratelimit_headers not in app.after_request_funcs.setdefault(None, []):
        app.after_request(add_ratelimit_headers)
    if gateway is not None:
        install(gateway.controller)
