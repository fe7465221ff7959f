"""Voice verification codes (OTP).

``codes``    IO-free: generate a code, hash it with a per-request salt, check it in
             constant time, and the sentence the call speaks.
``service``  the rules of send and verify over the database: throttle, TTL, attempts.
"""
