"""``/voices``: ElevenLabs' voices for the account (``gateway.voice_agents.voices``), with
the account's ElevenLabs key, which an operator sets and this surface never shows."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from gateway.api.common import gateway
from gateway.api.errors import fail
from gateway.api.surface import SurfaceBlueprint
from gateway.api.surfaces import VOICE_ADMIN
from gateway.api.voice_admin.schemas import VoiceListSchema
from gateway.voice_agents.voices import VoicesUnavailable, list_voices, rest_url

blp = SurfaceBlueprint(VOICE_ADMIN, "voice-voices", __name__, description="ElevenLabs' voice library.")

NO_KEY = "The account has no ElevenLabs API key; an operator sets it (voicegw accounts set --elevenlabs-key)"


def elevenlabs_key(account) -> str | None:
    """The account's ElevenLabs API key (the one setting this surface reads and never shows)."""
    return account.elevenlabs_api_key


@blp.route("/voices")
class Voices(MethodView):
    @blp.requires("voice:read")
    @blp.response(200, VoiceListSchema)
    @blp.error(409, NO_KEY)
    @blp.error(502, "ElevenLabs did not give the list (unreachable, refused the key, or answered an error)")
    def get(self):
        """List the ElevenLabs voices of the account"""
        api_key = elevenlabs_key(g.auth.account)
        if not api_key:
            fail(409, NO_KEY)
        try:
            voices = list_voices(g.auth.account.id, api_key, rest_url(gateway().settings.media.elevenlabs_url))
        except VoicesUnavailable as exc:
            fail(502, str(exc))
        return {"voices": voices}
