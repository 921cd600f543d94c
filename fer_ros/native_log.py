"""Silence what native libraries write straight to the process's stderr (file descriptor 2).

MediaPipe and LiteRT print about 55 lines while loading a face detector (sparsity warnings,
accelerator registration, an alignment notice on the first frame) and more when closing it;
Python's and ROS's loggers cannot reach them. While the block runs, anything any thread
writes to stderr is dropped, so keep the blocks short: model load, first inference, close.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Iterator

_libc = ctypes.CDLL(None)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        _libc.fflush(None)  # what C stdio still buffers goes to /dev/null too
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
