"""Prometheus metrics of one ``Gateway``, served at ``/metrics``.

Each ``Gateway`` owns a ``CollectorRegistry`` of its own rather than the process-wide
default one, so that several gateways in one process (the tests run many) do not count
into each other's series.  What is already counted elsewhere (the live calls and their
states, the admission lines, the bot streams) is read when the page is scraped, by a
custom collector; only events that happen once each (a call ends, an ESL event arrives,
a request is refused, a webhook attempt fails) move a counter or histogram as they
happen.  Nothing is called per audio frame.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from gateway.domain import FINAL

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: ESL event lag buckets, seconds: loopback is sub-millisecond, a busy worker seconds.
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LiveStateCollector:
    """Read at scrape time: live calls by state and node, the admission lines' depth per
    node, the bot streams open on the media bridge."""

    def __init__(self, controller, bridge) -> None:
        self.controller = controller
        self.bridge = bridge

    def collect(self):
        calls = GaugeMetricFamily("voicegw_calls_live", "Live calls by state and node", labels=["state", "node"])
        counts: dict[tuple[str, str], int] = {}
        for live in list(self.controller.live.values()):
            key = (live.status.value, live.node)
            counts[key] = counts.get(key, 0) + 1
        for (state, node), count in sorted(counts.items()):
            calls.add_metric([state, node], count)
        yield calls
        queued = GaugeMetricFamily("voicegw_admission_queue_depth",
                                   "Calls waiting in a node's admission line for its session budget",
                                   labels=["node"])
        for name, pacer in self.controller.pacers.items():
            queued.add_metric([name], len(pacer.admission))
        yield queued
        streams = GaugeMetricFamily("voicegw_bot_streams", "Call audio streams open on the media bridge")
        streams.add_metric([], len(self.bridge.streams) if self.bridge is not None else 0)
        yield streams


class GatewayMetrics:
    """The registry of one gateway and the few series moved as things happen."""

    def __init__(self, controller, bridge=None) -> None:
        self.registry = CollectorRegistry()
        self.controller = controller
        self.calls_ended = Counter("voicegw_calls_ended", "Calls that reached a final status, by status and reason",
                                   ["status", "reason"], registry=self.registry)
        self.esl_event_lag = Histogram("voicegw_esl_event_lag_seconds",
                                       "Receipt time minus Event-Date-Timestamp of a live call's ESL event",
                                       ["node"], buckets=LAG_BUCKETS, registry=self.registry)
        self.rate_limited = Counter("voicegw_rate_limit_refusals", "Requests refused with 429, by bucket",
                                    ["bucket"], registry=self.registry)
        self.webhook_attempts = Counter("voicegw_webhook_attempts", "Webhook delivery attempts, by outcome",
                                        ["outcome"], registry=self.registry)
        self.webhook_lag = Histogram("voicegw_webhook_delivery_lag_seconds",
                                     "From a webhook's queueing to its delivery", registry=self.registry)
        self.registry.register(LiveStateCollector(controller, bridge))

    def install(self) -> None:
        """Hook the counters into the controller (a listener and an event hook)."""
        self.controller.listeners.append(self.on_transition)
        self.controller.event_hooks.append(self.on_event)

    def on_transition(self, call_uuid: str, transition) -> None:
        if transition.to_status in FINAL:
            reason = transition.end_reason.value if transition.end_reason is not None else ""
            self.calls_ended.labels(transition.to_status.value, reason).inc()

    def on_event(self, call_uuid: str, event) -> None:
        stamp = event.get("Event-Date-Timestamp") or ""
        live = self.controller.live.get(call_uuid)
        if live is None or not stamp.isdigit():
            return
        self.esl_event_lag.labels(live.node).observe(max(0.0, time.time() - int(stamp) / 1e6))

    def webhook_attempt(self, status: str, lag_seconds: float | None) -> None:
        """A delivery attempt ended in ``status`` (delivered, pending, dead, stopped)."""
        self.webhook_attempts.labels(status).inc()
        if status == "delivered" and lag_seconds is not None:
            self.webhook_lag.observe(max(0.0, lag_seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)

