"""The surfaces the gateway serves, each a declaration (``gateway.api.surface.Surface``):

* ``CONTROL``, ``/api``: a secret key, account-wide (an agent's key is refused); errors
  ``{"error": "…"}``; strict JSON bodies; the ``key`` rate-limit bucket;
* ``AGENTS``, ``/v1``: a secret key (an agent's key sees that agent alone); ``{"error": "…"}``;
  strict JSON bodies; the ``key`` bucket, shared with ``/api``;
* ``PUBLIC``, ``/api/public/v1``: the pk + sk pair; the envelope; any JSON object; its own
  ``public`` bucket, with ``RateLimit-*`` headers;
* ``INGEST``, ``/v1/webhooks``: a provider's signature; ``{"error": "…"}``; the signed body
  read whole, up to 1 MiB; not rate-limited.

A new surface is one more declaration here, a package of its resources (a ``schemas``
module and one ``SurfaceBlueprint`` module per resource), and its blueprints in
``gateway.api.blueprints``.
"""
from __future__ import annotations

from gateway.api import auth, bodies
from gateway.api.public.envelope import DEFAULT_DETAILS, ENVELOPE
from gateway.api.ratelimit import RateLimit
from gateway.api.surface import PLAIN, Surface

#: Provider reports carry transcripts: larger than the other surfaces' bodies.
MAX_INGEST_BYTES = 1024 * 1024

#: ``/api`` and ``/v1`` count in one bucket: the secret keys' limit.
KEY_LIMIT = RateLimit("key", lambda limit: f"Rate limit exceeded: {limit} requests per minute")

CONTROL = Surface(
    "call-control", "/api",
    auth=auth.SecretKey(agent_keys="This API key belongs to one agent; call control needs an account-wide key"),
    errors=PLAIN, body=bodies.StrictJson(), rate_limit=KEY_LIMIT,
)
AGENTS = Surface("agent-calls", "/v1", auth=auth.SecretKey(), errors=PLAIN, body=bodies.StrictJson(),
                 rate_limit=KEY_LIMIT)
PUBLIC = Surface(
    "public", "/api/public/v1",
    auth=auth.KeyPair(agent_keys="This API key belongs to a single agent and cannot be used with this API."),
    errors=ENVELOPE, body=bodies.AnyJsonObject("The request body must be a JSON object."),
    rate_limit=RateLimit("public", lambda limit: DEFAULT_DETAILS[429], headers=True, description="Too many requests"),
)
INGEST = Surface("provider-ingest", "/v1/webhooks", auth=auth.ProviderSignature(), errors=PLAIN,
                 max_body_bytes=MAX_INGEST_BYTES)

SURFACES = (CONTROL, AGENTS, PUBLIC, INGEST)
