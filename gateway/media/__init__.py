"""Call audio between FreeSWITCH (mod_audio_stream) and bots.

* ``codec``     G.711 mu-law <-> L16 and 8/16 kHz resampling (numpy tables);
* ``twilio``    the bot protocol (Twilio Media Streams) as an IO-free state machine;
* ``playout``   the IO-free playout queue and drift-free clock (marks, clear);
* ``bridge``    the WebSocket endpoint mod_audio_stream connects to, one session per call;
* ``connectors`` outgoing bot links: any ws/wss bot, ElevenLabs, Vapi.
"""
