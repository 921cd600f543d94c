"""Rate and loss of an image stream, from what arrives. No ROS.

Frames lost between a publisher and the subscriber are counted exactly where the middleware
gives each sample its publisher and that publisher's sequence number (rclpy's MessageInfo;
Fast DDS does): a gap in one publisher's numbers is that many lost frames, whatever other
publishers share the topic; a publisher heard for the first time, or again after
``max_gap_s`` of silence, loses nothing.

Without them, the loss is estimated from the header stamps: the camera's period is the median
of the recent stamp intervals (it stays the true period while fewer than half the intervals
hold a loss), and each interval dt adds dt / period - 1 lost frames. Timing jitter cancels out
in that sum, so only frames that never arrived remain. Stamps that go backwards, or jump by
more than ``pause_periods`` periods (or ``max_gap_s`` before the period is known), start over
without counting a loss: a replayed bag looping, a camera stopped and restarted. A stream
that loses most of its frames looks like a slower camera there: compare the input rate.
"""
from __future__ import annotations

import collections
import statistics

MAX_PUBLISHERS = 64  # sequence numbers kept for the most recently heard publishers


class InputStats:
    def __init__(self, window_s: float = 5.0, max_gap_s: float = 5.0, pause_periods: int = 10,
                 history: int = 61):
        self.window_s, self.max_gap_s, self.pause_periods = window_s, max_gap_s, pause_periods
        self.received = 0
        self._lost = 0.0                    # estimated, since start
        self._intervals: collections.deque[float] = collections.deque(maxlen=history)
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (t, lost)
        self._last_stamp: float | None = None
        # publisher id -> (last sequence number, when it arrived)
        self._sequences: collections.OrderedDict[bytes, tuple[int, float]] = \
            collections.OrderedDict()
        self.counted_exactly = False  # the last frame's loss came from sequence numbers

    @property
    def lost(self) -> int:
        """Frames estimated lost before arrival, since start."""
        return max(round(self._lost), 0)

    def period(self) -> float | None:
        """The camera's frame period in seconds, once ten intervals were seen."""
        return statistics.median(self._intervals) if len(self._intervals) >= 10 else None

    def add(self, stamp_s: float, now: float, publisher: bytes | None = None,
            sequence: int | None = None) -> None:
        """Count a frame stamped ``stamp_s`` that arrived at ``now`` (monotonic seconds), with
        its publisher's id and sequence number where the middleware gives them."""
        self.counted_exactly = publisher is not None and sequence is not None
        if self.counted_exactly:
            lost = self._sequence_gap(publisher, sequence, now)
        else:
            lost = self._stamp_gap(stamp_s)
        self.received += 1
        self._lost += lost
        self._recent.append((now, lost))
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()

    def _sequence_gap(self, publisher: bytes, sequence: int, now: float) -> float:
        last, heard = self._sequences.pop(publisher, (None, now))
        self._sequences[publisher] = sequence, now
        if len(self._sequences) > MAX_PUBLISHERS:
            self._sequences.popitem(last=False)
        if last is None or sequence <= last or now - heard > self.max_gap_s:
            return 0.0  # new publisher, or back after a pause (not subscribed, unplugged)
        return float(sequence - last - 1)

    def _stamp_gap(self, stamp_s: float) -> float:
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
        return lost

    def window(self, now: float) -> tuple[float, float]:
        """(received frames per second, fraction of frames lost) over the last window_s."""
        recent = [lost for t, lost in self._recent if t >= now - self.window_s]
        lost = max(sum(recent), 0.0)
        return len(recent) / self.window_s, lost / max(len(recent) + lost, 1.0)
