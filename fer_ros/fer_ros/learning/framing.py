"""How a face detector frames the training images (fer_evaluate --framing), and training
images cropped as the node crops them (fer_train --align-faces).

The shipped models learnt from FER2013/FER+ faces: the whole 48 px frame is what they expect
to see. Each face is upscaled (4x: 192 px, a face the detector sees well) into a canvas padded
by half its side with its edge pixels, the detector runs on it, and the frame is expressed in
the box's sides: its side (Framing.scale) and its centre's offset below the box centre
(Framing.shift). The medians over the faces found are the detector's framing, which
detection.DETECTOR_FRAMING records and the node's crop applies.
"""
from __future__ import annotations

import cv2
import numpy as np

from fer_ros.perception.detection import FaceDetector
from fer_ros.perception.preprocess import Framing, crop_window, face_window


def _scene(face: np.ndarray, upscale: int) -> np.ndarray:
    """The face upscaled into a canvas padded by half its side with its edge pixels."""
    side = face.shape[0] * upscale
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, side // 2, side // 2, side // 2, side // 2,
                              cv2.BORDER_REPLICATE)


def measure_framing(images: np.ndarray, detector: FaceDetector,
                    upscale: int = 4) -> tuple[Framing, int]:
    """The detector's median framing of (N, H, W) uint8 gray faces, and how many it found."""
    scales, shifts = [], []
    for face in images:
        side = face.shape[0] * upscale
        pad = side // 2
        found = detector.detect(cv2.cvtColor(_scene(face, upscale), cv2.COLOR_GRAY2RGB))
        if not found:
            continue
        box = found[0]
        box_side = max(box.width, box.height)
        scales.append(side / box_side)
        shifts.append((pad + side / 2 - (box.y + box.height / 2)) / box_side)
    if not scales:
        raise ValueError('the detector found no face in these images')
    framing = Framing(round(float(np.median(scales)), 3), round(float(np.median(shifts)), 3))
    return framing, len(scales)


def aligned_faces(images: np.ndarray, detector: FaceDetector, upscale: int = 4) -> np.ndarray:
    """(N, H, W) gray faces rolled so the eyes are level, cropped by the node's own window
    (face_window, crop_window) around the detector's box; a face the detector misses is kept
    as it is. What fer_node feeds the model, for training and validation images."""
    out = images.copy()
    for i, face in enumerate(images):
        scene = _scene(face, upscale)
        found = detector.detect(cv2.cvtColor(scene, cv2.COLOR_GRAY2RGB))
        if found:
            window = face_window(found[0].box, 0.0, found[0].keypoints, detector.framing)
            out[i] = crop_window(scene, window, face.shape[0])
    return out
