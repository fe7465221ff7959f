"""The body of an outbound HTTP answer, read with a size and a time bound: knowledge
documents and tool answers come from addresses an agent chose."""
from __future__ import annotations

import time


def read_bounded(response, *, max_bytes: int, deadline: float, too_large: Exception,
                 too_slow: Exception) -> bytes:
    """The body of a streamed ``requests`` response; raise ``too_large`` past ``max_bytes``
    and ``too_slow`` past ``deadline`` (``time.monotonic()``)."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        if time.monotonic() > deadline:
            raise too_slow
        chunks.append(chunk)
    return b"".join(chunks)
