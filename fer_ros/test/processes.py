"""Run fer_ros executables as separate OS processes, as a launch file does."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class Process:
    """An executable of the venv with its output collected in the background."""

    def __init__(self, *argv: str, env: dict | None = None):
        self.proc = subprocess.Popen(
            [str(BIN / argv[0]), *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})})
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return ''.join(self.lines)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, f'exited {self.proc.returncode}:\n{self.output}'
            assert time.monotonic() < deadline, f'no {text!r} within {timeout} s:\n{self.output}'
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, *signals: signal.Signals, gap: float = 0.0, timeout: float = 20.0) -> int:
        """Send the signals (``gap`` seconds apart) and return the exit code."""
        for i, signum in enumerate(signals or (signal.SIGINT,)):
            if i and gap:
                time.sleep(gap)
            if self.proc.poll() is None:
                self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f'did not exit within {timeout} s:\n{self.output}') from None
