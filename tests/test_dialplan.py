"""The shipped dialplan, executed by the simulator's dialplan engine, and the engine itself.

The first part runs calls through ``dialplan/`` exactly as installed (with the global variables
of ``freeswitch-conf/vars.xml``): DIDs routed to a bot, an agent, a webhook, the gateway's own
table, unknown numbers; transfers to PSTN numbers, extensions and SIP URIs. The second checks
that every name the gateway uses (gateway/dialplan_names.py) exists in that XML. The third pins
the engine's FreeSWITCH semantics on small dialplans written for the purpose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import dialplan_names as names
from gateway.simulator.dialplan import (
    Dialplan,
    DialplanError,
    Execution,
    SimulatorRouter,
    StopReason,
    expand_variables,
    load_dialplan,
    load_vars,
    make_router,
    preprocess,
)
from gateway.simulator.causes import str2cause
from gateway.simulator.outcomes import Outcome
from gateway.simulator.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
DIALPLAN_DIR = ROOT / "dialplan"
VARS_XML = ROOT / "freeswitch-conf" / "vars.xml"

# The example routes shipped in dialplan/public/10_example_routes.xml.
BOT_DID = "+12025550101"
AGENT_DID = "+12025550102"
WEBHOOK_DID = "+12025550103"


@pytest.fixture(scope="module")
def shipped() -> Dialplan:
    return Dialplan.load(DIALPLAN_DIR, vars_file=VARS_XML)


def inbound(dialplan: Dialplan, did: str, **variables: str) -> Execution:
    """A carrier call to ``did`` entering the public context, as sofia's external profile routes it."""
    profile = {"caller_id_number": "5511999999999", "caller_id_name": "Caller", "network_addr": "192.0.2.10"}
    return dialplan.execute(names.PUBLIC_CONTEXT, did, variables, caller_profile=profile)


def transfer(dialplan: Dialplan, destination: str, **variables: str) -> Execution:
    """What ``uuid_transfer <uuid> <dest> XML gateway_transfer`` does, after ``uuid_setvar``s."""
    number, extra = names.transfer_target(destination)
    return dialplan.execute(names.TRANSFER_CONTEXT, number, {**variables, **extra})


def handed_back(call: Execution, result: str) -> bool:
    """The transfer context gave up: the call is parked again for the gateway (in that
    context, which is how the gateway tells the park from its own) with ``result`` in
    gateway_transfer_result."""
    return (call.stop.reason is StopReason.PARK and call.context == names.TRANSFER_CONTEXT
            and call.variables.get(names.VAR_TRANSFER_RESULT) == result)


# The bridge's rules (continue_on_fail, hangup_after_bridge, ...) are the running simulator's
# (``originate.bridge_leg``): tests of what follows a bridge run the call there.

#: The number the far end of each transfer destination's B leg is known by in the simulator
#: (``Simulator.set_outcome``): what the shipped dialplan dials, minus the endpoint.
B_LEG_NUMBER = {"+5511999999999": "+5511999999999", "1001": "1001%127.0.0.1",
                "sip:alice@example.com": "sip:alice"}


@pytest.fixture
def switch(dialplan_sim):
    return dialplan_sim


def fails_with(cause: str, delay: float = 0.0) -> Outcome:
    """A far end that fails the B leg with ``cause`` after ``delay`` seconds."""
    return Outcome(final=503, provisional=None, delay=delay, local=True, cause=cause)


def parked_inbound(sim: Simulator) -> str:
    """A carrier call the gateway's own number table serves: parked in the public context."""
    uuid = sim.inject_inbound("+5511888888888", "5511999999999")
    sim.wait_for(lambda: sim.channels[uuid].session.parked)
    return uuid


def transfer_running(sim: Simulator, uuid: str, destination: str) -> None:
    """What the gateway sends to transfer a parked call: ``uuid_setvar``s, then ``uuid_transfer``."""
    number, extra = names.transfer_target(destination)
    for name, value in extra.items():
        assert sim.run_api("uuid_setvar", f"{uuid} {name} {value}") == "+OK\n"
    assert sim.run_api("uuid_transfer", f"{uuid} {number} {names.DIALPLAN} {names.TRANSFER_CONTEXT}") == "+OK\n"


def parked_again(sim: Simulator, uuid: str, parks: int):
    """The channel once it parked for the ``parks``-th time."""
    return sim.wait_for(lambda: (ch := sim.channels.get(uuid)) is not None and ch.events.count("CHANNEL_PARK") >= parks
                        and ch.session.parked and ch)


def handed_back_running(ch, result: str) -> bool:
    """:func:`handed_back` for a simulator channel."""
    return (ch.session.parked and ch.context == names.TRANSFER_CONTEXT
            and ch.variables.get(names.VAR_TRANSFER_RESULT) == result)


