"""Voice verification codes (OTP).

``codes``    IO-free: generate a code, hash it with a per-request salt, check it in
             constant time, and the words the call speaks around it.
``readout``  the code as audio (digit prompts in ``prompts/``), in a file FreeSWITCH plays:
             the code never reaches FreeSWITCH as text, so no log or event shows it.
``service``  the rules of send and verify over the database: throttle, TTL, attempts, the
             per-number guess cap.
"""
