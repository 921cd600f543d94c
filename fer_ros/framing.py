"""How a face detector frames the training images (fer_evaluate --framing).

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

from fer_ros.detection import FaceDetector
from fer_ros.preprocess import Framing


def measure_framing(images: np.ndarray, detector: FaceDetector,
                    upscale: int = 4) -> tuple[Framing, int]:
    """The detector's median framing of (N, H, W) uint8 gray faces, and how many it found."""
    scales, shifts = [], []
    for face in images:
        side = face.shape[0] * upscale
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        pad = side // 2
        canvas = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        found = detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
        if not found:
            continue
        box = found[0]
        box_side = max(box.width, box.height)
        scales.append(side / box_side)
        shifts.append((pad + side / 2 - (box.y + box.height / 2)) / box_side)
    if not scales:
        raise ValueError('the detector found no face in these images')
    return Framing(round(float(np.median(scales)), 3), round(float(np.median(shifts)), 3)), len(scales)