# --------------------------------------------------------------------------------------------
# Inbound: the public context


@pytest.mark.parametrize("did", [BOT_DID, "12025550101", "2025550101"])
def test_did_routed_to_a_bot_is_parked_with_the_bot_url(shipped, did):
    call = inbound(shipped, did)

    assert call.stop.reason is StopReason.PARK
    assert call.variables[names.VAR_ROUTE] == names.ROUTE_BOT
    assert call.variables[names.VAR_SOCKET_URL] == "wss://bot.example.com/media"
    assert call.variables[names.VAR_DID] == did  # as dialled: the gateway normalises it
    assert call.variables[names.VAR_DIRECTION] == names.DIRECTION_INBOUND
    # parked unanswered, after a 180 Ringing: the gateway answers or rejects it
    assert call.applications[-2:] == [("ring_ready", ""), ("park", "")]
    assert call.ringing and not call.answered
    assert call.routes[0].matched_extensions == ("example_did_bot", names.EXT_INBOUND)


def test_did_routed_to_an_agent(shipped):
    call = inbound(shipped, AGENT_DID)

    assert call.stop.reason is StopReason.PARK
    assert call.variables[names.VAR_ROUTE] == names.ROUTE_AGENT
    assert call.variables[names.VAR_AGENT] == "support"
    assert call.variables[names.VAR_DID] == AGENT_DID
    assert names.VAR_SOCKET_URL not in call.variables


def test_did_routed_to_a_webhook_carries_its_url_and_account(shipped):
    call = inbound(shipped, WEBHOOK_DID)

    assert call.stop.reason is StopReason.PARK
    assert call.variables[names.VAR_ROUTE] == names.ROUTE_WEBHOOK
    # &amp; in the XML is a plain & on the channel
    assert call.variables[names.VAR_WEBHOOK_URL] == "https://hooks.example.com/route-call?src=fs&v=1"
    assert call.variables[names.VAR_ACCOUNT] == "1"


@pytest.mark.parametrize("did", ["+5511888888888", "5511888888888", "+442071838750", "4930901820"])
def test_any_did_in_range_is_parked_for_the_gateways_own_table(shipped, did):
    call = inbound(shipped, did)

    assert call.stop.reason is StopReason.PARK
    assert call.variables[names.VAR_DID] == did
    assert call.variables[names.VAR_DIRECTION] == names.DIRECTION_INBOUND
    assert names.VAR_ROUTE not in call.variables  # the gateway decides
    assert call.routes[0].extension == names.EXT_INBOUND


@pytest.mark.parametrize("did", ["911", "1001", "+123", "0800123456", "abc", "", "sip:bob@example.com",
                                 "+1555${system(id)}", "5511888888888;x=1"])
def test_unknown_number_is_rejected_as_unallocated_without_reaching_the_gateway(shipped, did):
    call = inbound(shipped, did)

    assert call.stop.reason is StopReason.HANGUP
    assert call.hangup_cause == "UNALLOCATED_NUMBER"
    assert call.applications == [("hangup", "UNALLOCATED_NUMBER")]
    assert names.VAR_DID not in call.variables
    assert call.routes[0].extension == names.EXT_UNALLOCATED


def test_did_regex_from_vars_decides_what_is_unknown():
    dialplan = Dialplan.load(DIALPLAN_DIR, vars_file=VARS_XML,
                             variables={names.GLOBAL_DID_REGEX: r"^\+?55119[0-9]{8}$"})

    assert inbound(dialplan, "+5511988887777").stop.reason is StopReason.PARK
    assert inbound(dialplan, "+5511388887777").hangup_cause == "UNALLOCATED_NUMBER"
    # a pinned route outside the DID range sets its variables, then meets "unallocated"
    call = inbound(dialplan, BOT_DID)
    assert call.hangup_cause == "UNALLOCATED_NUMBER"
    assert call.routes[0].matched_extensions == ("example_did_bot", names.EXT_UNALLOCATED)


def test_parked_inbound_call_transferred_by_the_gateway(shipped):
    call = inbound(shipped, "+5511888888888")
    assert call.stop.reason is StopReason.PARK

    stop = call.transfer("+5511977776666", names.DIALPLAN, names.TRANSFER_CONTEXT)

    assert stop.reason is StopReason.BRIDGE
    assert stop.data == "sofia/gateway/carrier/+5511977776666"
    assert call.caller_profile["rdnis"] == "+5511888888888"
    assert call.variables["transfer_history"].endswith(":bl_xfer:+5511977776666/gateway_transfer/XML")
    assert call.variables[names.VAR_DID] == "+5511888888888"  # the call keeps its variables


# --------------------------------------------------------------------------------------------
# Transfers: the gateway_transfer context


