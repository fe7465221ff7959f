"""Schemathesis over the ``/api/agent-api/voice`` part of ``/openapi.json`` with a key of
each kind (owner key with the default scopes, voice:read only, voice:read:all, the
account-wide key): no 5xx, every answer as documented, and every request valid by the
document accepted unless for a reason its 400 names
(``openapi_support.valid_requests_are_accepted``). Each operation with an ``agent_id``
or ``doc_id`` runs once more with the ids of an agent and a document that exist, so that
generated bodies get past the 404 to the checks of their fields.

Run like ``tests/test_api_schemathesis.py`` (Hypothesis driven directly, derandomized,
bounded), on SQLite only: the surface's database behaviour has its own tests on both.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, bearer
from openapi_support import hosts_do_not_resolve, valid_requests_are_accepted  # noqa: F401 -- fixture
from gateway.auth.keys import create_key
from gateway.models import Account, Agent, KnowledgeDocument
from test_voice_admin_campaigns_schemathesis import OPERATIONS as CAMPAIGN_OPERATIONS  # their own run

EXAMPLES_PER_OPERATION = 6
SEEDED_EXAMPLES = 10

OPERATIONS = [
    ("GET", "/agents"), ("POST", "/agents"), ("GET", "/agents/{agent_id}"), ("PATCH", "/agents/{agent_id}"),
    ("DELETE", "/agents/{agent_id}"), ("GET", "/voices"), ("GET", "/phone-numbers"),
    ("POST", "/agents/{agent_id}/phone"), ("GET", "/knowledge"), ("POST", "/knowledge/text"),
    ("POST", "/knowledge/url"), ("DELETE", "/knowledge/{doc_id}"), ("PATCH", "/agents/{agent_id}/knowledge"),
    ("GET", "/agents/{agent_id}/env-vars"), ("PUT", "/agents/{agent_id}/env-vars/{name}"),
    ("DELETE", "/agents/{agent_id}/env-vars/{name}"), ("GET", "/agents/{agent_id}/tools"),
    ("POST", "/agents/{agent_id}/tools/calendly"), ("DELETE", "/agents/{agent_id}/tools/calendly"),
    ("POST", "/agents/{agent_id}/tools"), ("DELETE", "/agents/{agent_id}/tools/{name}"),
    ("GET", "/agents/{agent_id}/conversations"), ("GET", "/conversations/{conversation_id}"),
]
KINDS = ["owner", "read", "read-all", "account"]


@pytest.fixture
def database_url(sqlite_database_url):
    """SQLite only here (overrides the conftest fixture that adds PostgreSQL)."""
    return sqlite_database_url


@pytest.fixture
def seeded(account_a, owners):
    """An agent and a document of owner one, whose ids replace generated ones."""
    Account.update(rate_limit_per_minute=0, balance=Decimal("100")).where(Account.id == account_a.id).execute()
    agent = Agent.create(account=account_a, owner_agent=owners.one, key="seeded", name="Seeded",
                         driver="elevenlabs", driver_ref="agent_seeded")
    document = KnowledgeDocument.create(account=account_a, owner_agent=owners.one, name="Seeded", kind="text",
                                        status="ready", text="t")
    return {"agent_id": str(agent.id), "doc_id": str(document.id)}


@pytest.fixture
def scoped_keys(account_a, owners):
    return {"owner": bearer(create_key(account_a, owner_agent=owners.one)[1]),
            "read": bearer(create_key(account_a, ["voice:read"], owner_agent=owners.one)[1]),
            "read-all": bearer(create_key(account_a, ["voice:read:all"], owner_agent=owners.one)[1]),
            "account": bearer(create_key(account_a)[1])}


@pytest.fixture
def api_schema(gw, seeded, hosts_do_not_resolve):
    return schemathesis.openapi.from_wsgi("/openapi.json", gw.app)


def test_every_operation_is_covered(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {label for label in labels if PREFIX in label} == (
        {f"{m} {PREFIX}{p}" for m, p in OPERATIONS} | {f"{m} {p}" for m, p in CAMPAIGN_OPERATIONS})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_voice_admin_conforms_to_its_openapi_document(api_schema, scoped_keys, seeded, method, path, mode, kind):
    operation = api_schema[PREFIX + path][method]
    checks = CHECKS[mode]
    run(operation.as_strategy(generation_mode=mode), scoped_keys[kind], EXAMPLES_PER_OPERATION, checks)
    if mode is GenerationMode.POSITIVE and ("{agent_id}" in path or "{doc_id}" in path):
        strategy = operation.as_strategy(generation_mode=mode).map(with_ids(seeded))
        run(strategy, scoped_keys[kind], SEEDED_EXAMPLES, checks)


CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, valid_requests_are_accepted],
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance],
}


def with_ids(ids: dict):
    def seed(case):
        case.path_parameters = {**case.path_parameters,
                                **{name: value for name, value in ids.items() if name in case.path_parameters}}
        return case
    return seed


def run(strategy, headers, max_examples, checks):
    @settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers=headers, checks=checks)

    check()
