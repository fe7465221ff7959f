"""Schemathesis over the voice-admin surface's campaign and action operations, with a key
of each scope: no 5xx, every answer as documented, and no request valid by the document
refused but for a reason its 400 names. Account A has an agent (id 1, the examples'), a
default caller ID and no rate limit."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import openapi_support
from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import make_agent
from openapi_support import hosts_do_not_resolve, valid_requests_are_accepted  # noqa: F401 -- fixture
from gateway.auth.keys import create_key
from gateway.models import Account

EXAMPLES_PER_OPERATION = 15
BASE = "/api/agent-api/voice"
OPERATIONS = [
    ("GET", f"{BASE}/campaigns"),
    ("POST", f"{BASE}/campaigns"),
    ("GET", f"{BASE}/campaigns/{{campaign_id}}"),
    ("GET", f"{BASE}/campaigns/{{campaign_id}}/contacts"),
    ("POST", f"{BASE}/campaigns/{{campaign_id}}/contacts"),
    ("POST", f"{BASE}/campaigns/{{campaign_id}}/start"),
    ("POST", f"{BASE}/campaigns/{{campaign_id}}/pause"),
    ("POST", f"{BASE}/campaigns/{{campaign_id}}/stop"),
    ("GET", f"{BASE}/actions/{{action_id}}"),
]
SCOPES = ("voice:read", "voice:campaign:write", "voice:campaign:execute", "voice:read:all")
REFUSALS = {
    f"POST {BASE}/campaigns": [r"^name: 1 to 255 characters$", r"^from_number: ", r"must differ$",
                                r"^unknown time zone "],
}


@pytest.fixture
def database_url(sqlite_database_url):
    """SQLite: the document and the views' checks do not depend on the database."""
    return sqlite_database_url


@pytest.fixture
def schema(gw, account_a, hosts_do_not_resolve, monkeypatch):
    Account.update(rate_limit_per_minute=0).where(Account.id == account_a.id).execute()
    make_agent(account_a, "closer", "Closer")
    for label, reasons in REFUSALS.items():
        monkeypatch.setitem(openapi_support.BUSINESS_REFUSALS, label, reasons)
    return schemathesis.openapi.from_wsgi("/openapi.json", gw.app)


CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, valid_requests_are_accepted],
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance],
}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_campaign_operations_conform_to_the_document(schema, account_a, method, path, mode, scope):
    secret = create_key(account_a, [scope])[1]
    operation = schema[path][method]
    strategies = [operation.as_strategy(generation_mode=mode)]
    if mode is GenerationMode.POSITIVE:
        strategies += list(schema.get_strategies_from_examples(operation))
    for strategy in strategies:
        run(strategy, secret, CHECKS[mode])


def run(strategy, secret, checks):
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=checks)

    check()