@pytest.mark.parametrize("destination", ["+5511999999999", "5511999999999"])
def test_pstn_number_is_bridged_through_the_carrier_gateway(shipped, destination):
    call = transfer(shipped, destination)

    assert call.stop.reason is StopReason.BRIDGE
    assert call.stop.data == "sofia/gateway/carrier/+5511999999999"
    assert call.variables["hangup_after_bridge"] == "true"
    assert call.variables["continue_on_fail"] == "true"
    assert call.variables["transfer_ringback"] == "%(2000,4000,440,480)"
    assert call.routes[0].matched_extensions == (names.EXT_TRANSFER_SETUP, names.EXT_PSTN)


def test_carrier_gateway_name_comes_from_vars():
    dialplan = Dialplan.load(DIALPLAN_DIR, vars_file=VARS_XML, variables={names.GLOBAL_CARRIER: "acme"})

    assert transfer(dialplan, "+14155550100").stop.data == "sofia/gateway/acme/+14155550100"


def test_extension_is_bridged_to_the_registered_user(shipped):
    call = transfer(shipped, "1001")

    assert call.stop.reason is StopReason.BRIDGE
    # the phone registered as user 1001 (domain_name = local_ip_v4 by default)
    assert call.stop.data == "sofia/internal/1001%127.0.0.1"
    assert call.routes[0].matched_extensions[-1] == names.EXT_EXTENSION


@pytest.mark.parametrize(
    ("uri", "dial_string"),
    [
        ("sip:alice@example.com", "sofia/external/sip:alice@example.com"),
        ("SIP:alice@example.com", "sofia/external/sip:alice@example.com"),
        ("sips:+15551234567@pbx.example.com:5061", "sofia/external/sips:+15551234567@pbx.example.com:5061"),
        ("sip:support.line_2@10.0.0.5", "sofia/external/sip:support.line_2@10.0.0.5"),
    ],
)
def test_sip_uri_is_bridged_from_the_transfer_uri_variable(shipped, uri, dial_string):
    number, variables = names.transfer_target(uri)
    assert number == names.TRANSFER_SIP_URI
    assert set(variables) == {names.VAR_TRANSFER_URI}

    call = transfer(shipped, uri)

    assert call.stop.reason is StopReason.BRIDGE
    assert call.stop.data == dial_string
    assert call.routes[0].matched_extensions[-1] == names.EXT_SIP_URI


@pytest.mark.parametrize(
    "uri",
    [
        "sip:alice@example.com,sofia/gateway/carrier/+19005550000",  # a second leg
        "sip:alice@example.com|user/1001",
        "sip:${system(id)}@example.com",  # expanded when the bridge runs
        "sip:{origination_caller_id_number=1}a@example.com",
        "sip:alice@[::1]",
        "sip:@example.com",
        "sip:alice",
        "tel:+15551234567",
    ],
)
def test_sip_uri_that_could_inject_into_a_dial_string_is_rejected(shipped, uri):
    call = shipped.execute(names.TRANSFER_CONTEXT, names.TRANSFER_SIP_URI, {names.VAR_TRANSFER_URI: uri})

    assert handed_back(call, "INVALID_NUMBER_FORMAT")
    assert not any(app == "bridge" for app, _ in call.applications)


def test_api_calls_in_a_variable_are_denied_not_run(shipped):
    # FreeSWITCH expands a variable's value again when it is referenced, so this URI's system()
    # would run at the condition if switch.conf allowed API expansion; the shipped one does not.
    uri = "sip:${system(touch /tmp/pwned)}@example.com"
    with pytest.raises(ValueError):
        names.transfer_target(uri)  # the gateway refuses it first

    call = shipped.execute(names.TRANSFER_CONTEXT, names.TRANSFER_SIP_URI, {names.VAR_TRANSFER_URI: uri})

    assert handed_back(call, "INVALID_NUMBER_FORMAT")
    assert call.channel.expand("${gateway_transfer_uri}") == "sip:<API Execute Permission Denied>@example.com"


def test_sip_uri_transfer_without_the_variable_is_rejected(shipped):
    call = shipped.execute(names.TRANSFER_CONTEXT, names.TRANSFER_SIP_URI)

    assert handed_back(call, "INVALID_NUMBER_FORMAT")


@pytest.mark.parametrize("destination", ["12", "+12", "123456", "+1001", "abc", "1001,1002", "user/1001",
                                         "gateway_park2", "*97", "${destination_number}"])
def test_anything_else_is_an_invalid_number(shipped, destination):
    call = shipped.execute(names.TRANSFER_CONTEXT, destination)

    assert handed_back(call, "INVALID_NUMBER_FORMAT")
    assert not any(app == "bridge" for app, _ in call.applications)
    assert call.routes[0].matched_extensions[-1] == names.EXT_INVALID


