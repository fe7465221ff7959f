"""``/agents/:id/env-vars``: names listed, values set and deleted, encrypted at rest and
never returned; scopes and isolation."""
from __future__ import annotations

from peewee import Table

from voice_admin_support import *  # noqa: F401,F403 -- fixtures
from voice_admin_support import PREFIX, new_agent
from gateway import models
from gateway.models import AgentEnvVar


def test_set_list_delete_encrypted(client, keys):
    agent = new_agent(client, keys.one)["id"]
    path = f"{PREFIX}/agents/{agent}/env-vars"
    assert client.put(f"{path}/CALENDLY_TOKEN", json={"value": "cal-secret-1"}, headers=keys.one).json == {
        "name": "CALENDLY_TOKEN", "set": True}
    assert client.put(f"{path}/CALENDLY_TOKEN", json={"value": "cal-secret-2"}, headers=keys.one).status_code == 200
    assert client.put(f"{path}/CRM_KEY", json={"value": "crm"}, headers=keys.one).status_code == 200
    listed = client.get(path, headers=keys.one)
    assert listed.json == {"env_vars": ["CALENDLY_TOKEN", "CRM_KEY"]}
    assert "cal-secret" not in client.get(f"{PREFIX}/agents/{agent}", headers=keys.one).get_data(as_text=True)
    row = AgentEnvVar.get(AgentEnvVar.name == "CALENDLY_TOKEN")
    assert row.value == "cal-secret-2"
    stored = Table("agent_env_vars").bind(models.database).select(Table("agent_env_vars").c.value).where(
        Table("agent_env_vars").c.id == row.id).scalar()
    assert stored.startswith("fernet:") and "cal-secret" not in stored
    assert client.delete(f"{path}/CRM_KEY", headers=keys.one).json == {"name": "CRM_KEY", "set": False}
    assert client.delete(f"{path}/CRM_KEY", headers=keys.one).json == {"error": "Env var not found"}
    assert client.get(path, headers=keys.one).json == {"env_vars": ["CALENDLY_TOKEN"]}


def test_bad_input(client, keys):
    path = f"{PREFIX}/agents/{new_agent(client, keys.one)['id']}/env-vars"
    for name in ("lower", "1ABC", "A-B", "A" * 65):
        response = client.put(f"{path}/{name}", json={"value": "v"}, headers=keys.one)
        assert response.status_code == 400 and "env var name" in response.json["error"]
    for body in ({}, {"value": 5}, {"value": ""}, {"value": "v", "other": 1}):
        response = client.put(f"{path}/TOKEN", json=body, headers=keys.one)
        assert response.status_code == 400 and list(response.json) == ["error"], body


def test_scopes_and_isolation(client, keys):
    theirs = new_agent(client, keys.two)["id"]
    path = f"{PREFIX}/agents/{theirs}/env-vars"
    assert client.put(f"{path}/TOKEN", json={"value": "two's"}, headers=keys.two).status_code == 200
    for auth in (keys.one, keys.b):
        assert client.get(path, headers=auth).status_code == 404
        assert client.put(f"{path}/TOKEN", json={"value": "x"}, headers=auth).status_code == 404
        assert client.delete(f"{path}/TOKEN", headers=auth).status_code == 404
    assert client.get(path, headers=keys.all).json == {"env_vars": ["TOKEN"]}
    for auth in (keys.all, keys.read):
        response = client.put(f"{path}/TOKEN", json={"value": "x"}, headers=auth)
        assert response.status_code == 403 and "voice:write" in response.json["error"]
        assert client.delete(f"{path}/TOKEN", headers=auth).status_code == 403
    assert client.get(path, headers=keys.none).status_code == 403
    assert AgentEnvVar.get().value == "two's"
