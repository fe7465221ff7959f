"""``/api/public/v1``: the public calling API (contract: public-calling-api.txt).

=========================================  ==================  ======================================
endpoint                                   scope               module
=========================================  ==================  ======================================
POST /calls                                calls:write         ``calls`` (``otp`` type: + otp:send)
GET  /calls                                calls:read          ``calls``, ``listing``
GET  /calls/{unique_id}                    calls:read          ``calls``
GET  /calls/{unique_id}/recording          recordings:read     ``calls``
POST /otp/send                             otp:send            ``otp``
POST /otp/verify                           otp:verify          ``otp``
GET  /campaigns                            campaigns:read      ``campaigns``
POST /campaigns/{id}/trigger               campaigns:trigger   ``campaigns``
GET  /account                              account:read        ``account``
=========================================  ==================  ======================================

The surface (``gateway.api.surfaces.PUBLIC``): the pk/sk pair in ``x-api-key``/
``x-api-secret``, Basic, or ``secret`` in the body (``gateway.api.auth.KeyPair``); every
answer is the envelope (``envelope``); every counted request gets ``RateLimit-*`` headers
(``gateway.api.ratelimit``, shared by all processes through the database).

What makes these calls run (their playback scripts, the wallet's billing, the per-day
call counts) is wired by ``gateway.runtime``.
"""
