"""Schemathesis over ``/openapi.json``: no 5xx, every response as documented, and every
request valid by the document accepted unless for a reason its 400 names
(``openapi_support.valid_requests_are_accepted``).

The app is loaded over WSGI (no network) from a Gateway on the test database whose
controller is connected to the simulator, so calls that schemathesis manages to place
really run. Account A has a key, an agent, credits, a default caller ID and socket, and
no rate limit, and a call that has ended: the control operations run once more with
their call_uuid replaced by it, so that generated bodies get past the 404 of an unknown
call to the checks of their other fields. Hypothesis runs derandomized with a bounded number of examples per
operation, in positive and negative modes, so the run is the same every time.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api_support import *  # noqa: F401,F403 -- fixtures
from api_support import CALLER_ID, make_agent
from openapi_support import hosts_do_not_resolve, valid_requests_are_accepted  # noqa: F401 -- fixture
from gateway.auth.keys import create_key
from gateway.models import Account, Call

EXAMPLES_PER_OPERATION = 20
CONTROL_OPERATIONS = ("/api/calls/hangup", "/api/calls/transfer", "/api/calls/redirect")


@pytest.fixture
def api_key(account_a):
    Account.update(rate_limit_per_minute=0, balance=Decimal("100")).where(Account.id == account_a.id).execute()
    make_agent(account_a, "akylai", "Akylai")
    return create_key(account_a)[1]


@pytest.fixture
def ended_call(gw, account_a):
    return Call.create(uuid=str(uuid.uuid4()), account=account_a, direction="outbound", from_number=CALLER_ID,
                       to_number="+12125550101", node=next(iter(gw.controller.nodes)), status="completed",
                       end_reason="completed")


@pytest.fixture
def api_schema(gw, api_key, hosts_do_not_resolve):
    return schemathesis.openapi.from_wsgi("/openapi.json", gw.app)


# Pinned here so that each operation is its own test (tests/test_api_errors.py pins the
# same list against the document).
OPERATIONS = [
    ("POST", "/api/calls"),
    ("POST", "/api/calls/hangup"),
    ("POST", "/api/calls/transfer"),
    ("POST", "/api/calls/redirect"),
    ("GET", "/api/calls/{call_uuid}"),
    ("POST", "/v1/calls"),
    ("GET", "/v1/calls/{call_id}"),
    ("GET", "/v1/agents"),
    ("POST", "/v1/webhooks/call-completed"),
]


def test_every_operation_is_covered(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()
              if " /api/public/v1" not in result.ok().label  # tests/test_public_schemathesis.py
              and " /api/agent-api/voice" not in result.ok().label}  # tests/test_voice_admin_schemathesis.py
    assert labels == {f"{method} {path}" for method, path in OPERATIONS}


# schemathesis' own pytest plugin (``schemathesis.pytest.from_fixture``) does not run
# under pytest 9 (it sets ``Function._nodeid``), so each operation's strategy is driven
# by Hypothesis directly.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_api_conforms_to_its_openapi_document(api_schema, api_key, ended_call, method, path, mode):
    operation = api_schema[path][method]
    checks = CHECKS[mode]
    run(operation.as_strategy(generation_mode=mode), api_key, EXAMPLES_PER_OPERATION, checks)
    if mode is GenerationMode.POSITIVE and path in CONTROL_OPERATIONS:
        strategy = operation.as_strategy(generation_mode=mode).map(naming(ended_call.uuid))
        run(strategy, api_key, EXAMPLES_PER_OPERATION, checks)
    if mode is GenerationMode.POSITIVE:  # the document's own examples too: they reach the happy paths
        for strategy in api_schema.get_strategies_from_examples(operation):
            run(strategy, api_key, 3, checks)


CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, valid_requests_are_accepted],
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance],
}


def naming(call_uuid: str):
    """A case's body with ``call_uuid`` in it instead of the generated one."""
    def rename(case):
        case.body = {**case.body, "call_uuid": call_uuid}
        return case
    return rename


def run(strategy, api_key, max_examples, checks):
    @settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers={"X-API-KEY": api_key}, checks=checks)

    check()
