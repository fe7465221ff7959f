"""Native AI providers' settings: the agent a bare ``elevenlabs``/``vapi`` target talks to
(the call's number's, the account's default, the account's first agent of that provider),
what a call or a redirect gets when none is configured, and the key the connector is
given; the decisions on both databases, then end to end through the bridge."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import gevent
import pytest

from gateway.calls.bot_target import BotTargets, NotConfigured, Target, call_number
from gateway.calls.controller import CallError
from gateway.calls.states import FINAL, Status
from gateway.config import MediaSettings
from gateway.models import Account, Agent, Call, CallEvent, PhoneNumber
from media_support import MediaRig
from provider_standins import ElevenLabsStandIn

OURS = "+14155550100"  # the account's number
THEIRS = "+14155550199"  # the far end


def decide(call, request_route=None):
    logged = []
    targets = BotTargets(request_route or (lambda **kw: None), "SERVICE_UNAVAILABLE",
                         lambda call_uuid, detail: logged.append(detail))
    return targets.decide(call, Account.get_by_id(call.account_id))[0]


def a_call(account, socket_url=None, direction="outbound", **fields):
    ours, theirs = (OURS, THEIRS) if direction == "outbound" else (THEIRS, OURS)
    return Call.create(uuid=str(uuid.uuid4()), account=account, direction=direction, from_number=ours,
                       to_number=theirs, node="n1", socket_url=socket_url, **fields)


@pytest.fixture
def account(database):
    return Account.create(name="acme", vapi_api_key="vapi-key")


def test_the_agent_id_comes_from_the_number_then_the_account_then_its_agents(account):
    call = a_call(account, "elevenlabs")
    with pytest.raises(NotConfigured) as refused:
        decide(call)
    assert refused.value.reason == "media_target_not_configured"
    assert str(refused.value).startswith("no ElevenLabs agent id is configured for this account;")
    Agent.create(account=account, key="first", name="First", driver="elevenlabs", driver_ref="agent_of_agents")
    assert decide(call) == Target("elevenlabs", "agent_of_agents")
    Account.update(elevenlabs_agent_id="agent_of_account").where(Account.id == account.id).execute()
    assert decide(call) == Target("elevenlabs", "agent_of_account")
    number = PhoneNumber.create(account=account, e164=OURS, route="bot", socket_url="elevenlabs",
                                elevenlabs_agent_id="agent_of_number")
    assert decide(call) == Target("elevenlabs", "agent_of_number")  # the caller ID's number
    # An id in the target itself wins over every setting.
    assert decide(a_call(account, "elevenlabs&inline")) == Target("elevenlabs", "inline")
    # An inactive number's settings do not apply; nor do another account's.
    PhoneNumber.update(active=False).where(PhoneNumber.id == number.id).execute()
    assert decide(call) == Target("elevenlabs", "agent_of_account")
    other = Account.create(name="globex", vapi_api_key="k")
    PhoneNumber.update(active=True, account=other).where(PhoneNumber.id == number.id).execute()
    assert decide(call) == Target("elevenlabs", "agent_of_account")


def test_an_inbound_call_takes_its_numbers_provider_and_agent(account):
    PhoneNumber.create(account=account, e164=OURS, route="bot", socket_url="vapi", vapi_assistant_id="asst_did")
    Account.update(vapi_assistant_id="asst_account").where(Account.id == account.id).execute()
    call = a_call(account, direction="inbound")
    assert call_number(call.direction, call.from_number, call.to_number) == OURS
    assert decide(call) == Target("vapi", "asst_did", "number")
    # Without the account's Vapi key there is no calling Vapi at all.
    Account.update(vapi_api_key=None).where(Account.id == account.id).execute()
    with pytest.raises(NotConfigured, match="no Vapi API key is configured for this account"):
        decide(call)


def test_a_routing_webhooks_bare_provider_is_resolved_too(account):
    Account.update(vapi_assistant_id="asst_account").where(Account.id == account.id).execute()
    route = lambda **kw: SimpleNamespace(action="connect", socket_url="vapi", timeout=None, reason=None)  # noqa: E731
    call = a_call(account, webhook_url="https://customer.example/route")
    assert decide(call, route) == Target("vapi", "asst_account", "routing_webhook")


# -- end to end --------------------------------------------------------------------------

@pytest.fixture
def rig(database, sim, loopback_allowed):
    rigs = []

    def make(**kwargs):
        made = MediaRig(sim, **kwargs)
        rigs.append(made)
        return made
    yield make
    for made in rigs:
        made.stop()


def media_log(call_uuid):
    return [e.detail for e in CallEvent.select().where(CallEvent.call == call_uuid, CallEvent.kind == "media")
            .order_by(CallEvent.seq)]


def wait_log(call_uuid, event, timeout=5.0):
    with gevent.Timeout(timeout, TimeoutError(f"no {event} in the call log")):
        while True:
            found = [d for d in media_log(call_uuid) if d.get("event") == event]
            if found:
                return found
            gevent.sleep(0.02)  # the log is written by the controller's worker


def test_the_connector_gets_the_configured_agent_and_key_and_a_redirect_says_what_is_missing(rig, sim):
    eleven = ElevenLabsStandIn(api_key="xi-configured-key", agents={"agent_cfg": True, "agent_did": True})
    try:
        account = Account.create(name="acme", elevenlabs_api_key="xi-configured-key",
                                 elevenlabs_agent_id="agent_cfg")
        r = rig(settings=MediaSettings(playback="stream", elevenlabs_url=eleven.url))
        call = r.controller.originate(account.id, THEIRS, OURS, socket_url="elevenlabs")
        r.controller.wait_status(call.uuid, [Status.IN_PROGRESS], 5)
        eleven.peer()
        eleven.client_data()  # a private agent: reached through the signed URL its key fetched
        assert [(q["agent_id"], q["headers"]["xi-api-key"]) for q in eleven.signed_requests] == [
            ("agent_cfg", "xi-configured-key")]
        assert wait_log(call.uuid, "bot_connected")[0]["target"].startswith("elevenlabs agent agent_cfg")
        # No Vapi assistant anywhere: the redirect is refused with what to set, and the
        # call keeps its bot.
        with pytest.raises(CallError) as refused:
            r.media.redirect(call.uuid, "vapi")
        assert refused.value.code == 400
        assert str(refused.value).startswith("no Vapi assistant id is configured for this account;")
        assert r.media.sessions[call.uuid].target == Target("elevenlabs", "agent_cfg")
        # The caller ID's number has its own agent: a redirect to bare elevenlabs takes it.
        PhoneNumber.create(account=account, e164=OURS, route="bot", socket_url="elevenlabs",
                           elevenlabs_agent_id="agent_did")
        assert r.media.redirect(call.uuid, "elevenlabs")["media_server"] == "elevenlabs&agent_did"
        assert eleven.signed_requests[-1]["agent_id"] == "agent_did"
        assert Call.get_by_id(call.uuid).status == "in_progress"
        r.controller.hangup(call.uuid)
        r.controller.wait_status(call.uuid, FINAL, 5)
    finally:
        eleven.stop()


def test_a_call_whose_provider_is_not_configured_ends_with_the_reason_logged(rig, sim):
    account = Account.create(name="acme")
    r = rig()
    call = r.controller.originate(account.id, THEIRS, OURS, socket_url="elevenlabs")
    r.controller.wait_status(call.uuid, FINAL, 5)
    refused = wait_log(call.uuid, "no_bot")[0]
    assert refused["reason"] == "media_target_not_configured"
    assert refused["error"].startswith("no ElevenLabs agent id is configured for this account;")
    assert Call.get_by_id(call.uuid).hangup_cause == "SERVICE_UNAVAILABLE"
