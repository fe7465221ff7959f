"""Voice agents as calls use them: what an agent's conversation starts with, the tools
it runs, the knowledge it is given, the voices it may speak with.

An agent is an ``Agent`` row; the voice-agent admin surface (``gateway.api.voice_admin``)
builds it, and phone numbers and calls already go to agents. For an ElevenLabs agent the
configuration reaches ElevenLabs as per-conversation overrides
(:func:`conversation_initiation`), not by syncing through ElevenLabs' agents API: the
gateway's row stays the one source of truth, a change applies from the next call without
a second system to keep in step (or to fail half-way), and the account's ElevenLabs key
is needed only to list voices. The price: the ElevenLabs agent named by ``driver_ref``
must allow those overrides (its Security settings: prompt, first message, language,
voice and LLM), or ElevenLabs refuses the conversation's initiation data.
"""
from gateway.voice_agents.initiation import conversation_initiation

__all__ = ["conversation_initiation"]