def test_gateway_park_hands_the_call_back_to_the_gateway(shipped):
    call = transfer(shipped, names.TRANSFER_PARK)

    assert call.stop.reason is StopReason.PARK
    assert call.routes[0].matched_extensions[-1] == names.EXT_PARK


@pytest.mark.parametrize("destination", ["+5511999999999", "1001", "sip:alice@example.com"])
@pytest.mark.parametrize("cause", ["USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "GATEWAY_DOWN", "USER_NOT_REGISTERED"])
def test_failed_transfer_parks_the_call_again_with_the_failure_cause(switch, destination, cause):
    uuid = parked_inbound(switch)
    switch.set_outcome(B_LEG_NUMBER[destination], fails_with(cause))

    transfer_running(switch, uuid, destination)
    call = parked_again(switch, uuid, 2)

    assert handed_back_running(call, cause)
    assert call.session.parked
    assert call.applications[-2:] == [("set", f"{names.VAR_TRANSFER_RESULT}={cause}"), ("park", "")]


def test_a_second_transfer_after_a_failed_one_reports_its_own_result(switch):
    uuid = parked_inbound(switch)
    switch.set_outcome(B_LEG_NUMBER["+5511999999999"], fails_with("USER_BUSY"))
    transfer_running(switch, uuid, "+5511999999999")
    parked_again(switch, uuid, 2)

    switch.set_outcome(B_LEG_NUMBER["1001"], fails_with("NO_ANSWER", delay=0.2))
    transfer_running(switch, uuid, "1001")
    call = switch.wait_for(lambda: (ch := switch.channels[uuid]).current_app == "bridge"
                           and ch.current_app_data == "sofia/internal/1001%127.0.0.1" and ch)
    assert call.current_app == "bridge"
    call = parked_again(switch, uuid, 3)

    assert handed_back_running(call, "NO_ANSWER")


def test_answered_transfer_ends_when_the_far_end_hangs_up(switch):
    uuid = parked_inbound(switch)
    transfer_running(switch, uuid, "1001")
    call = switch.wait_event(uuid, "CHANNEL_BRIDGE")

    switch.far_end_hangup(call.variables["bridge_to"], "NORMAL_CLEARING")
    call = switch.wait_gone(uuid)

    assert call.hungup
    assert call.hangup_cause == "NORMAL_CLEARING"
    assert names.VAR_TRANSFER_RESULT not in call.variables
    assert call.answered


# --------------------------------------------------------------------------------------------
# Agents' phones: the agents context


def test_agent_phone_may_call_another_agent(shipped):
    call = shipped.execute(names.AGENTS_CONTEXT, "1002")

    assert call.stop.data == "sofia/internal/1002%127.0.0.1"


@pytest.mark.parametrize("destination", ["+5511999999999", "12", "sip:x@y"])
def test_agent_phone_cannot_dial_out(shipped, destination):
    assert shipped.execute(names.AGENTS_CONTEXT, destination).hangup_cause == "CALL_REJECTED"


# --------------------------------------------------------------------------------------------
# The names the gateway uses exist in the shipped XML


def _set_names(dialplan: Dialplan) -> set[str]:
    found = set()
    for _context, _extension, element in dialplan.iter_actions():
        if element.get("application") in ("set", "export"):
            found.add(element.get("data", "").partition("=")[0])
    return found


def _dialplan_text() -> str:
    return "\n".join(path.read_text() for path in sorted(DIALPLAN_DIR.rglob("*.xml")))


def test_every_context_and_extension_named_by_the_gateway_exists(shipped):
    assert set(names.CONTEXTS) <= set(shipped.contexts)
    public = shipped.extension_names(names.PUBLIC_CONTEXT)
    assert public[-2:] == [names.EXT_INBOUND, names.EXT_UNALLOCATED]
    xfer = shipped.extension_names(names.TRANSFER_CONTEXT)
    for extension in (names.EXT_TRANSFER_SETUP, names.EXT_PARK, names.EXT_SIP_URI, names.EXT_EXTENSION,
                      names.EXT_PSTN, names.EXT_INVALID):
        assert extension in xfer
    assert xfer[0] == names.EXT_TRANSFER_SETUP and xfer[-1] == names.EXT_INVALID
    assert shipped.route(names.PROBE_CONTEXT, names.PROBE_DESTINATION).matched_extensions == (names.EXT_PROBE,)


def test_transfer_destinations_named_by_the_gateway_select_their_extensions(shipped):
    route = shipped.route(names.TRANSFER_CONTEXT, names.TRANSFER_PARK)
    assert route.matched_extensions[-1] == names.EXT_PARK
    route = shipped.route(names.TRANSFER_CONTEXT, names.TRANSFER_SIP_URI, {names.VAR_TRANSFER_URI: "sip:a@b.c"})
    assert route.matched_extensions[-1] == names.EXT_SIP_URI


def test_every_channel_variable_named_by_the_gateway_is_used_by_the_dialplan(shipped):
    text = _dialplan_text()
    for variable in names.CHANNEL_VARIABLES:
        assert re.search(rf"\b{variable}=|\$\{{{variable}\}}", text), variable
    assert {names.VAR_DID, names.VAR_DIRECTION, names.VAR_TRANSFER_RESULT} <= _set_names(shipped)
    assert f"{names.VAR_DIRECTION}={names.DIRECTION_INBOUND}" in text
    for route, target in names.ROUTES.items():
        assert f"{names.VAR_ROUTE}={route}" in text
        assert f"{target}=" in text


def test_the_dialplan_uses_no_gateway_variable_the_gateway_does_not_name(shipped):
    text = _dialplan_text()
    # channel variables: set with name=..., read with ${name} (not the load-time globals)
    used = set(re.findall(r"\b(gateway_[a-z_]+)=", text)) | set(re.findall(r"(?<!\$)\$\{(gateway_[a-z_]+)\}", text))
    assert used <= set(names.CHANNEL_VARIABLES)


def test_global_variables_named_by_the_gateway_are_set_in_vars_xml():
    variables = load_vars(VARS_XML)
    for name in (names.GLOBAL_CARRIER, names.GLOBAL_ESL_PASSWORD, names.GLOBAL_DID_REGEX,
                 names.GLOBAL_EXTENSION_REGEX):
        assert variables.get(name), name
    assert variables[names.GLOBAL_ESL_PASSWORD] == names.ESL_PASSWORD_PLACEHOLDER
    assert re.compile(variables[names.GLOBAL_EXTENSION_REGEX]).groups == 1


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("+5511999999999", ("+5511999999999", {})),
        (" 1001 ", ("1001", {})),
        ("sips:Bob@example.com", ("sip_uri", {"gateway_transfer_uri": "sips:Bob@example.com"})),
        ("Sip:bob@example.com", ("sip_uri", {"gateway_transfer_uri": "sip:bob@example.com"})),
    ],
)
def test_transfer_target(destination, expected):
    assert names.transfer_target(destination) == expected


