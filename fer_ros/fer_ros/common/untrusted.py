"""Text and files that come from the ROS graph: quoted or escaped for logs, read with limits."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
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


# Prepended to a probe: CPU seconds (argv[1]) are limited at once, address space (argv[2] MB
# more than the child has then) when the script calls limit_memory() after its imports.
_PROBE_PREAMBLE = '''
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[1]), int(sys.argv[1])))
try:
    with open('/proc/self/oom_score_adj', 'w') as f:
        f.write('1000')  # should memory run out, this process goes first
except OSError:
    pass
def limit_memory():
    with open('/proc/self/statm') as f:
        limit = int(f.read().split()[0]) * resource.getpagesize() + (int(sys.argv[2]) << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
'''


def run_probe(script: str, stdin: bytes, cpu_seconds: int, address_space_mb: int,
              *args: str) -> tuple[int, str] | None:
    """Run `script` (which calls limit_memory() once its imports are done) in a child Python
    with these limits; its exit status and the last line it printed, or None when it ran
    for over twice its CPU seconds (blocked, not computing)."""
    try:
        child = subprocess.run(
            [sys.executable, '-c', _PROBE_PREAMBLE + script, str(cpu_seconds),
             str(address_space_mb), *args], input=stdin, capture_output=True,
            timeout=2 * cpu_seconds)
    except subprocess.TimeoutExpired:
        return None
    return child.returncode, child.stdout.decode('utf-8', 'replace').rstrip('\n').rpartition(
        '\n')[2]
