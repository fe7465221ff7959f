"""The controller against a real FreeSWITCH (the Vagrant VM), not the simulator.

Run on the VM: ``FREESWITCH_REAL=1 FREESWITCH_NODES=127.0.0.1:8021:<password> pytest -m freeswitch``.
Calls go to ``loopback/`` extensions of the shipped dialplan, so no carrier is needed.
"""

import pytest

from gateway.calls.controller import CallController
from gateway.calls.states import FINAL, Status
from gateway.config import Settings
from gateway.models import Account, Call

pytestmark = pytest.mark.freeswitch


@pytest.fixture
def controller(database):
    nodes = Settings.from_env().freeswitch_nodes
    controller = CallController(nodes, carrier_gateway="carrier")
    controller.start()
    assert controller.wait_connected(10), "no FreeSWITCH at FREESWITCH_NODES"
    yield controller
    controller.stop()


def test_show_channels_answers_json(controller):
    node = next(iter(controller.nodes.values()))
    assert node.api("show channels as json").lstrip().startswith("{")


def test_status_reports_ready(controller):
    node = next(iter(controller.nodes.values()))
    assert "is ready" in node.api("status")


def test_unknown_uuid_kill_is_refused_with_freeswitch_text(controller):
    node = next(iter(controller.nodes.values()))
    with pytest.raises(Exception) as refused:
        node.api("uuid_kill 00000000-0000-0000-0000-000000000000")
    assert "No such channel" in str(refused.value)


def test_originate_to_unknown_gateway_fails(database, controller):
    account = Account.create(name="vm")
    bad = CallController(Settings.from_env().freeswitch_nodes, carrier_gateway="no_such_gateway")
    bad.start()
    try:
        assert bad.wait_connected(10)
        call = bad.originate(account.id, "+15550100001", "+15550009999")
        assert bad.wait_status(call.uuid, FINAL, 10) is Status.FAILED
        assert Call.get_by_id(call.uuid).hangup_cause == "INVALID_GATEWAY"
    finally:
        bad.stop()


def test_a_bot_is_heard_in_the_configured_playback_form(tmp_path):
    """The fact the simulator is built on, checked where it comes from: the probe's tone,
    played through the node's form, is in what the caller leg recorded (the media directory
    is the gateway's own, shared with FreeSWITCH on the VM)."""
    from gateway import playback_probe
    from gateway.media.bridge import MediaBridge

    settings = Settings.from_env()
    bridge = MediaBridge("127.0.0.1", 0)
    bridge.start()
    try:
        for node in settings.freeswitch_nodes:
            form = settings.media.playback_for(node.name)
            result = playback_probe.probe(node.host, node.port, node.password, bridge, form, settings.media_dir)
            assert result.ok, result.summary()
    finally:
        bridge.stop()
