"""``/api/agent-api/voice``: voice-agent-admin.txt, the surface on which autonomous agents
build and run voice agents.

Keys carry the contract's scopes (``voice:read``, ``voice:write``, ``voice:campaign:write``,
``voice:campaign:execute``, ``voice:read:all``). A key with an owner agent sees and changes
only what that owner created; ``voice:read:all`` reads across the account's owners and
never writes; nothing crosses accounts. Number provisioning and account-level voice
credentials are not reachable from here (the contract's carve-outs).

A voice agent is an ``Agent`` row (numbers route to it, ``/v1`` calls it). For an ElevenLabs
agent its profile reaches ElevenLabs as per-conversation overrides, not by syncing through
ElevenLabs' agents API (why, and what the ElevenLabs agent must allow:
``gateway.voice_agents``).

One ``SurfaceBlueprint`` module per resource, their bodies and answers in ``schemas``:
``agents``, ``numbers`` (phone numbers, attach), ``env_vars``, ``tools``, ``knowledge``,
``voices``, ``conversations``.
"""
