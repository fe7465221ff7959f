"""``/metrics``: Prometheus' page of one gateway, its counters moving as calls run on the
simulator, rate-limited requests and failed webhook attempts counted, its token enforced."""

from __future__ import annotations

import gevent
import pytest
from gevent.event import Event as Flag
from gevent.pywsgi import WSGIServer
from prometheus_client.parser import text_string_to_metric_families

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import FINAL, Status, headers
from gateway.api import create_app
from gateway.metrics import GatewayMetrics
from gateway.models import Account
from gateway.models.webhooks import WebhookDelivery

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def samples(client, **request) -> dict:
    """``{(sample name, sorted labels): value}`` of the page."""
    response = client.get("/metrics", **request)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def value(page: dict, name: str, **labels) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_until(condition, timeout: float = 5.0) -> None:
    with gevent.Timeout(timeout, AssertionError("condition not met in time")):
        while not condition():
            gevent.sleep(0.01)


def test_calls_move_the_live_gauge_the_ended_counter_and_the_event_lag(client, gw, key_a, account_a):
    node = next(iter(gw.controller.nodes))
    before = samples(client)
    assert value(before, "voicegw_admission_queue_depth", node=node) == 0
    response = client.post("/api/calls", json={"destination_number": "+12125550101"}, headers=headers(key_a))
    call_uuid = response.json["call_uuid"]
    assert gw.controller.wait_status(call_uuid, [Status.IN_PROGRESS], 5) is Status.IN_PROGRESS
    gw.controller.flush()
    live = samples(client)
    assert value(live, "voicegw_calls_live", state="in_progress", node=node) == 1
    assert value(live, "voicegw_esl_event_lag_seconds_count", node=node) >= 1
    assert value(live, "voicegw_bot_streams") == 0

    assert client.post("/api/calls/hangup", json={"call_uuid": call_uuid}, headers=headers(key_a)).status_code == 200
    assert gw.controller.wait_status(call_uuid, FINAL, 5) is Status.COMPLETED
    gw.controller.flush()
    ended = samples(client)
    assert value(ended, "voicegw_calls_live", state="in_progress", node=node) == 0
    completed = [v for (name, labels), v in ended.items()
                 if name == "voicegw_calls_ended_total" and ("status", "completed") in labels]
    assert completed == [1.0]


def test_rate_limit_refusals_are_counted_by_bucket(client, gw, account_a, key_a):
    Account.update(rate_limits={"v1": 2}).where(Account.id == account_a.id).execute()
    codes = [client.get("/v1/agents", headers={"Authorization": f"Bearer {key_a}"}).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    page = samples(client)
    refused = {labels: v for (name, labels), v in page.items() if name == "voicegw_rate_limit_refusals_total"}
    assert list(refused.values()) == [2.0]


@pytest.fixture
def failing_receiver():
    """A webhook receiver on loopback that answers every POST with a 500."""
    hit = Flag()

    def app(environ, start_response):
        environ["wsgi.input"].read()
        hit.set()
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"broken"]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", hit
    server.stop()


def test_a_failed_webhook_attempt_is_counted(client, gw, key_a, account_a, failing_receiver):
    url, hit = failing_receiver
    WebhookDelivery.create(event_id="evt_metrics_1", account=account_a.id, surface="v1", event_type="call.ended",
                           url=url, body="{}")
    gw.dispatcher.wake()
    assert hit.wait(10), "the dispatcher did not post the webhook"
    wait_until(lambda: value(samples(client), "voicegw_webhook_attempts_total", outcome="pending") >= 1)
    assert value(samples(client), "voicegw_webhook_attempts_total", outcome="delivered") == 0


def test_each_gateway_has_its_own_registry(gw):
    other = GatewayMetrics(gw.controller)
    other.rate_limited.labels("v1").inc()
    assert other.registry is not gw.metrics.registry
    assert gw.metrics.registry.get_sample_value("voicegw_rate_limit_refusals_total", {"bucket": "v1"}) is None


def test_the_token_guards_the_page_when_set(gw):
    gw.settings = type(gw.settings)(**{**gw.settings.__dict__, "metrics_token": "s3cret"})
    client = create_app(gw).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
