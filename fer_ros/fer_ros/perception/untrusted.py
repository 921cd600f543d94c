"""Text and files that come from the ROS graph: quoted or escaped for logs, read with limits."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any


def quoted(text: str, limit: int = 200) -> str:
    """Untrusted text for a message: quoted and escaped as by repr, cut after limit characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + '...'


def printable(value: Any, limit: int = 64) -> str:
    """``value`` as one line of at most about ``limit`` characters: control characters, escape
    sequences and non-ASCII bytes are shown escaped (as repr does), never emitted raw."""
    text = value if isinstance(value, str) else str(value)
    escaped = text[:limit + 1].encode('unicode_escape').decode('ascii')
    if len(escaped) > limit or len(text) > limit:
        return f'{escaped[:limit]}... ({len(text)} characters)'
    return escaped


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The content of a regular file of 1 to max_bytes bytes; OSError or ValueError otherwise.

    Devices and FIFOs are never opened (opening some has effects; a FIFO blocks), and the
    file is checked again through the descriptor it is read from.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError('not a regular file')
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise ValueError(f'not a regular file of at most {max_bytes} bytes')
        with open(fd, 'rb', closefd=False) as f:
            content = f.read(max_bytes + 1)  # /proc files show size 0: count what is read
    finally:
        os.close(fd)
    if not 0 < len(content) <= max_bytes:
        raise ValueError(f'not 1 to {max_bytes} bytes long')
    return content
