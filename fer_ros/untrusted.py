"""Reading files named by untrusted text (ROS parameters) and quoting such text in messages."""
from __future__ import annotations

import os
import stat
from pathlib import Path


def quoted(text: str, limit: int = 200) -> str:
    """Untrusted text for a message: quoted and escaped as by repr, cut after limit characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + '...'


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
