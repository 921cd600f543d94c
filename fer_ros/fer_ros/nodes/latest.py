"""A one-slot, newest-wins work queue: process only the latest item, never a backlog."""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar('T')


class LatestWorker(Generic[T]):
    """Runs ``handler`` on a worker thread for the newest submitted item.

    An item submitted while the handler is busy replaces any item still
    waiting (counted in ``dropped``). ``max_rate`` (Hz, 0 = unlimited) spaces the
    starts of consecutive handler calls; it may be changed at any time. The
    handler must not raise; wrap it if it can.
    """

    def __init__(self, handler: Callable[[T], None], max_rate: float = 0.0,
                 name: str = 'latest-worker'):
        self._handler = handler
        self.max_rate = max_rate
        self.dropped = 0
        self.processed = 0
        self._item: T | None = None
        self._cond = threading.Condition()
        self._stopped = False
        self._last_start = 0.0
        self.busy_since: float | None = None  # time.monotonic() the running handler call began
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def _next_item(self) -> T | None:
        with self._cond:
            while not self._stopped:
                if self._item is not None:
                    wait = (self._last_start + 1.0 / self.max_rate - time.monotonic()
                            if self.max_rate > 0 else 0.0)
                    if wait <= 0:
                        item, self._item = self._item, None
                        self._last_start = time.monotonic()
                        return item
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while (item := self._next_item()) is not None:
            self.busy_since = time.monotonic()
            self._handler(item)
            self.busy_since = None
            self.processed += 1

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking items; False if the handler call still running outlasts `timeout` (the
        thread is a daemon: it never holds the process up)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()
