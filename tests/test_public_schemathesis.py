"""Schemathesis over the ``/api/public/v1`` part of ``/openapi.json``: no 5xx, every answer
as documented, with generated valid and invalid requests (pk/sk headers), and every
request valid by the document accepted unless for a reason its 400 names
(``openapi_support.valid_requests_are_accepted``). The operations that place calls run
once more with the account's own number, clip and campaign in place of the generated ones,
so that generated bodies get past those refusals to the checks of their other fields.

Run like ``tests/test_api_schemathesis.py`` (Hypothesis driven directly, derandomized,
bounded), on SQLite only: the surface's database behaviour has its own tests on both.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import auth
from openapi_support import hosts_do_not_resolve, valid_requests_are_accepted  # noqa: F401 -- fixture
from gateway.campaigns import saved
from gateway.models import RUN_TYPES, Account

EXAMPLES_PER_OPERATION = 8
SEEDED_EXAMPLES = 20
#: A valid mobile number of the account's region (IN).
MOBILE = "9812345678"
SEEDED_OPERATIONS = ("/api/public/v1/calls", "/api/public/v1/otp/send", "/api/public/v1/otp/verify",
                     "/api/public/v1/campaigns/{campaign_id}/trigger")

OPERATIONS = [
    ("POST", "/api/public/v1/calls"),
    ("GET", "/api/public/v1/calls"),
    ("GET", "/api/public/v1/calls/{unique_id}"),
    ("GET", "/api/public/v1/calls/{unique_id}/recording"),
    ("POST", "/api/public/v1/otp/send"),
    ("POST", "/api/public/v1/otp/verify"),
    ("GET", "/api/public/v1/campaigns"),
    ("POST", "/api/public/v1/campaigns/{campaign_id}/trigger"),
    ("GET", "/api/public/v1/account"),
]


@pytest.fixture
def database_url(sqlite_database_url):
    """SQLite only here (overrides the conftest fixture that adds PostgreSQL)."""
    return sqlite_database_url


@pytest.fixture
def campaign(india, clip):
    return saved.create(india, "March promo", "audio_blast", audio=clip)


@pytest.fixture
def api_schema(gw, india, campaign, hosts_do_not_resolve):
    Account.update(rate_limit_per_minute=0, balance=Decimal("1000")).where(Account.id == india.id).execute()
    return schemathesis.openapi.from_wsgi("/openapi.json", gw.app)


def test_every_public_operation_is_documented(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {label for label in labels if "/api/public/v1" in label} == {f"{m} {p}" for m, p in OPERATIONS}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_public_api_conforms_to_its_openapi_document(api_schema, pair, clip, campaign, method, path, mode):
    operation = api_schema[path][method]
    checks = CHECKS[mode]
    run(operation.as_strategy(generation_mode=mode), auth(pair), EXAMPLES_PER_OPERATION, checks)
    if mode is GenerationMode.POSITIVE and method == "POST" and path in SEEDED_OPERATIONS:
        strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.sampled_from(RUN_TYPES))
        strategy = strategy.map(seeded(clip.id, campaign.id))
        run(strategy, auth(pair), SEEDED_EXAMPLES, checks)
    if mode is GenerationMode.POSITIVE:
        for strategy in api_schema.get_strategies_from_examples(operation):
            run(strategy, auth(pair), 3, checks)


CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, valid_requests_are_accepted],
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance],
}


def seeded(audio_id: int, campaign_id: int):
    """A case with the account's number, and its clip and campaign where the case names one.
    A call's ``type`` is the one drawn beside the case (generation favours ``otp``, whose
    body needs least), with the clip for ``audio_blast`` and ``press1``."""
    def seed(drawn):
        case, kind = drawn
        body = {**case.body, "number": MOBILE}
        if "type" in body:
            body["type"] = kind
            body["audio_id"] = audio_id if kind != "otp" else body.get("audio_id")
        if body.get("audio_id") is not None:
            body["audio_id"] = audio_id
        case.body = body
        if "campaign_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "campaign_id": str(campaign_id)}
        return case
    return seed


def run(strategy, headers, max_examples, checks):
    @settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers=headers, checks=checks)

    check()
