"""Eye openness from face-mesh landmarks, and blinks counted per track in time. No ROS here.

Openness is the eye aspect ratio (EAR, Soukupova & Cech 2016: the two lid distances over
twice the eye's width, on six contour points) mapped linearly from EAR_CLOSED (0: lids
together) to EAR_OPEN (1). EAR_OPEN is the median of open eyes measured on the face mesh of
frontal faces (the posed photos and the frontal face of the shared clip: 0.23-0.45, median
0.30; smiles narrow it to about 0.2); EAR_CLOSED is that of lids that meet on the mesh.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

# Face-mesh contour points: outer corner, two upper lid, inner corner, two lower lid.
RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # the person's right eye (left in the image)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
EAR_OPEN, EAR_CLOSED = 0.30, 0.10


def eye_aspect_ratio(points: np.ndarray, eye: tuple[int, ...]) -> float:
    p = points[list(eye), :2]
    width = float(np.linalg.norm(p[0] - p[3]))
    if width <= 0:
        return 0.0
    return float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width)


def eye_openness(points: np.ndarray) -> tuple[float, float]:
    """(left, right) openness of the person's eyes, 0 closed .. 1 open, from (468, 2+) points."""
    def open_(eye: tuple[int, ...]) -> float:
        ear = eye_aspect_ratio(points, eye)
        return min(max((ear - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED), 0.0), 1.0)
    return open_(LEFT_EYE), open_(RIGHT_EYE)


class BlinkCounter:
    """Blinks of one face from its openness over time, independent of the frame rate.

    The eyes close when their mean openness falls below `closed_below` and open again above
    `open_above` (hysteresis). A reopening counts as a blink when the eyes were closed for at
    most `max_closed` seconds (longer is eyes shut) and at least `min_interval` seconds after
    the previous blink (flicker of the landmarks is not a blink). Times are the frames'
    stamps, so 10, 15 or 30 Hz count the same blinks as long as a frame falls inside each.
    """

    def __init__(self, closed_below: float = 0.35, open_above: float = 0.6,
                 max_closed: float = 0.7, min_interval: float = 0.2, window: float = 60.0):
        self.closed_below, self.open_above = closed_below, open_above
        self.max_closed, self.min_interval, self.window = max_closed, min_interval, window
        self.count = 0
        self._closed_since: float | None = None
        self._blinks: deque[float] = deque()
        self._first: float | None = None

    def update(self, openness: float, stamp: float) -> None:
        if self._first is None:
            self._first = stamp
        if self._closed_since is None:
            if openness < self.closed_below:
                self._closed_since = stamp
            return
        if openness > self.open_above:
            last = self._blinks[-1] if self._blinks else -math.inf
            if stamp - self._closed_since <= self.max_closed and \
                    self._closed_since - last >= self.min_interval:
                self.count += 1
                self._blinks.append(stamp)
            self._closed_since = None

    def rate(self, stamp: float, min_span: float = 10.0) -> float:
        """Blinks per minute over the last `window` seconds; NaN until the face has been seen
        for `min_span` seconds."""
        while self._blinks and self._blinks[0] < stamp - self.window:
            self._blinks.popleft()
        span = min(stamp - self._first, self.window) if self._first is not None else 0.0
        return len(self._blinks) * 60.0 / span if span >= min_span else math.nan