@pytest.mark.parametrize("destination", ["", "   ", "sip:a b@c", "10\n01", "12\x0034", None, "1001,1002",
                                         "${system(id)}", "sip:a@b|user/1", "sip:a@b;transport=tcp"])
def test_transfer_target_refuses_what_the_esl_command_line_cannot_carry(destination):
    with pytest.raises(ValueError):
        names.transfer_target(destination)


# --------------------------------------------------------------------------------------------
# Engine semantics (mod_dialplan_xml, mod_dptools, the pre-processor) on small dialplans


CONTEXT = '<context name="{name}"><extension name="a">{condition}</extension></context>'


def dp(xml: str, **global_variables: str) -> Dialplan:
    return Dialplan.from_string(xml, global_variables)


def test_extensions_are_hunted_in_order_and_the_first_match_wins():
    plan = dp("""
      <context name="c">
        <extension name="a">
          <condition field="destination_number" expression="^1$"><action application="a"/></condition>
        </extension>
        <extension name="b">
          <condition field="destination_number" expression="^\\d+$"><action application="b"/></condition>
        </extension>
        <extension name="c">
          <condition field="destination_number" expression="^1"><action application="c"/></condition>
        </extension>
      </context>""")

    assert plan.route("c", "1").applications == [("a", "")]
    assert plan.route("c", "12").applications == [("b", "")]
    assert plan.route("c", "x").actions == ()
    assert not plan.route("c", "x").routed


def test_continue_true_keeps_hunting():
    plan = dp("""
      <context name="c">
        <extension name="a" continue="true"><condition><action application="set" data="x=1"/></condition></extension>
        <extension name="b" continue="false"><condition><action application="park"/></condition></extension>
        <extension name="c"><condition><action application="hangup"/></condition></extension>
      </context>""")

    route = plan.route("c", "1")
    assert route.applications == [("set", "x=1"), ("park", "")]
    assert route.extension == "a"  # FreeSWITCH names the caller extension after the first one
    assert route.matched_extensions == ("a", "b")


def test_anti_actions_run_when_the_condition_fails_and_end_the_hunt():
    plan = dp("""
      <context name="c">
        <extension name="a">
          <condition field="destination_number" expression="^1$">
            <action application="yes"/>
            <anti-action application="no" data="$1"/>
          </condition>
        </extension>
        <extension name="b"><condition><action application="never"/></condition></extension>
      </context>""")

    assert plan.route("c", "1").applications == [("yes", "")]
    route = plan.route("c", "2")
    assert route.applications == [("no", "$1")]  # no captures on the anti-action side
    assert route.actions[0].anti


