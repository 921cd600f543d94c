"""Text that arrived from the ROS graph, made safe to log: escaped and bounded."""
from __future__ import annotations

from typing import Any


def printable(value: Any, limit: int = 64) -> str:
    """``value`` as one line of at most about ``limit`` characters: control characters, escape
    sequences and non-ASCII bytes are shown escaped (as repr does), never emitted raw."""
    text = value if isinstance(value, str) else str(value)
    escaped = text[:limit + 1].encode('unicode_escape').decode('ascii')
    if len(escaped) > limit or len(text) > limit:
        return f'{escaped[:limit]}... ({len(text)} characters)'
    return escaped
