"""Detect -> classify -> annotate for one frame, with per-stage timings. No ROS here."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_ros.perception.affect import valence_arousal
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import Face, FaceDetector
from fer_ros.perception.tracking import FaceTracker, TrackedFace


@dataclass(frozen=True)
class FaceExpression:
    face: Face
    track: TrackedFace  # id, confirmation, age; probabilities (classes,) summing to 1
    label_index: int
    valence: float      # -1 .. 1, derived from the probabilities (perception/affect.py)
    arousal: float

    @property
    def id(self) -> int:
        return self.track.id

    @property
    def probabilities(self) -> np.ndarray:
        return self.track.probabilities

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.label_index])


@dataclass
class FrameResult:
    faces: list[FaceExpression]
    class_names: tuple[str, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Stopwatch:
    """Accumulates named stage durations in milliseconds."""

    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + (now - self._last) * 1e3
        self._last = now


class FerPipeline:
    """Find every face of a BGR frame, classify its expression in one batch and track it."""

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 tracker: FaceTracker | None = None):
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker or FaceTracker()

    def process(self, image_bgr: np.ndarray, watch: Stopwatch | None = None,
                stamp: float | None = None) -> FrameResult:
        """stamp: the frame's time in seconds (track ages); None: now, by the monotonic clock."""
        watch = watch or Stopwatch()
        faces = self.detector.detect(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        watch.lap('detect')
        boxes = [f.box for f in faces]
        probs = self.classifier.predict(image_bgr, boxes, [f.keypoints for f in faces],
                                        self.detector.framing)
        names = self.classifier.class_names
        tracked = self.tracker.update(boxes, probs, names,
                                      time.monotonic() if stamp is None else stamp)
        affect = valence_arousal(np.array([t.probabilities for t in tracked]), names)
        watch.lap('classify')
        results = [FaceExpression(f, t, int(np.argmax(t.probabilities)), float(va[0]), float(va[1]))
                   for f, t, va in zip(faces, tracked, affect)]
        return FrameResult(results, self.classifier.class_names, watch.timings_ms)


_COLOURS = {  # BGR
    'happy': (60, 200, 60), 'surprise': (0, 200, 255), 'neutral': (200, 200, 200),
    'sad': (200, 120, 40), 'angry': (40, 40, 230), 'disgust': (60, 140, 100),
    'fear': (180, 60, 180), 'contempt': (90, 90, 160),
}


def annotate(image_bgr: np.ndarray, result: FrameResult) -> np.ndarray:
    """Return a copy of the frame with a box and 'id: label probability' per face."""
    out = image_bgr.copy()
    scale = max(out.shape[1] / 1000.0, 0.45)
    thickness = max(int(round(scale * 2)), 1)
    for fe in result.faces:
        f, label = fe.face, result.class_names[fe.label_index]
        colour = _COLOURS.get(label, (255, 255, 255))
        cv2.rectangle(out, (f.x, f.y), (f.x + f.width, f.y + f.height), colour, thickness)
        text = f'{fe.id}: {label} {fe.probability:.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        y = f.y - base - 2 if f.y - th - base - 2 >= 0 else f.y + f.height + th + 2
        cv2.rectangle(out, (f.x, y - th - 2), (f.x + tw + 2, y + base), colour, cv2.FILLED)
        cv2.putText(out, text, (f.x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return out


def describe(result: FrameResult, top: int = 3) -> str:
    """One readable line: 'face 0: happy 0.99 (surprise 0.01, neutral 0.00); face 1: ...'
    (face numbers are track ids)."""
    if not result.faces:
        return 'no face'
    parts = []
    for fe in result.faces:
        order = np.argsort(fe.probabilities)[::-1][:top]
        first, rest = order[0], order[1:]
        others = ', '.join(f'{result.class_names[j]} {fe.probabilities[j]:.2f}' for j in rest)
        parts.append(f'face {fe.id}: {result.class_names[first]} {fe.probabilities[first]:.2f}'
                     f' ({others})')
    return '; '.join(parts)
