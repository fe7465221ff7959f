import hashlib
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest

from gateway.auth import keys
from gateway.auth.keys import (
    DEFAULT_SCOPES,
    SCOPES,
    AuthFailure,
    AuthFailureReason,
    AuthResult,
    KeyRevoked,
    UnknownScope,
    authenticate_pair,
    authenticate_secret,
    create_key,
    find_key,
    has_scope,
    normalize_scopes,
    revoke_key,
    rotate_key,
)
from gateway.models import Account, Agent, ApiKey, utcnow

Reason = AuthFailureReason


def make_account(name="acme", **fields):
    return Account.create(name=name, **fields)


def make_agent(account, key="akylai"):
    return Agent.create(account=account, key=key, name=key.title(), driver_ref="wss://bot.example.com/a")


def reason(outcome):
    assert isinstance(outcome, AuthFailure), outcome
    return outcome.reason


# -- creation -----------------------------------------------------------------


def test_create_key_formats_and_defaults(database):
    account = make_account()
    api_key, secret = create_key(account, name="  ci  ")

    assert re.fullmatch(r"pk_live_[A-Za-z0-9_-]{24}", api_key.publishable_id)
    assert re.fullmatch(r"sk_live_[A-Za-z0-9_-]{43,}", secret)
    stored = ApiKey.get_by_id(api_key.id)
    assert stored.account_id == account.id
    assert stored.name == "ci"
    assert stored.scopes == list(DEFAULT_SCOPES)
    assert "voice:read:all" not in stored.scopes
    assert stored.secret_prefix == secret[:12]
    assert stored.masked_secret == secret[:12] + "…"
    assert stored.created_at is not None
    assert stored.last_used_at is stored.revoked_at is stored.owner_agent_id is None


def test_keys_are_unique(database):
    account = make_account()
    made = [create_key(account) for _ in range(5)]
    assert len({k.publishable_id for k, _ in made}) == 5
    assert len({secret for _, secret in made}) == 5


