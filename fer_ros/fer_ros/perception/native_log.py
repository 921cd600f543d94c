"""Silence what native libraries write straight to the process's stderr (file descriptor 2).

MediaPipe and LiteRT print about 55 lines while loading a face detector (sparsity warnings,
accelerator registration, an alignment notice on the first frame) and more when closing it;
libjpeg and libpng complain about damaged payloads. Python's and ROS's loggers cannot reach
them. While any block runs, anything any thread writes to stderr is dropped, so keep the
blocks short. Blocks may overlap across threads: stderr comes back when the last one ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from typing import Iterator

_libc = ctypes.CDLL(None)
_lock = threading.Lock()
_depth = 0
_saved_fd = -1


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    global _depth, _saved_fd
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved_fd = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _libc.fflush(None)  # what C stdio still buffers goes to /dev/null too
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