@pytest.mark.parametrize(
    ("brk", "first", "apps"),
    [
        # break decides whether the second condition is evaluated at all
        ("on-false", "1", ["first", "second"]),
        ("on-false", "2", ["first-anti"]),
        ("on-true", "1", ["first"]),
        ("on-true", "2", ["first-anti", "second"]),
        ("always", "1", ["first"]),
        ("always", "2", ["first-anti"]),
        ("never", "1", ["first", "second"]),
        ("never", "2", ["first-anti", "second"]),
    ],
)
def test_condition_break_attribute(brk, first, apps):
    plan = dp(f"""
      <context name="c">
        <extension name="a">
          <condition field="destination_number" expression="^1$" break="{brk}">
            <action application="first"/>
            <anti-action application="first-anti"/>
          </condition>
          <condition field="caller_id_number" expression="^5">
            <action application="second"/>
          </condition>
        </extension>
      </context>""")

    route = plan.route("c", first, caller_profile={"caller_id_number": "555"})
    assert [app for app, _ in route.applications] == apps


def test_an_extension_fails_when_its_last_condition_fails_and_hunting_goes_on():
    plan = dp("""
      <context name="c">
        <extension name="a">
          <condition field="destination_number" expression="^1$"><action application="queued-anyway"/></condition>
          <condition field="caller_id_number" expression="^9"><action application="not-this"/></condition>
        </extension>
        <extension name="b"><condition><action application="b"/></condition></extension>
      </context>""")

    route = plan.route("c", "1", caller_profile={"caller_id_number": "555"})
    # FreeSWITCH keeps what a passing condition queued even when a later one fails
    assert route.applications == [("queued-anyway", ""), ("b", "")]
    assert route.matched_extensions == ("b",)


def test_captures_substitute_into_actions_and_fill_dp_match():
    plan = dp("""
      <context name="c">
        <extension name="a">
          <condition field="destination_number" expression="^(\\+?)(\\d{2})(\\d+)$">
            <action application="bridge" data="gw/$2-${3}/$9$x\\$1"/>
            <action application="set" data="cc=$2"/>
          </condition>
        </extension>
      </context>""")

    route = plan.route("c", "5511999")
    assert route.applications == [("bridge", "gw/55-11999/$x\\"), ("set", "cc=55")]
    # the whole match, then each group that took part (\+? matched empty)
    assert route.variables["DP_MATCH"] == "ARRAY::5511999|:|:55|:11999"


def test_field_reads_caller_profile_fields_or_expanded_variables():
    plan = dp("""
      <context name="c">
        <extension name="by-var">
          <condition field="${route}" expression="^bot$"><action application="var"/></condition>
        </extension>
        <extension name="no-dollar-reads-nothing">
          <condition field="route" expression="^$"><action application="empty"/></condition>
        </extension>
      </context>""")

    assert plan.route("c", "1", {"route": "bot"}).applications == [("var", "")]
    assert plan.route("c", "1", {"route": "agent"}).applications == [("empty", "")]


def test_inline_set_is_seen_by_later_conditions_but_a_plain_set_is_not():
    plan = dp("""
      <context name="c">
        <extension name="a" continue="true">
          <condition>
            <action application="set" data="plain=1"/>
            <action application="set" data="early=${destination_number}" inline="true"/>
            <action application="park" inline="true"/>
          </condition>
        </extension>
        <extension name="b" continue="true">
          <condition field="${plain}" expression="^1$"><action application="saw-plain"/></condition>
        </extension>
        <extension name="c">
          <condition field="${early}" expression="^42$"><action application="saw-inline"/></condition>
        </extension>
      </context>""")

    route = plan.route("c", "42")
    assert route.applications == [("set", "plain=1"), ("saw-inline", "")]
    assert route.inline_variables == {"early": "42"}
    assert route.inline_actions == (("set", "early=42"),)
    assert route.warnings == ("a: park cannot be executed inline",)


def test_nested_conditions_and_require_nested():
    xml = """
      <context name="c">
        <extension name="outer">
          <condition field="destination_number" expression="^1" require-nested="{nested}">
            <action application="outer"/>
            <condition field="destination_number" expression="^12$">
              <action application="inner"/>
            </condition>
          </condition>
        </extension>
        <extension name="fallback"><condition><action application="fallback"/></condition></extension>
      </context>"""
    strict = dp(xml.replace("{nested}", "true"))
    loose = dp(xml.replace("{nested}", "false"))

    route = strict.route("c", "12")
    assert route.applications == [("outer", ""), ("inner", "")]
    assert strict.route("c", "13").applications == [("outer", ""), ("fallback", "")]
    assert loose.route("c", "13").applications == [("outer", "")]


