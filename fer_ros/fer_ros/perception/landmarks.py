"""The 468-point MediaPipe face mesh of each detected face, run with LiteRT. No ROS here.

face_landmark.tflite (from the mediapipe 0.10.21 wheel, Apache-2.0) takes a 192 x 192 RGB
crop around a face, rolled so the eyes are level and 1.5 times the detector's box, as
MediaPipe's own face-mesh graph crops it, and returns 468 (x, y, z) points of that crop and
a face-presence logit. It runs with ai-edge-litert's interpreter (LiteRT, XNNPACK):
MediaPipe's Tasks API only runs its .task bundles, and face_landmark_with_attention.tflite
(478 points with irises) needs custom operators that only MediaPipe's graph registers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fer_ros.common.assets import asset_path
from fer_ros.perception.detection import Face
from fer_ros.perception.native_log import native_stderr_silenced
from fer_ros.perception.preprocess import eye_roll

LANDMARK_MODEL = 'face_landmark.tflite'
LANDMARK_COUNT = 468
INPUT_SIZE = 192
ROI_SCALE = 1.5  # MediaPipe's face-mesh crop: 1.5 times the detection box, square
LITERT_REQUIREMENT = 'ai-edge-litert==2.3.0'


class LandmarkError(RuntimeError):
    """The landmark model or its runtime cannot be loaded."""


def check_landmarks(enabled: bool) -> str | None:
    """Why landmarks cannot run here, or None (always None when not enabled)."""
    import importlib.util

    from fer_ros.common.assets import AssetError
    if not enabled:
        return None
    if importlib.util.find_spec('ai_edge_litert') is None:
        return f"landmarks need LiteRT: pip install '{LITERT_REQUIREMENT}'"
    try:
        asset_path(LANDMARK_MODEL)
    except AssetError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class FaceMesh:
    points: np.ndarray  # (468, 3): x, y in pixels of the image; z depth in pixels like x
    presence: float     # the model's confidence that the crop holds a face, 0 .. 1


def roi_transform(face: Face) -> np.ndarray:
    """The 2 x 3 affine map from image pixels to the model's 192 x 192 input for a face."""
    side = max(face.width, face.height) * ROI_SCALE
    cx, cy = face.x + face.width / 2.0, face.y + face.height / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), eye_roll(face.keypoints), INPUT_SIZE / side)
    m[:, 2] += INPUT_SIZE / 2.0 - np.array([cx, cy])
    return m


class FaceLandmarker:
    """468 face-mesh points of detected faces, one LiteRT interpreter, single-threaded."""

    def __init__(self, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise LandmarkError(f"landmarks need LiteRT: pip install '{LITERT_REQUIREMENT}'"
                                ) from None
        path = asset_path(LANDMARK_MODEL)
        with native_stderr_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
            (self._input,) = self._interpreter.get_input_details()
            outputs = sorted(self._interpreter.get_output_details(),
                             key=lambda d: -int(np.prod(d['shape'])))
            self._points, self._presence = (d['index'] for d in outputs)
            self._run(np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32))

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        self._interpreter.set_tensor(self._input['index'], x)
        self._interpreter.invoke()
        points = self._interpreter.get_tensor(self._points).reshape(LANDMARK_COUNT, 3)
        logit = float(self._interpreter.get_tensor(self._presence).ravel()[0])
        return points, 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def mesh(self, image_bgr: np.ndarray, face: Face) -> FaceMesh:
        """The face mesh of one detected face of a BGR image."""
        m = roi_transform(face)
        crop = cv2.warpAffine(image_bgr, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        x = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        points, presence = self._run(x)
        back = cv2.invertAffineTransform(m)
        out = np.empty_like(points)
        out[:, :2] = points[:, :2] @ back[:, :2].T + back[:, 2]
        out[:, 2] = points[:, 2] * math.hypot(back[0, 0], back[1, 0])  # input px -> image px
        return FaceMesh(out, presence)
