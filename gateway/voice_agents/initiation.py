"""What an ElevenLabs conversation is started with: the agent's profile as
``conversation_initiation_client_data`` (the message ElevenLabs' Conversational AI
takes first on its WebSocket), with the call's variables as dynamic variables."""
from __future__ import annotations

from gateway.voice_agents.knowledge import with_knowledge
from gateway.voice_agents.profile import MAX_VARIABLE_VALUE, VARIABLE_NAME, profile_of


def conversation_initiation(agent, call_variables: dict) -> dict:
    """The initiation message for a call to ``agent``: its prompt (with its knowledge
    base), first message, language and LLM as the agent override, its voice as the TTS
    override, and ``dynamic_variables``: the agent's defaults, then the call's variables
    (a call's ``custom_args``) over them. Only ElevenLabs' scalar kinds are kept (text,
    numbers, booleans); other values and names that are not variable names are left out."""
    profile = profile_of(agent)
    agent_override: dict = {}
    prompt = with_knowledge(profile["prompt"], agent)
    if prompt or profile["llm"]:
        agent_override["prompt"] = {key: value for key, value in (("prompt", prompt), ("llm", profile["llm"]))
                                    if value}
    if profile["first_message"]:
        agent_override["first_message"] = profile["first_message"]
    # ElevenLabs names languages by their ISO 639-1 code: "hi", not "hi-IN".
    agent_override["language"] = agent.language.split("-")[0].lower()
    override: dict = {"agent": agent_override}
    if profile["voice_id"]:
        override["tts"] = {"voice_id": profile["voice_id"]}
    variables = {**profile["dynamic_variables"], **_scalars(call_variables or {})}
    return {"type": "conversation_initiation_client_data", "conversation_config_override": override,
            "dynamic_variables": variables}


def _scalars(values: dict) -> dict:
    kept = {}
    for name, value in values.items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            continue
        if isinstance(value, str):
            kept[name] = value[:MAX_VARIABLE_VALUE]
        elif isinstance(value, (bool, int, float)):
            kept[name] = value
    return kept
