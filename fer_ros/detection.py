"""Face detection with the MediaPipe Tasks face detector (BlazeFace models)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_ros.assets import asset_path
from fer_ros.native_log import native_stderr_silenced

DETECTOR_MODELS = {
    'full_range': 'face_detection_full_range_sparse.tflite',  # faces up to ~5 m, group photos
    'short_range': 'face_detection_short_range.tflite',       # faces within ~2 m, faster
}


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, width, height) in pixels, clipped to the image."""

    x: int
    y: int
    width: int
    height: int
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()  # eyes, nose, mouth, ears; pixels

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height


# Frames whose longer side exceeds this are downscaled (area averaging) before detection and
# the boxes scaled back. BlazeFace sees 128-192 px, so nothing is lost; and the OpenCV inside
# MediaPipe aborts the process (no exception) on any side >= 32767 px.
DETECT_MAX_SIDE = 1920


class FaceDetector:
    """Detect faces in RGB images of any size.

    model: 'full_range', 'short_range' or a .tflite path.
    min_confidence: detections scoring below it are dropped.
    max_faces: keep at most this many (highest scores first); 0 keeps all.
    """

    def __init__(self, model: str = 'full_range', min_confidence: float = 0.3,
                 max_faces: int = 0, min_suppression: float = 0.3):
        from mediapipe.tasks.python import BaseOptions, vision

        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f'min_confidence must be in [0, 1], got {min_confidence}')
        if max_faces < 0:
            raise ValueError(f'max_faces must be >= 0, got {max_faces}')
        path = asset_path(DETECTOR_MODELS[model]) if model in DETECTOR_MODELS else Path(model)
        if not path.is_file():
            raise FileNotFoundError(
                f"face detector model '{model}' is neither {' nor '.join(DETECTOR_MODELS)} "
                'nor an existing .tflite file')
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
            min_suppression_threshold=min_suppression)
        import mediapipe as mp
        with native_stderr_silenced():  # ~55 lines of load-time notes; warm up while silent
            self._detector = vision.FaceDetector.create_from_options(options)
            self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                           data=np.zeros((64, 64, 3), np.uint8)))
        self.model = model
        self.min_confidence = min_confidence
        self.max_faces = max_faces

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces of an (H, W, 3) uint8 RGB image, highest score first."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}')
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return []
        scale = min(DETECT_MAX_SIDE / max(height, width), 1.0)
        if scale < 1.0:
            size = (max(round(width * scale), 1), max(round(height * scale), 1))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        sx, sy = width / rgb.shape[1], height / rgb.shape[0]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        faces = []
        for det in self._detector.detect(image).detections:
            score = float(det.categories[0].score) if det.categories else 0.0
            if score < self.min_confidence:
                continue
            b = det.bounding_box
            x0, y0 = max(round(b.origin_x * sx), 0), max(round(b.origin_y * sy), 0)
            x1 = min(round((b.origin_x + b.width) * sx), width)
            y1 = min(round((b.origin_y + b.height) * sy), height)
            if x1 <= x0 or y1 <= y0:
                continue
            keypoints = tuple((k.x * width, k.y * height) for k in det.keypoints or ())
            faces.append(Face(x0, y0, x1 - x0, y1 - y0, score, keypoints))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces[:self.max_faces] if self.max_faces else faces

    def close(self) -> None:
        if self._detector is not None:
            with native_stderr_silenced():
                self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
