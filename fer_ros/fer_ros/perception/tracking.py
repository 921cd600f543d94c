"""Face tracks across frames: stable ids through short occlusions and crossings, confirmation,
and optional smoothing of each face's expression probabilities. No ROS here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Box = Sequence[float]  # (x, y, width, height)
_NO_MATCH = 1e6
# Stamp steps between two frames beyond which every track restarts (a new id, age 0): a
# clock or bag that jumps, a forged stamp. Tracks outlive max_missed frames at most.
MAX_STAMP_GAP = 30.0    # seconds forward
MAX_STAMP_RETREAT = 1.0  # seconds back (frames from two publishers may interleave)


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
    first_stamp: float
    velocity: tuple[float, float] = (0.0, 0.0)  # of the box centre, pixels per frame
    hits: int = 1    # frames the face was detected in
    missed: int = 0  # consecutive frames without it

    def predicted(self) -> Box:
        """The box moved on at its velocity over the frames since it was last seen."""
        steps = self.missed + 1
        x, y, w, h = self.box
        return (x + self.velocity[0] * steps, y + self.velocity[1] * steps, w, h)


@dataclass(frozen=True)
class TrackedFace:
    id: int
    probabilities: np.ndarray  # smoothed over the track when smoothing > 0
    confirmed: bool            # detected in at least confirm_frames frames
    frames: int                # frames the face was detected in, this one included
    age: float                 # seconds from the track's first frame to this one


def match_cost(track_box: Box, box: Box, min_iou: float, max_distance: float) -> float:
    """Cost of giving a face a track (lower is better): 1 - IoU plus the distance between the
    centres in face sizes. _NO_MATCH when they neither overlap by min_iou nor lie within
    max_distance face sizes, or when one box is over twice the other's size."""
    size = math.sqrt(track_box[2] * track_box[3])
    other = math.sqrt(box[2] * box[3])
    if size <= 0 or other <= 0 or not 0.5 <= other / size <= 2.0:
        return _NO_MATCH
    overlap = iou(track_box, box)
    distance = math.hypot(track_box[0] + track_box[2] / 2 - box[0] - box[2] / 2,
                          track_box[1] + track_box[3] / 2 - box[1] - box[3] / 2) / size
    if overlap < min_iou and distance > max_distance:
        return _NO_MATCH
    return 1.0 - overlap + distance


class FaceTracker:
    """Give each face the id of its track, matching all faces to all tracks at once.

    Each track's box is predicted at its velocity, then faces and tracks are assigned by the
    Hungarian algorithm on match_cost. An unmatched face starts a tentative track with the
    next id; a track is confirmed once its face was detected in confirm_frames frames. A
    tentative track is dropped at its first miss; a confirmed one after max_missed frames
    unseen (its predicted box carries on meanwhile, so ids survive occlusions and crossings).
    With smoothing s > 0, a face's probabilities are s * (its track's previous ones) +
    (1 - s) * (new ones).
    """

    def __init__(self, min_iou: float = 0.3, max_distance: float = 1.0,
                 confirm_frames: int = 3, max_missed: int = 15, smoothing: float = 0.0):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f'smoothing must be in [0, 1), got {smoothing}')
        if confirm_frames < 1 or max_missed < 0:
            raise ValueError('confirm_frames must be >= 1 and max_missed >= 0, got '
                             f'{confirm_frames} and {max_missed}')
        self.min_iou, self.max_distance = min_iou, max_distance
        self.confirm_frames, self.max_missed, self.smoothing = confirm_frames, max_missed, smoothing
        self.tracks: list[Track] = []
        self._class_names: tuple[str, ...] = ()
        self._next_id = 0
        self._last_stamp: float | None = None

    def update(self, boxes: Sequence[Box], probabilities: np.ndarray,
               class_names: Sequence[str], stamp: float = 0.0) -> list[TrackedFace]:
        """This frame's faces (boxes and probabilities, one row each) as tracked faces, in
        their order. stamp: the frame's time in seconds (track ages are differences of it).

        When class_names change (another model), or the stamp jumps from the last frame's
        by more than MAX_STAMP_GAP forward or MAX_STAMP_RETREAT back, all tracks are
        forgotten; ids are never reused.
        """
        last, self._last_stamp = self._last_stamp, stamp
        jumped = last is not None and not -MAX_STAMP_RETREAT <= stamp - last <= MAX_STAMP_GAP
        if tuple(class_names) != self._class_names or jumped:
            self.tracks, self._class_names = [], tuple(class_names)
        track_of = self._assign(boxes)
        matched = {id(t) for t in track_of.values()}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
        self.tracks = [t for t in self.tracks if id(t) in matched or (
            t.missed <= self.max_missed and t.hits >= self.confirm_frames)]

        out = []
        for fi, box in enumerate(boxes):
            p = np.asarray(probabilities[fi], np.float32)
            track = track_of.get(fi)
            if track is None:
                track = Track(self._next_id, tuple(box), p.copy(), stamp)
                self._next_id += 1
                self.tracks.append(track)
            else:
                p = self.smoothing * track.probabilities + (1 - self.smoothing) * p
                self._move(track, box)
                track.probabilities = p.copy()
            out.append(TrackedFace(track.id, p, track.hits >= self.confirm_frames, track.hits,
                                   max(stamp - track.first_stamp, 0.0)))
        return out

    def _assign(self, boxes: Sequence[Box]) -> dict[int, Track]:
        if not self.tracks or not len(boxes):
            return {}
        predicted = [t.predicted() for t in self.tracks]
        cost = np.array([[match_cost(p, b, self.min_iou, self.max_distance) for b in boxes]
                         for p in predicted])
        rows, cols = linear_sum_assignment(cost)
        return {int(f): self.tracks[t] for t, f in zip(rows, cols) if cost[t, f] < _NO_MATCH}

    @staticmethod
    def _move(track: Track, box: Box) -> None:
        """Take the new box; the velocity follows the centre's step per frame (averaged)."""
        steps = track.missed + 1
        step = ((box[0] + box[2] / 2 - track.box[0] - track.box[2] / 2) / steps,
                (box[1] + box[3] / 2 - track.box[1] - track.box[3] / 2) / steps)
        v = track.velocity if track.hits > 1 else step
        track.velocity = (0.5 * v[0] + 0.5 * step[0], 0.5 * v[1] + 0.5 * step[1])
        track.box, track.hits, track.missed = tuple(box), track.hits + 1, 0
