"""Any bot that speaks Twilio Media Streams over ws:// or wss:// (pipecat, vocode, your own).

On open: ``connected`` then ``start`` (media-protocols.md §1.4: the order pipecat's
detection reads); then ``media`` every 20 ms, ``dtmf``, ``mark`` echoes; ``stop`` before
a polite close (redirect, hangup).  What the bot sends goes through ``BotStream.receive``.

The URL is the customer's: the socket is opened only to an address the outbound policy
allows (``guarded``, with the process's ``gateway.net_policy.policy``).
"""

from __future__ import annotations

from gateway import net_policy
from gateway.media.connectors.base import BotLink, CallInfo, WsChannel, redact
from gateway.media.connectors.guarded import open_websocket
from gateway.media.twilio import BotStream, ProtocolIssue, account_sid, call_sid, new_stream_sid


class WebsocketBotLink(BotLink):
    kind = "websocket"

    def __init__(self, url: str, call: CallInfo, *, connect_timeout: float = 3.0) -> None:
        super().__init__(redact(url))
        params = {"from_number": call.from_number, "to_number": call.to_number, "call_uuid": call.call_uuid,
                  "account_id": str(call.account_id), "direction": call.direction, **call.custom_args}
        self.stream = BotStream(new_stream_sid(), call_sid(call.call_uuid), account_sid(call.account_id), params)
        ws = open_websocket(url, headers=[], connect_timeout=connect_timeout, policy=net_policy.policy)
        self.channel = WsChannel(url, ws=ws)
        # The two first messages go out before anything else can be queued.
        self.channel.send_text(self.stream.connected())
        self.channel.send_text(self.stream.start())

    def _events(self, kind: str, data: str | bytes) -> list:
        return self.stream.receive(data)  # it refuses binary frames itself

    def _send(self, kind: str, value) -> None:
        if kind == "audio":
            # its place in the stream: what was sent and what was dropped before it
            at = (self.stream.audio_bytes + self.dropped_audio_bytes) // 8
            self.channel.send_text(self.stream.media(value, at))
        elif kind == "dtmf":
            self.channel.send_text(self.stream.dtmf(value))
        elif kind == "mark":
            self.channel.send_text(self.stream.mark(value))

    def _goodbye(self, stop: bool) -> None:
        if stop:
            try:
                self.channel.send_text(self.stream.stop())
            except Exception:
                pass
        self.channel.close(1000)

    def _abort(self) -> None:
        self.channel.shutdown()


__all__ = ["WebsocketBotLink", "ProtocolIssue"]
