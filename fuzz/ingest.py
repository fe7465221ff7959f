"""Fuzz ``POST /v1/webhooks/call-completed`` (``gateway.api.agents.ingest``) end to end:
the Flask view, the signature check, the report's validation and the write.

What must hold, whatever the body: the answer is the surface's own JSON error or its
success document, never a 5xx (an exception in the view is answered 500, with its
traceback logged, and fails the run). The input's length picks how it is signed, so that most inputs get past
the signature to the validation and the write: ``len % 4`` 0 unsigned, 1
``X-Signature`` of the raw body, 2 ``X-Webhook-Signature``, 3 a wrong signature. Before
each input the call is set back to live and its report to not received, so every valid
report is applied, not answered as a duplicate.

The database is an in-memory SQLite one, held on one connection for the whole run;
``VOICEGW_FUZZ_DATABASE_URL`` names another (say a throwaway PostgreSQL database,
which refuses some strings SQLite takes) -- the run writes into it.

Run: ``python fuzz/ingest.py -max_total_time=60`` (see ``fuzz/_harness.py``).
"""
import logging
import os
import uuid

import atheris

import _harness

with atheris.instrument_imports(include=["gateway.webhooks", "gateway.api", "gateway.peer_json"]):
    from flask import Flask
    from peewee import SqliteDatabase

    from gateway import models, secret_keys
    from gateway.models import Account, Agent, Call, ProviderCall, WebhookDelivery, connect, migrate
    from gateway.api.agents import ingest
    from gateway.api.surface import init_app
    from gateway.webhooks import signing
    from gateway.webhooks.provider import register_provider_call

PROVIDER_CALL_ID = "prov-1"  # the seeds' provider_call_id
logging.getLogger("gateway").setLevel(logging.ERROR)  # not a line per refused signature


def _database():
    url = os.environ.get("VOICEGW_FUZZ_DATABASE_URL")
    if url:
        return connect(url)
    db = SqliteDatabase(":memory:", pragmas={"foreign_keys": 1})
    models.database.initialize(db)
    db.connect()  # one connection for the whole run: the in-memory database lives with it
    return db


def _setup():
    # The run's account is its own, read by nothing else: a key of its own encrypts its secret.
    secret_keys.configure(secret_keys.SecretKeys.throwaway("the fuzz run's key"))
    db = _database()
    migrate(db)
    ProviderCall.delete().where(ProviderCall.provider_call_id == PROVIDER_CALL_ID).execute()
    account = Account.create(name=f"fuzz-{os.getpid()}-{os.urandom(4).hex()}")
    agent = Agent.create(account=account, key="akylai", name="Akylai", driver="elevenlabs", driver_ref="ag_1")
    call = Call.create(uuid=str(uuid.uuid4()), account=account, agent=agent, surface="v1", direction="outbound", status="in_progress",
                       from_number="+15550000001", to_number="+996700000000", node="fuzz")
    register_provider_call(call.uuid, PROVIDER_CALL_ID, "elevenlabs")
    app = Flask("fuzz")
    init_app(app)
    app.register_blueprint(ingest.blp)
    return app.test_client(), account.webhook_secret, call.uuid


CLIENT, SECRET, CALL_UUID = _setup()


def test_one_input(data: bytes) -> None:
    ProviderCall.update(completed_at=None, status=None, payload=None).execute()
    Call.update(status="in_progress", end_reason=None, hangup_cause=None, ended_at=None, billsec=None,
                duration_sec=None, transcript=None, analysis=None).where(Call.uuid == CALL_UUID).execute()
    WebhookDelivery.delete().execute()
    mode = len(data) % 4
    headers = {}
    if mode == 1:
        headers["X-Signature"] = signing.sign(SECRET, data)
    elif mode == 2:
        headers["X-Webhook-Signature"] = signing.timestamped_signature(SECRET, data)
    elif mode == 3:
        headers["X-Signature"] = "sha256=" + "0" * 64
    response = CLIENT.post("/v1/webhooks/call-completed", data=data, headers=headers,
                           content_type="application/json")
    body = response.get_json()
    assert response.status_code < 500, (response.status_code, body)
    assert isinstance(body, dict) and (("error" in body) != (response.status_code == 200)), body


if __name__ == "__main__":
    _harness.run("ingest", test_one_input, dictionary="json.dict")
