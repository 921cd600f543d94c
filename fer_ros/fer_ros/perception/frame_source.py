"""What every frame source is (sources.py: cameras and files; bag.py: rosbag2 MCAP files)."""
from __future__ import annotations

import cv2
import numpy as np


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class FrameSource:
    """Yields BGR frames. ``read`` returns None when no frame is available right now;
    ``finished`` turns true once a non-looping file source has delivered its last frame."""

    finished = False
    frame_rate = 0.0  # frames per second of a video file; 0 where unknown or live
    stamp: tuple[int, int] | None = None  # (sec, nanosec) the last frame was recorded at

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to width x height; one of them 0 keeps the aspect ratio, both 0 the native size."""
    h, w = frame.shape[:2]
    if width <= 0 and height <= 0:
        return frame
    width = width if width > 0 else max(round(w * height / h), 1)
    height = height if height > 0 else max(round(h * width / w), 1)
    if (w, h) == (width, height):
        return frame
    return cv2.resize(frame, (width, height),
                      interpolation=cv2.INTER_AREA if width < w else cv2.INTER_LINEAR)
