"""Stable face ids across frames (box overlap) and optional smoothing of each face's
expression probabilities over time. No ROS here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

Box = Sequence[float]  # (x, y, width, height)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box
    probabilities: np.ndarray
    missed: int = 0  # consecutive frames without a matching face


class FaceTracker:
    """Give each face the id of the face it overlaps most in the previous frames.

    Faces and tracks are matched greedily by IoU (highest first, at least
    min_iou); an unmatched face starts a new track with the next id; a track
    unmatched for more than max_missed frames is forgotten. With smoothing s > 0,
    a face's probabilities are s * (its track's previous ones) + (1 - s) * (new ones).
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 5, smoothing: float = 0.0):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f'smoothing must be in [0, 1), got {smoothing}')
        self.min_iou, self.max_missed, self.smoothing = min_iou, max_missed, smoothing
        self.tracks: list[Track] = []
        self._class_names: tuple[str, ...] = ()
        self._next_id = 0

    def update(self, boxes: Sequence[Box], probabilities: np.ndarray,
               class_names: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """Track ids and (smoothed) probabilities for this frame's faces, in their order.

        When class_names change (another model), all tracks are forgotten; ids are
        never reused.
        """
        if tuple(class_names) != self._class_names:
            self.tracks, self._class_names = [], tuple(class_names)
        pairs = sorted(((iou(t.box, b), ti, fi) for ti, t in enumerate(self.tracks)
                        for fi, b in enumerate(boxes)), reverse=True)
        track_of: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.min_iou:
                break
            if ti in used or fi in track_of:
                continue
            used.add(ti)
            track_of[fi] = self.tracks[ti]
        for ti, track in enumerate(self.tracks):
            if ti not in used:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]

        out = np.array(probabilities, np.float32, copy=True)
        ids = []
        for fi, box in enumerate(boxes):
            track = track_of.get(fi)
            if track is None:
                track = Track(self._next_id, box, out[fi].copy())
                self._next_id += 1
                self.tracks.append(track)
            else:
                out[fi] = self.smoothing * track.probabilities + (1 - self.smoothing) * out[fi]
                track.box, track.probabilities, track.missed = box, out[fi].copy(), 0
            ids.append(track.id)
        return ids, out
