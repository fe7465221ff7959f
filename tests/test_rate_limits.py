"""Each surface's rate limit: its contract's default, counted in the database in a bucket
of its own, the ``RateLimit-*`` headers on every counted answer and ``Retry-After`` on
its 429, and an account's overrides (per surface, else on every surface)."""
import uuid

import pytest
from flask.views import MethodView

from api_support import account_a, account_b, gw, key_a  # noqa: F401
from gateway.api import create_app, ratelimit
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.auth.keys import create_key
from gateway.models import Account, RateLimitWindow

NOW = 1_800_000_015.0  # 15 s into a minute: the window resets in 45 s
WINDOW = 1_800_000_000


def _voice_probe() -> SurfaceBlueprint:
    """A view on the voice-agent admin surface, as its resources are declared (their
    endpoints are another change's)."""
    blp = SurfaceBlueprint(VOICE_ADMIN, "voice-probe", __name__, url_prefix="/probe")

    @blp.route("")
    class Probe(MethodView):
        @blp.requires("voice:read")
        def get(self):
            return {"ok": True}

    return blp


@pytest.fixture
def client(gw, monkeypatch):  # noqa: F811
    monkeypatch.setattr(ratelimit, "clock", lambda: NOW)
    gw.app.register_blueprint(_voice_probe())
    return gw.app.test_client()


@pytest.fixture
def pair(account_a):  # noqa: F811
    api_key, secret = create_key(account_a)
    return {"x-api-key": api_key.publishable_id, "x-api-secret": secret}


def request_of(surface, key, pair):
    """One cheap request of each surface: (path, headers)."""
    return {
        "api": (f"/api/calls/{uuid.uuid4()}", {"X-API-KEY": key}),
        "v1": ("/v1/agents", {"Authorization": f"Bearer {key}"}),
        "public": ("/api/public/v1/account", pair),
        "voice": ("/api/agent-api/voice/probe", {"Authorization": f"Bearer {key}"}),
    }[surface]


def get(client, surface, key, pair):
    path, headers = request_of(surface, key, pair)
    return client.get(path, headers=headers)


def used(account, bucket, hits):
    RateLimitWindow.insert(account=account.id, bucket=bucket, window_start=WINDOW, hits=hits).execute()


LIMITED = {
    "api": {"error": "Rate limit exceeded: 120 requests per minute"},
    "v1": {"error": "Rate limit exceeded: 60 requests per minute"},
    "public": {"status": "error", "code": 429, "unique_id": None, "reference_id": None,
               "details": "Too many requests. Please slow down and retry shortly."},
    "voice": {"error": "Rate limit exceeded: 120 requests per minute"},
}
DEFAULTS = {"api": 120, "v1": 60, "public": 120, "voice": 120}


@pytest.mark.parametrize("surface", ["api", "v1", "public", "voice"])
def test_each_surface_has_its_contracts_limit_with_headers_and_retry_after(client, account_a, key_a, pair,
                                                                          surface):
    path, headers = request_of(surface, key_a, pair)
    limit = DEFAULTS[surface]
    first = client.get(path, headers=headers)
    assert first.status_code in (200, 404)
    assert (first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"],
            first.headers["RateLimit-Reset"]) == (str(limit), str(limit - 1), "45")
    assert "Retry-After" not in first.headers
    RateLimitWindow.update(hits=limit - 1).where(RateLimitWindow.account == account_a.id).execute()
    last = client.get(path, headers=headers)
    assert last.status_code in (200, 404) and last.headers["RateLimit-Remaining"] == "0"
    limited = client.get(path, headers=headers)
    assert limited.status_code == 429
    assert limited.json == LIMITED[surface]
    assert (limited.headers["RateLimit-Limit"], limited.headers["RateLimit-Remaining"],
            limited.headers["RateLimit-Reset"], limited.headers["Retry-After"]) == (str(limit), "0", "45", "45")
    assert [w.bucket for w in RateLimitWindow.select()] == [surface]


def test_surfaces_count_apart(client, account_a, key_a, pair):
    used(account_a, "v1", 60)
    assert get(client, "v1", key_a, pair).status_code == 429
    for surface in ("api", "public", "voice"):
        path, headers = request_of(surface, key_a, pair)
        assert client.get(path, headers=headers).headers["RateLimit-Remaining"] == str(DEFAULTS[surface] - 1)


def test_an_accounts_overrides_per_surface_then_on_every_surface(client, account_a, key_a, pair):
    Account.update(rate_limit_per_minute=300, rate_limits={"v1": 90}).where(Account.id == account_a.id).execute()
    assert get(client, "v1", key_a, pair).headers["RateLimit-Limit"] == "90"
    assert get(client, "api", key_a, pair).headers["RateLimit-Limit"] == "300"
    Account.update(rate_limit_per_minute=None).where(Account.id == account_a.id).execute()
    assert get(client, "public", key_a, pair).headers["RateLimit-Limit"] == "120"
    Account.update(rate_limits={"v1": 0}).where(Account.id == account_a.id).execute()
    unlimited = get(client, "v1", key_a, pair)
    assert unlimited.status_code == 200 and "RateLimit-Limit" not in unlimited.headers


def test_one_account_does_not_throttle_another(client, account_a, account_b, key_a, pair):  # noqa: F811
    used(account_a, "v1", 60)
    _, key_b = create_key(account_b)
    assert get(client, "v1", key_a, pair).status_code == 429
    other = get(client, "v1", key_b, pair)
    assert other.status_code == 200 and other.headers["RateLimit-Remaining"] == "59"


def test_two_apps_on_one_database_share_the_v1_count(gw, client, account_a, key_a, pair):  # noqa: F811
    Account.update(rate_limits={"v1": 5}).where(Account.id == account_a.id).execute()
    path, headers = request_of("v1", key_a, pair)
    second = create_app(gw).test_client()
    codes = [(client if i % 2 else second).get(path, headers=headers).status_code for i in range(8)]
    assert codes == [200] * 5 + [429] * 3


def test_an_unauthenticated_request_is_not_counted(client, account_a):
    answer = client.get("/v1/agents", headers={"Authorization": "Bearer sk_live_nope"})
    assert answer.status_code == 401 and "RateLimit-Limit" not in answer.headers
    assert RateLimitWindow.select().count() == 0
