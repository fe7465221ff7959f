"""The wallet: per-minute rates, call charges, top-ups.

``rates``   IO-free: the rate that applies to a number, the cost of a call.
``ledger``  the database side: charge calls inside the controller's transaction
            (``billing_hook``), credit or adjust a balance, check a balance covers a call.
"""