@pytest.mark.parametrize(
    ("rule", "number", "cid", "matched"),
    [("any", "1", "9", True), ("any", "2", "9", False), ("all", "1", "5", True), ("all", "1", "9", False),
     ("xor", "1", "9", True), ("xor", "1", "5", False)],
)
def test_regex_any_all_xor(rule, number, cid, matched):
    plan = dp(f"""
      <context name="c">
        <extension name="a">
          <condition regex="{rule}">
            <regex field="destination_number" expression="^1$"/>
            <regex field="caller_id_number" expression="^(5)$"/>
            <action application="yes" data="$1"/>
            <anti-action application="no"/>
          </condition>
        </extension>
      </context>""")

    route = plan.route("c", number, caller_profile={"caller_id_number": cid})
    assert [app for app, _ in route.applications] == (["yes"] if matched else ["no"])


def test_missing_context_falls_back_to_global_else_no_route():
    plan = dp(CONTEXT.format(name="global", condition='<condition><action application="g"/></condition>'))
    route = plan.route("nowhere", "1")
    assert route.resolved_context == "global" and route.applications == [("g", "")]

    plan = dp("""<context name="x"/>""")
    call = plan.execute("nowhere", "1")
    assert call.hangup_cause == "NO_ROUTE_DESTINATION"


def test_data_is_expanded_when_the_application_runs():
    plan = dp("""
      <context name="c">
        <extension name="a">
          <condition>
            <action application="set" data="a=one"/>
            <action application="log" data="a=${a} b=${b} g=${g} d=${destination_number}"/>
            <action application="set" data="b=${a}-two"/>
            <action application="export" data="c=${b}"/>
            <action application="unset" data="a"/>
          </condition>
        </extension>
      </context>""", g="global")

    call = plan.execute("c", "7")
    assert call.applications[1] == ("log", "a=one b= g=global d=7")
    assert call.variables == {"b": "one-two", "c": "one-two", "export_vars": "c"}
    assert call.hangup_cause == "NORMAL_CLEARING"  # "executed the last dialplan instruction"


def test_transfer_application_rehunts_and_is_limited_by_max_forwards():
    plan = dp("""
      <context name="c">
        <extension name="loop"><condition field="destination_number" expression="^loop$">
          <action application="transfer" data="loop"/></condition></extension>
        <extension name="hop"><condition field="destination_number" expression="^hop$">
          <action application="transfer" data="done XML d"/></condition></extension>
      </context>
      <context name="d">
        <extension name="done"><condition field="destination_number" expression="^done$">
          <action application="hangup" data="17"/></condition></extension>
      </context>""")

    call = plan.execute("c", "hop")
    assert call.hangup_cause == "USER_BUSY"
    assert [route.resolved_context for route in call.routes] == ["c", "d"]

    call = plan.execute("c", "loop", {"max_forwards": "5"})
    assert call.hangup_cause == "EXCHANGE_ROUTING_ERROR"
    assert len(call.routes) == 5


def test_bridge_failure_without_continue_on_fail(sim):
    sim.router.dialplan = SimulatorRouter(dp("""
      <context name="c"><extension name="a"><condition>
        <action application="bridge" data="user/1"/><action application="log" data="after"/>
      </condition></extension></context>"""))

    def call_failing_with(cause: str, **variables: str):
        sim.set_outcome("1", fails_with(cause))
        return sim.wait_gone(sim.inject_inbound("1", "5550001111", context="c", variables=variables))

    assert call_failing_with("USER_BUSY").hangup_cause == "USER_BUSY"
    call = call_failing_with("NO_ANSWER")  # no answer always goes on
    assert call.applications[-1] == ("log", "after")
    call = call_failing_with("CALL_REJECTED", continue_on_fail="user_busy,21")
    assert call.applications[-1] == ("log", "after")


def test_kill_and_hangup_causes():
    plan = dp(CONTEXT.format(name="c", condition='<condition><action application="park"/></condition>'))
    call = plan.execute("c", "1")
    assert call.kill("user_busy").cause == "USER_BUSY"
    with pytest.raises(DialplanError):
        call.transfer("2")
    assert str2cause("17") == "USER_BUSY"
    assert str2cause("no_such_cause") == "NORMAL_CLEARING"
    assert str2cause("") == "NORMAL_CLEARING"


