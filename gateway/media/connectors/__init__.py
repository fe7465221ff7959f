"""Outgoing bot links.  ``open_link(target, call, …)`` picks the connector by kind:
``websocket`` (a ws/wss URL speaking Twilio Media Streams), ``elevenlabs``, ``vapi``."""

from __future__ import annotations

from gateway.media.connectors.base import BotLink, BotUnavailable, CallInfo, redact

KINDS = ("websocket", "elevenlabs", "vapi")


def open_link(kind: str, ref: str, call: CallInfo, *, connect_timeout: float = 3.0, api_key: str | None = None,
              elevenlabs_url: str | None = None, vapi_url: str | None = None, run_tool=None,
              config_override: dict | None = None) -> BotLink:
    """Connect (blocking this greenlet up to about ``connect_timeout``); raise
    ``BotUnavailable`` with a reason fit for the call log.

    For ElevenLabs, ``run_tool`` runs the agent's client tools and ``config_override`` is
    its ``conversation_config_override`` (``connectors.elevenlabs``); other kinds take neither."""
    if kind == "websocket":
        from gateway.media.connectors.websocket_bot import WebsocketBotLink

        return WebsocketBotLink(ref, call, connect_timeout=connect_timeout)
    if kind == "elevenlabs":
        from gateway.media.connectors.elevenlabs import DEFAULT_URL, ElevenLabsLink

        return ElevenLabsLink(ref, call, api_key=api_key, base_url=elevenlabs_url or DEFAULT_URL,
                              connect_timeout=connect_timeout, run_tool=run_tool, config_override=config_override)
    if kind == "vapi":
        from gateway.media.connectors.vapi import DEFAULT_URL, VapiLink

        return VapiLink(ref, call, api_key=api_key, base_url=vapi_url or DEFAULT_URL, connect_timeout=connect_timeout)
    raise BotUnavailable(f"unknown connector {kind!r}")


__all__ = ["BotLink", "BotUnavailable", "CallInfo", "KINDS", "open_link", "redact"]
