"""Schemathesis over the ``/api/public/v1`` part of ``/openapi.json``: no 5xx, every answer
as documented, with generated valid and invalid requests (pk/sk headers).

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

from test_public_support import *  # noqa: F401,F403 -- fixtures
from test_public_support import auth
from gateway.campaigns import saved
from gateway.models import Account, database_from_url, migrate

EXAMPLES_PER_OPERATION = 8

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
def database_url(tmp_path):
    """SQLite only here (overrides the conftest fixture that adds PostgreSQL)."""
    url = f"sqlite:///{tmp_path / 'voicegw.sqlite3'}"
    db = database_from_url(url)
    migrate(db)
    db.close()
    return url


@pytest.fixture
def api_schema(gw, india, clip):
    Account.update(rate_limit_per_minute=0, balance=Decimal("1000")).where(Account.id == india.id).execute()
    saved.create(india, "March promo", "audio_blast", audio=clip)
    return schemathesis.openapi.from_wsgi("/openapi.json", gw.app)


def test_every_public_operation_is_documented(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {label for label in labels if "/api/public/v1" in label} == {f"{m} {p}" for m, p in OPERATIONS}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_public_api_conforms_to_its_openapi_document(api_schema, pair, method, path, mode):
    operation = api_schema[path][method]
    run(operation.as_strategy(generation_mode=mode), auth(pair), EXAMPLES_PER_OPERATION)
    if mode is GenerationMode.POSITIVE:
        for strategy in api_schema.get_strategies_from_examples(operation):
            run(strategy, auth(pair), 3)


def run(strategy, headers, max_examples):
    @settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

    check()
