"""Rate and loss of an image stream, inferred from the header stamps of what arrives. No ROS.

sensor_msgs/Image carries no sequence number, so frames lost between the camera and the
subscriber are estimated from the stamps: the camera's period is the median of the recent
stamp intervals (it stays the true period while fewer than half the intervals hold a loss),
and each interval dt adds dt / period - 1 lost frames. Timing jitter cancels out in that sum,
so only frames that never arrived remain. Stamps that go backwards, or jump by more than
``pause_periods`` periods (or ``max_gap_s`` before the period is known), start over without
counting a loss: a replayed bag looping, a camera stopped and restarted. A stream that loses
most of its frames looks like a slower camera: compare the input rate.
"""
from __future__ import annotations

import collections
import statistics


class InputStats:
    def __init__(self, window_s: float = 5.0, max_gap_s: float = 5.0, pause_periods: int = 10,
                 history: int = 61):
        self.window_s, self.max_gap_s, self.pause_periods = window_s, max_gap_s, pause_periods
        self.received = 0
        self._lost = 0.0                    # estimated, since start
        self._intervals: collections.deque[float] = collections.deque(maxlen=history)
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (t, lost)
        self._last_stamp: float | None = None

    @property
    def lost(self) -> int:
        """Frames estimated lost before arrival, since start."""
        return max(round(self._lost), 0)

    def period(self) -> float | None:
        """The camera's frame period in seconds, once ten intervals were seen."""
        return statistics.median(self._intervals) if len(self._intervals) >= 10 else None

    def add(self, stamp_s: float, now: float) -> None:
        """Count a frame stamped ``stamp_s`` that arrived at ``now`` (monotonic seconds)."""
        lost = 0.0
        if self._last_stamp is not None:
            dt, period = stamp_s - self._last_stamp, self.period()
            if dt <= 0 or dt > (self.max_gap_s if period is None else self.pause_periods * period):
                self._intervals.clear()
            else:
                if period is not None:
                    lost = dt / period - 1.0
                self._intervals.append(dt)
        self._last_stamp = stamp_s
        self.received += 1
        self._lost += lost
        self._recent.append((now, lost))
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()

    def window(self, now: float) -> tuple[float, float]:
        """(received frames per second, fraction of frames lost) over the last window_s."""
        recent = [lost for t, lost in self._recent if t >= now - self.window_s]
        lost = max(sum(recent), 0.0)
        return len(recent) / self.window_s, lost / max(len(recent) + lost, 1.0)