def test_unmodelled_features_say_so():
    timed = dp(CONTEXT.format(name="c", condition='<condition wday="1-5"><action application="x"/></condition>'))
    with pytest.raises(DialplanError, match="time condition"):
        timed.route("c", "1")
    with pytest.raises(DialplanError, match="API expansion"):
        expand_variables("${system rm -rf}", lambda name: None, api_expansion=True)
    assert expand_variables("a${system rm -rf}b", lambda name: None) == "a<API Execute Permission Denied>b"
    broken = dp(CONTEXT.format(name="c", condition='<condition field="destination_number" expression="(("/>'))
    with pytest.raises(DialplanError, match="invalid regex"):
        broken.route("c", "1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${a}/${missing}/${b}", "A//A-A"),
        ("\\${a} costs \\$5", "${a} costs $5"),
        ("${a:1}", ""),
        ("${long:2:3}", "cde"),
        ("${long:-2}", "fg"),
        ("${arr[1]}", "y"),
        ("${${name}}", "A"),
        ("$x $${a}", "$x A"),
    ],
)
def test_expand_variables(text, expected):
    values = {"a": "A", "b": "${a}-${a}", "long": "abcdefg", "arr": "ARRAY::x|:y", "name": "a"}
    assert expand_variables(text, values.get) == expected


def test_preprocessor_follows_freeswitch(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.xml").write_text(
        '<?xml version="1.0"?>\n'
        "<include>\n"
        '  <X-PRE-PROCESS cmd="set" data="greeting = hello"/>\n'
        '  <X-PRE-PROCESS cmd="include" data="sub/*.xml"/>\n'
        '  <line value="$${greeting} $${missing}!"/>\n'
        "  <!-- <X-PRE-PROCESS cmd=\"set\" data=\"in_comment=still runs\"/> -->\n"
        "  this line mentions X-PRE-PROCESS and is dropped\n"
        "</include>\n"
    )
    for name, value in (("b", "$${order}b"), ("a", "a")):
        (tmp_path / "sub" / f"{name}.xml").write_text(
            f'<include>\n<{name}/>\n<X-PRE-PROCESS cmd="set" data="order={value}"/>\n</include>\n')
    variables: dict[str, str] = {}

    text = preprocess(tmp_path / "main.xml", variables)

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # a line holding the pre-processor's tag is consumed whole, comment or not
    assert lines == ["<a/>", "<b/>", '<line value="hello !"/>']
    assert variables == {"greeting": "hello", "order": "ab", "in_comment": "still runs"}


def test_load_vars_reads_vars_xml_with_builtin_globals():
    variables = load_vars(VARS_XML, {"local_ip_v4": "10.1.2.3"})

    assert variables["domain"] == "10.1.2.3"
    assert variables["domain_name"] == "10.1.2.3"
    assert variables["gateway_carrier"] == "carrier"


# --------------------------------------------------------------------------------------------
# The simulator's adapter (gateway/simulator/routing.py calls make_router(dialplan_dir))


class FakeChannel:
    """What the adapter needs of a simulator channel: variables, profile, set_var."""

    def __init__(self, **profile: str):
        self.variables: dict[str, str] = {}
        self.profile = type("Profile", (), profile)()

    def set_var(self, name: str, value: str | None) -> None:
        self.variables.pop(name, None)
        if value is not None:
            self.variables[name] = value


def test_make_router_routes_a_channel_through_the_shipped_dialplan():
    router = make_router(DIALPLAN_DIR)  # finds ../freeswitch-conf/vars.xml
    channel = FakeChannel(caller_id_number="5511999999999", network_addr="192.0.2.10",
                          destination_number=WEBHOOK_DID, context=names.PUBLIC_CONTEXT)

    apps = router(channel, WEBHOOK_DID, names.PUBLIC_CONTEXT)

    assert apps[-2:] == [("ring_ready", ""), ("park", "")]
    # data is expanded as each application runs, against the channel as it is then
    assert (("set", f"{names.VAR_DID}=${{destination_number}}")) in apps
    assert router.expand(channel, "${destination_number}") == WEBHOOK_DID
    assert router(channel, "911", names.PUBLIC_CONTEXT) == [("hangup", "UNALLOCATED_NUMBER")]
    assert router(channel, "1", "no_such_context") == [("hangup", "NO_ROUTE_DESTINATION")]


def test_make_router_sets_what_routing_sets_on_the_channel():
    router = make_router(DIALPLAN_DIR)
    channel = FakeChannel()

    router(channel, "+5511999999999", names.TRANSFER_CONTEXT)

    assert channel.variables["DP_MATCH"] == "ARRAY::+5511999999999|:5511999999999"


def test_load_dialplan_needs_the_global_variables(tmp_path):
    (tmp_path / "dialplan").mkdir()
    (tmp_path / "dialplan" / "x.xml").write_text("<include>\n<context name=\"x\"/>\n</include>\n")

    with pytest.raises(DialplanError, match="vars.xml"):
        load_dialplan(tmp_path / "dialplan")
    assert set(load_dialplan(DIALPLAN_DIR).contexts) == set(names.CONTEXTS)
