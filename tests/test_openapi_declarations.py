"""The forms the OpenAPI document declares are forms the views' own checks accept: values
drawn from a declared pattern (or a declared map) pass the check behind the field, called
directly. The schemathesis runs test the same over HTTP, where other refusals come first."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_support import *  # noqa: F401,F403 -- fixtures
from gateway.calls.scripts import check_dtmf_map
from gateway.dialplan_names import transfer_target
from gateway.models.validators import check_media_target, check_webhook_url
from gateway.otp import codes

EXAMPLES = 300


@pytest.fixture
def database_url(sqlite_database_url):
    """SQLite only: the document does not depend on the database."""
    return sqlite_database_url


@pytest.fixture
def document(client):
    return client.get("/openapi.json").json


@pytest.fixture
def components(document):
    return document["components"]["schemas"]


def test_a_400_is_documented_where_there_is_something_to_refuse(document):
    """A body or a query string can be refused with a 400; a path alone is found or not
    (404), and a view without arguments has nothing to refuse."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            takes = "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", []))
            assert ("400" in operation["responses"]) == takes, f"{method.upper()} {path}"


def _url(checker):
    """``checker`` without the outbound policy (a test does not resolve names), and the host
    in a form the system resolver takes (IDNA: no empty label, none over 63 characters)."""
    def check(value: str) -> None:
        host = urlsplit(checker(value, check_host=False)).hostname
        if host:
            host.encode("idna")
    return check


def _sip_uris(value: str) -> None:
    if value.lower().startswith("sip"):  # the numbers are the numbering plan's to judge
        transfer_target(value)


@pytest.mark.parametrize("schema, field, check", [
    ("PlaceCall", "socket_url", _url(check_media_target)),
    ("Redirect", "media_server", _url(check_media_target)),
    ("PlaceCall", "webhook_url", _url(check_webhook_url)),
    ("Transfer", "destination_number", _sip_uris),
    ("PublicPlaceCall", "code", lambda value: codes.is_code(value) or pytest.fail(f"{value!r} is no code")),
])
def test_a_declared_pattern_passes_its_check(components, schema, field, check):
    declared = components[schema]["properties"][field]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(declared["pattern"], fullmatch=True).filter(
        lambda value: declared.get("minLength", 0) <= len(value) <= declared.get("maxLength", len(value))))
    def passes(value):
        check(value)

    passes()


def test_a_declared_dtmf_map_passes_its_check(components):
    declared = components["PublicPlaceCall"]["properties"]["dtmf_map"]
    assert declared["additionalProperties"] is False
    keys = st.sampled_from(sorted(declared["properties"]))
    actions = st.sampled_from(sorted({a for p in declared["properties"].values() for a in p["enum"]}))

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(keys, actions, min_size=declared["minProperties"]))
    def passes(value):
        assert check_dtmf_map(value) == value

    passes()
