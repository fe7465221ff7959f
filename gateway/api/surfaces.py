"""The surfaces the gateway serves, each a declaration (``gateway.api.surface.Surface``):

* ``CONTROL``, ``/api``: a secret key, account-wide (an agent's key is refused); errors
  ``{"error": "…"}``; strict JSON bodies; the ``api`` rate-limit bucket, 120 a minute
  (its contract states no limit);
* ``AGENTS``, ``/v1``: a secret key (an agent's key sees that agent alone); ``{"error": "…"}``;
  strict JSON bodies; the ``v1`` bucket, 60 a minute (agent-calls-events.txt, "Rate
  limits"; the minimal contract states none);
* ``PUBLIC``, ``/api/public/v1``: the pk + sk pair; the envelope; any JSON object; the
  ``public`` bucket, 120 a minute (its contract);
* ``VOICE_ADMIN``, ``/api/agent-api/voice``: a secret key with ``voice:*`` scopes, whose
  owner agent (if any) limits it to what that owner created; ``{"error": "…"}``; strict
  JSON bodies; the ``voice`` bucket, 120 a minute (its contract states no limit);
* ``INGEST``, ``/v1/webhooks``: a provider's signature; ``{"error": "…"}``; the signed body
  read whole, up to 1 MiB; not rate-limited (a provider's report refused for the rate
  would be a result lost or delayed, and only a holder of the secret gets past the
  signature).

A new surface is one more declaration here, a package of its resources (a ``schemas``
module and one ``SurfaceBlueprint`` module per resource), and its blueprints in
``gateway.api.blueprints``.
"""
from __future__ import annotations

from gateway.api import auth, bodies
from gateway.api.public.envelope import DEFAULT_DETAILS, ENVELOPE
from gateway.api.ratelimit import RateLimit
from gateway.api.surface import PLAIN, Surface
from gateway.domain import Surface as DomainSurface

#: Provider reports carry transcripts: larger than the other surfaces' bodies.
MAX_INGEST_BYTES = 1024 * 1024


def _exceeded(limit: int) -> str:
    return f"Rate limit exceeded: {limit} requests per minute"


# Each bucket is named after its surface's ``Call.surface`` value (what an account's
# per-surface override names).
CONTROL_LIMIT = RateLimit(DomainSurface.CONTROL.value, 120, _exceeded)
AGENTS_LIMIT = RateLimit(DomainSurface.AGENTS.value, 60, _exceeded)
PUBLIC_LIMIT = RateLimit(DomainSurface.PUBLIC.value, 120, lambda limit: DEFAULT_DETAILS[429],
                         description="Too many requests")
VOICE_ADMIN_LIMIT = RateLimit(DomainSurface.VOICE.value, 120, _exceeded)

CONTROL = Surface(
    "call-control", "/api",
    auth=auth.SecretKey(agent_keys="This API key belongs to one agent; call control needs an account-wide key"),
    errors=PLAIN, body=bodies.StrictJson(), rate_limit=CONTROL_LIMIT,
)
AGENTS = Surface("agent-calls", "/v1", auth=auth.SecretKey(), errors=PLAIN, body=bodies.StrictJson(),
                 rate_limit=AGENTS_LIMIT)
PUBLIC = Surface(
    "public", "/api/public/v1",
    auth=auth.KeyPair(agent_keys="This API key belongs to a single agent and cannot be used with this API."),
    errors=ENVELOPE, body=bodies.AnyJsonObject("The request body must be a JSON object."),
    rate_limit=PUBLIC_LIMIT,
)
VOICE_ADMIN = Surface(
    "voice-agent-admin", "/api/agent-api/voice", auth=auth.SecretKey(), errors=PLAIN, body=bodies.StrictJson(),
    rate_limit=VOICE_ADMIN_LIMIT,
)
INGEST = Surface("provider-ingest", "/v1/webhooks", auth=auth.ProviderSignature(), errors=PLAIN,
                 max_body_bytes=MAX_INGEST_BYTES)

SURFACES = (CONTROL, AGENTS, PUBLIC, VOICE_ADMIN, INGEST)
