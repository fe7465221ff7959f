"""``voicegw demo --agents`` runs end to end: a voice agent built over the surface takes
an inbound call on the simulator."""
from __future__ import annotations

import io

from gateway import demo_agents, models


def test_demo_agents_succeeds():
    out = io.StringIO()
    try:
        assert demo_agents.run(out) == 0, out.getvalue()
    finally:
        models.database.initialize(None)
    text = out.getvalue()
    assert "POST /agents -> 201" in text and "POST /agents/2/phone -> 200" in text
    assert "greeted the caller: True" in text and text.rstrip().endswith("demo succeeded")
