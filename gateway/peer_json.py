"""JSON text from peers we do not control: bots, FreeSWITCH, providers' webhooks.

``json.loads`` recurses once per nesting level, and a document nested about a thousand
levels deep makes it raise ``RecursionError``, which is not a ``ValueError``, so a
caller's ``except ValueError`` lets it through. A document nested a little less deep
parses, then breaks whatever walks it next (``repr``, ``json.dumps``, storage), further
down a deeper stack. :func:`loads` refuses both: anything nested deeper than
``MAX_DEPTH`` is a ``ValueError`` like any other malformed JSON, so callers catch one
exception and every value they get back is shallow enough to walk safely.
"""
from __future__ import annotations

import json

#: Far more than any message we accept needs (FreeSWITCH events are 2 deep, bot and
#: provider messages under 10) and far less than Python's recursion limit.
MAX_DEPTH = 64


class TooDeep(ValueError):
    """The document is nested deeper than allowed."""


def loads(text: str | bytes, max_depth: int = MAX_DEPTH):
    """The JSON value of ``text``; ``ValueError`` if it is not JSON or is nested deeper
    than ``max_depth`` (``TooDeep``, a ``ValueError``)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from None
    # Depth needs at least that many opening brackets: a cheap count spares the walk
    # for almost every real message.
    if isinstance(value, (dict, list)) and _openings(text) > max_depth and depth(value, max_depth) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return value


def depth(value, stop_after: int | None = None) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``[]`` is 1); walked without recursion.
    With ``stop_after``, the walk ends as soon as it is exceeded."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if stop_after is not None and deepest > stop_after:
            break
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _openings(text: str | bytes) -> int:
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")
