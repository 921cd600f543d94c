"""Detect -> classify -> annotate for one frame, with per-stage timings. No ROS here."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_ros.perception.affect import valence_arousal
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import Face, FaceDetector
from fer_ros.perception.face_state import FaceState, FaceStates
from fer_ros.perception.tracking import FaceTracker, TrackedFace


@dataclass(frozen=True)
class FaceExpression:
    face: Face
    track: TrackedFace  # id, confirmation, age; probabilities (classes,) summing to 1
    label_index: int
    valence: float      # -1 .. 1, derived from the probabilities (perception/affect.py)
    arousal: float
    state: FaceState | None = None  # landmarks, eyes, blinks, head pose: when run and found

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
    problems: list[str] = field(default_factory=list)  # optional stages that failed on a face


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
    """Find every face of a BGR frame, classify its expression in one batch and track it;
    with `states`, also its landmarks, eyes, blinks and head pose."""

    def __init__(self, detector: FaceDetector, classifier: ExpressionClassifier,
                 tracker: FaceTracker | None = None, states: FaceStates | None = None):
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker or FaceTracker()
        self.states = states

    def process(self, image_bgr: np.ndarray, watch: Stopwatch | None = None,
                stamp: float | None = None, camera: np.ndarray | None = None) -> FrameResult:
        """stamp: the frame's time in seconds (track ages, blinks); None: now, by the monotonic
        clock. camera: 3 x 3 intrinsics for the head pose (else the states' field of view)."""
        watch = watch or Stopwatch()
        stamp = time.monotonic() if stamp is None else stamp
        faces = self.detector.detect(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        watch.lap('detect')
        boxes = [f.box for f in faces]
        probs = self.classifier.predict(image_bgr, boxes, [f.keypoints for f in faces],
                                        self.detector.framing)
        names = self.classifier.class_names
        tracked = self.tracker.update(boxes, probs, names, stamp)
        affect = valence_arousal(np.array([t.probabilities for t in tracked]), names)
        watch.lap('classify')
        states, problems = [None] * len(faces), []
        if self.states is not None:
            states = self.states.update(image_bgr, faces, [t.id for t in tracked],
                                        {t.id for t in self.tracker.tracks}, stamp, camera)
            problems = self.states.problems
            watch.lap('landmarks')
        results = [FaceExpression(f, t, int(np.argmax(t.probabilities)), float(va[0]),
                                  float(va[1]), s)
                   for f, t, va, s in zip(faces, tracked, affect, states)]
        return FrameResult(results, self.classifier.class_names, watch.timings_ms, problems)
