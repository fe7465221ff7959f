"""An agent's env vars in its tools' text: ``{{env.NAME}}`` replaced by the value.

Only text the agent's builder wrote is substituted (a tool's URL and headers), never
parameters the conversation's LLM chose: a caller who talked the LLM into sending
``{{env.CALENDLY_TOKEN}}`` would otherwise have it sent back in the tool's answer.
"""
from __future__ import annotations

import re

from gateway.models import AgentEnvVar

PLACEHOLDER = re.compile(r"\{\{\s*env\.([A-Z_][A-Z0-9_]{0,63})\s*\}\}")


class MissingEnvVar(LookupError):
    """A placeholder names an env var the agent does not have."""


def env_values(agent) -> dict[str, str]:
    """The agent's env vars, decrypted."""
    return {row.name: row.value for row in AgentEnvVar.select().where(AgentEnvVar.agent == agent.id)}


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{env.NAME}}`` replaced; raise :class:`MissingEnvVar`."""
    def value(match):
        name = match.group(1)
        if name not in values:
            raise MissingEnvVar(f"the agent has no env var {name}")
        return values[name]
    return PLACEHOLDER.sub(value, text)


def placeholders_blanked(text: str) -> str:
    """``text`` with each placeholder replaced by a neutral word, to check its syntax."""
    return PLACEHOLDER.sub("x", text)
