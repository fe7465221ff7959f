"""No documented path template takes a sibling's place: ``GET /api/calls/hangup`` is not a
read of a call named ``hangup``, neither in the OpenAPI document nor in the routing."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import headers

_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _as_template(flask_rule: str) -> str:
    """``/api/calls/<uuid:call_uuid>`` → ``/api/calls/{call_uuid}``, as the document spells it."""
    return _PARAMETER.sub(r"{\1}", flask_rule)


def _shadowed(template: str, path: str) -> list[tuple[str, str]]:
    """The (parameter, segment) pairs by which ``template`` could match the static ``path``
    (every static segment equal); empty if it cannot."""
    wanted, segments = template.split("/"), path.split("/")
    if len(wanted) != len(segments):
        return []
    pairs = []
    for part, segment in zip(wanted, segments):
        if part.startswith("{"):
            pairs.append((part[1:-1], segment))
        elif part != segment:
            return []
    return pairs


@pytest.mark.parametrize("action", ["hangup", "transfer", "redirect"])
def test_get_on_a_call_action_is_not_a_read(client, key_a, action):
    spec = client.get("/openapi.json").json
    assert set(spec["paths"][f"/api/calls/{action}"]) == {"post"}
    response = client.get(f"/api/calls/{action}", headers=headers(key_a))
    assert (response.status_code, response.json) == (405, {"error": "Method not allowed"})
    assert "POST" in response.headers["Allow"] and "GET" not in response.headers["Allow"]


def test_no_path_template_matches_a_static_route(gw):
    """Over the whole document, every surface: where a template's parameter stands at a
    static route's segment, its schema refuses that segment, and the router does not send
    the route's path to the template's view with any of the template's methods."""
    spec = gw.app.test_client().get("/openapi.json").json
    adapter = gw.app.url_map.bind("localhost")
    static = sorted({rule.rule for rule in gw.app.url_map.iter_rules() if "<" not in rule.rule})
    shadows = 0
    for template, item in spec["paths"].items():
        schemas = {p["name"]: p["schema"] for p in item.get("parameters", []) if p["in"] == "path"}
        methods = [method.upper() for method in item if method != "parameters"]
        for path in static:
            pairs = _shadowed(template, path)
            if not pairs:
                continue
            shadows += 1
            for name, segment in pairs:
                validator = jsonschema_rs.validator_for(schemas[name], validate_formats=True)
                assert not validator.is_valid(segment), f"{template}: {name} admits {segment!r} ({path})"
            for method in methods:
                try:
                    rule, _ = adapter.match(path, method=method, return_rule=True)
                except (MethodNotAllowed, NotFound):
                    continue
                assert _as_template(rule.rule) != template, f"{method} {path} is routed to {template}"
    assert shadows >= 3  # /api/calls/{call_uuid} against hangup, transfer and redirect at least
