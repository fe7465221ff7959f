"""An agent's conversation profile (``Agent.profile``): the parts of ElevenLabs' agent
model the gateway keeps, with their limits. The API's schemas check types; these are
the limits both share."""
from __future__ import annotations

import re

MAX_PROMPT = 20_000
MAX_FIRST_MESSAGE = 2_000
MAX_VOICE_ID = 64
MAX_LLM = 64
MAX_DYNAMIC_VARIABLES = 50
MAX_VARIABLE_VALUE = 1_000
#: ElevenLabs' dynamic variable names: the ``{{name}}`` placeholders of a prompt.
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

#: The profile's keys, in the order answers list them.
FIELDS = ("prompt", "first_message", "voice_id", "llm", "dynamic_variables")


def profile_of(agent) -> dict:
    """Every profile field of ``agent``, absent ones as None (``dynamic_variables``: {})."""
    stored = agent.profile or {}
    return {name: stored.get(name, {} if name == "dynamic_variables" else None) for name in FIELDS}