def test_secret_is_never_stored_in_plaintext(database):
    account = make_account()
    api_key, secret = create_key(account, name="scan me")
    random_part = secret[len("sk_live_"):]

    cursor = database.execute_sql("SELECT * FROM api_keys")
    columns = [c[0] for c in cursor.description]
    rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    assert len(rows) == 1
    for column, value in rows[0].items():
        text = str(value)
        assert secret not in text, column
        # Nothing beyond the displayed prefix: no stretch of 16 characters of the random part.
        for start in range(len(random_part) - 16 + 1):
            assert random_part[start:start + 16] not in text, column
    assert rows[0]["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()


@pytest.mark.parametrize("scopes", [["otp:bogus"], ["calls:read", "nope", "otp:send"]])
def test_unknown_scopes_are_refused(database, scopes):
    account = make_account()
    with pytest.raises(UnknownScope, match="unknown scope.*known scopes: calls:read"):
        create_key(account, scopes)
    assert ApiKey.select().count() == 0


def test_scopes_are_deduplicated_in_canonical_order(database):
    api_key, _ = create_key(make_account(), ["otp:send", "calls:read", "otp:send", " voice:read:all "])
    assert ApiKey.get_by_id(api_key.id).scopes == ["calls:read", "otp:send", "voice:read:all"]


def test_scope_lists_are_checked():
    assert normalize_scopes(None) == list(DEFAULT_SCOPES)
    with pytest.raises(ValueError, match="at least one scope"):
        normalize_scopes([])
    with pytest.raises(TypeError):
        normalize_scopes("calls:read")
    assert set(DEFAULT_SCOPES) == set(SCOPES) - {"voice:read:all"}
    for scope in ("voice:read", "voice:write", "voice:campaign:write", "voice:campaign:execute",
                  "voice:read:all", "calls:read", "calls:write", "agents:read", "otp:send", "otp:verify"):
        assert SCOPES[scope]  # documented


def test_owner_agent_must_belong_to_the_account(database):
    acme, globex = make_account("acme"), make_account("globex")
    foreign = make_agent(globex)
    with pytest.raises(ValueError, match="belongs to another account"):
        create_key(acme, owner_agent=foreign)

    mine = make_agent(acme)
    api_key, secret = create_key(acme, ["voice:read"], owner_agent=mine)
    result = authenticate_secret(secret)
    assert result.owner_agent_id == mine.id
    assert result.scopes == frozenset({"voice:read"})


def test_deleting_the_owner_agent_deletes_its_keys(database):
    account = make_account()
    agent = make_agent(account)
    create_key(account, owner_agent=agent)
    kept, _ = create_key(account)
    Agent.delete().where(Agent.id == agent.id).execute()
    assert [k.id for k in ApiKey.select()] == [kept.id]


# -- authentication: the secret alone -----------------------------------------


def test_authenticate_secret(database):
    account = make_account()
    api_key, secret = create_key(account, ["calls:read", "calls:write"])

    result = authenticate_secret(secret)
    assert isinstance(result, AuthResult) and result
    assert result.account.id == account.id
    assert result.api_key.id == api_key.id
    assert result.scopes == frozenset({"calls:read", "calls:write"})
    assert result.owner_agent_id is None
    assert ApiKey.get_by_id(api_key.id).last_used_at is not None
    # Surrounding whitespace from a header is tolerated.
    assert authenticate_secret(f"  {secret} ")


@pytest.mark.parametrize("missing", [None, "", "   ", b"sk_live_bytes"])
def test_missing_secret(database, missing):
    assert reason(authenticate_secret(missing)) == Reason.MISSING_CREDENTIALS


def test_unknown_secret(database):
    _, secret = create_key(make_account())
    assert reason(authenticate_secret("sk_live_" + "A" * 43)) == Reason.UNKNOWN_KEY
    assert reason(authenticate_secret(secret[:-1])) == Reason.UNKNOWN_KEY
    assert reason(authenticate_secret("garbage")) == Reason.UNKNOWN_KEY
    # The publishable id is not a secret.
    api_key, _ = create_key(make_account("other"))
    assert reason(authenticate_secret(api_key.publishable_id)) == Reason.UNKNOWN_KEY
    # Nor is the stored hash.
    assert reason(authenticate_secret(api_key.secret_hash)) == Reason.UNKNOWN_KEY


def test_failure_is_falsy():
    assert not AuthFailure(Reason.UNKNOWN_KEY)


def test_revoked_key(database):
    api_key, secret = create_key(make_account())
    assert revoke_key(api_key) is True
    assert api_key.revoked
    assert ApiKey.get_by_id(api_key.id).revoked_at is not None
    assert revoke_key(api_key) is False  # idempotent
    assert reason(authenticate_secret(secret)) == Reason.KEY_REVOKED
    assert reason(authenticate_pair(api_key.publishable_id, secret)) == Reason.KEY_REVOKED
    # Without the secret, nobody learns that the key was revoked.
    assert reason(authenticate_pair(api_key.publishable_id, "sk_live_wrong")) == Reason.WRONG_SECRET


def test_rotation_invalidates_the_old_secret(database):
    api_key, old = create_key(make_account())
    publishable_id = api_key.publishable_id

    new = rotate_key(api_key)

    assert new != old and new.startswith("sk_live_")
    stored = ApiKey.get_by_id(api_key.id)
    assert stored.publishable_id == publishable_id
    assert stored.secret_prefix == new[:12]
    assert stored.rotated_at is not None
    assert reason(authenticate_secret(old)) == Reason.UNKNOWN_KEY
    assert reason(authenticate_pair(publishable_id, old)) == Reason.WRONG_SECRET
    assert authenticate_secret(new).api_key.id == api_key.id
    assert authenticate_pair(publishable_id, new).api_key.id == api_key.id


def test_a_revoked_key_cannot_be_rotated_back_to_life(database):
    api_key, _ = create_key(make_account())
    revoke_key(api_key)
    with pytest.raises(KeyRevoked, match="revoked"):
        rotate_key(api_key)
    # Even through a stale copy that does not know it was revoked.
    stale, secret = create_key(make_account("other"))
    revoke_key(ApiKey.get_by_id(stale.id))
    with pytest.raises(KeyRevoked):
        rotate_key(stale)
    assert reason(authenticate_secret(secret)) == Reason.KEY_REVOKED


def test_suspended_account(database):
    account = make_account()
    api_key, secret = create_key(account)
    account.status = "suspended"
    account.save()
    assert reason(authenticate_secret(secret)) == Reason.ACCOUNT_SUSPENDED
    assert reason(authenticate_pair(api_key.publishable_id, secret)) == Reason.ACCOUNT_SUSPENDED
    assert reason(authenticate_pair(api_key.publishable_id, "sk_live_nope")) == Reason.WRONG_SECRET
    account.status = "active"
    account.save()
    assert authenticate_secret(secret)


def test_api_disabled(database):
    account = make_account(api_enabled=False)
    api_key, secret = create_key(account)
    assert reason(authenticate_secret(secret)) == Reason.API_DISABLED
    assert reason(authenticate_pair(api_key.publishable_id, secret)) == Reason.API_DISABLED


def test_a_key_only_ever_authenticates_as_its_own_account(database):
    acme, globex = make_account("acme"), make_account("globex")
    acme_key, acme_secret = create_key(acme)
    globex_key, globex_secret = create_key(globex)

    assert authenticate_secret(acme_secret).account.id == acme.id
    assert authenticate_secret(globex_secret).account.id == globex.id
    assert authenticate_pair(acme_key.publishable_id, acme_secret).account.id == acme.id
    # A pk of one account with the sk of another: refused, not resolved to either.
    assert reason(authenticate_pair(acme_key.publishable_id, globex_secret)) == Reason.WRONG_SECRET
    assert reason(authenticate_pair(globex_key.publishable_id, acme_secret)) == Reason.WRONG_SECRET
    # Suspending one account leaves the other alone.
    globex.status = "suspended"
    globex.save()
    assert authenticate_secret(acme_secret).account.id == acme.id


# -- authentication: the pk + sk pair -----------------------------------------


def test_authenticate_pair(database):
    account = make_account()
    api_key, secret = create_key(account, ["otp:send"])
    result = authenticate_pair(api_key.publishable_id, secret)
    assert result.account.id == account.id
    assert result.api_key.id == api_key.id
    assert result.scopes == frozenset({"otp:send"})


def test_pair_situations(database):
    account = make_account()
    api_key, secret = create_key(account)
    other_key, other_secret = create_key(account)
    pk = api_key.publishable_id

    assert reason(authenticate_pair(None, secret)) == Reason.MISSING_CREDENTIALS
    assert reason(authenticate_pair("", secret)) == Reason.MISSING_CREDENTIALS
    assert reason(authenticate_pair(None, None)) == Reason.MISSING_CREDENTIALS
    assert reason(authenticate_pair("pk_live_" + "x" * 24, secret)) == Reason.UNKNOWN_KEY
    assert reason(authenticate_pair("pk_live_" + "x" * 24, None)) == Reason.UNKNOWN_KEY
    assert reason(authenticate_pair(pk, None)) == Reason.WRONG_SECRET
    assert reason(authenticate_pair(pk, "")) == Reason.WRONG_SECRET
    assert reason(authenticate_pair(pk, "sk_live_wrong")) == Reason.WRONG_SECRET
    # The pk of one key with the sk of another key of the same account.
    assert reason(authenticate_pair(pk, other_secret)) == Reason.WRONG_SECRET
    assert reason(authenticate_pair(other_key.publishable_id, secret)) == Reason.WRONG_SECRET
    # The secret where the pk belongs.
    assert reason(authenticate_pair(secret, pk)) == Reason.UNKNOWN_KEY


def test_every_outcome_hashes_and_compares_once(database, monkeypatch):
    """A miss does the work of a hit, so that timing tells nothing."""
    api_key, secret = create_key(make_account())
    calls = {"hash": 0, "compare": 0}
    real_hash, real_compare = keys.hash_secret, keys.hmac.compare_digest

    def counting_hash(value):
        calls["hash"] += 1
        return real_hash(value)

    def counting_compare(a, b):
        calls["compare"] += 1
        assert len(a) == len(b) == 64
        return real_compare(a, b)

    monkeypatch.setattr(keys, "hash_secret", counting_hash)
    monkeypatch.setattr(keys, "hmac", SimpleNamespace(compare_digest=counting_compare))
    attempts = [
        lambda: authenticate_secret(secret),
        lambda: authenticate_secret("sk_live_unknown"),
        lambda: authenticate_pair(api_key.publishable_id, secret),
        lambda: authenticate_pair(api_key.publishable_id, "sk_live_wrong"),
        lambda: authenticate_pair(api_key.publishable_id, None),
        lambda: authenticate_pair("pk_live_unknown", secret),
    ]
    for attempt in attempts:
        calls.update(hash=0, compare=0)
        attempt()
        assert calls == {"hash": 1, "compare": 1}


# -- last_used_at -------------------------------------------------------------


def test_last_used_at_is_written_at_most_once_a_minute(database):
    api_key, secret = create_key(make_account())
    t0 = utcnow().replace(microsecond=0)

    assert authenticate_secret(secret, now=t0)
    assert ApiKey.get_by_id(api_key.id).last_used_at == t0
    assert authenticate_pair(api_key.publishable_id, secret, now=t0 + timedelta(seconds=59))
    assert ApiKey.get_by_id(api_key.id).last_used_at == t0
    assert authenticate_secret(secret, now=t0 + timedelta(seconds=61))
    assert ApiKey.get_by_id(api_key.id).last_used_at == t0 + timedelta(seconds=61)


def test_failed_attempts_do_not_touch_last_used_at(database):
    account = make_account(api_enabled=False)
    api_key, secret = create_key(account)
    authenticate_secret(secret)
    authenticate_pair(api_key.publishable_id, "sk_live_wrong")
    assert ApiKey.get_by_id(api_key.id).last_used_at is None


# -- scopes -------------------------------------------------------------------


def test_has_scope(database):
    _, secret = create_key(make_account(), ["calls:read", "voice:read:all"])
    result = authenticate_secret(secret)
    assert has_scope(result, "calls:read")
    assert not has_scope(result, "calls:write")
    assert has_scope(result, "voice:read")  # implied by voice:read:all
    assert not has_scope(result, "voice:write")
    with pytest.raises(UnknownScope):
        has_scope(result, "calls:raed")


def test_default_key_has_own_data_scopes_only(database):
    _, secret = create_key(make_account())
    result = authenticate_secret(secret)
    for scope in DEFAULT_SCOPES:
        assert has_scope(result, scope)
    assert not has_scope(result, "voice:read:all")


def test_find_key(database):
    api_key, _ = create_key(make_account())
    assert find_key(api_key.publishable_id).id == api_key.id
    assert find_key("pk_live_nothing") is None
