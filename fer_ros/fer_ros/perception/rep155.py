"""What REP-155 (ROS4HRI) says of a face, from what the pipeline found: ids, the normalised
region of interest, cropped and aligned images, and the expression with its constant. No ROS.

REP-155: https://github.com/ros-infrastructure/rep/blob/master/rep-0155.rst ("Faces").
"""
from __future__ import annotations

import math
import random
import string
from typing import Sequence

import cv2
import numpy as np

from fer_ros.perception.preprocess import Window, face_window

# Our classes -> hri_msgs/Expression's constants. contempt has none: SKEPTICAL is the
# nearest (the one-sided lip raise of contempt reads as doubt), and is what it maps to.
EXPRESSION = {'angry': 'angry', 'disgust': 'disgusted', 'fear': 'scared', 'happy': 'happy',
              'sad': 'sad', 'surprise': 'surprised', 'neutral': 'neutral',
              'contempt': 'skeptical'}
CROP_SIZE = (128, 128)  # /humans/faces/width and height when unset


def run_prefix(rng: random.Random | None = None) -> str:
    """Four random lowercase letters: a node's ids differ from every other node's and run's
    (1 in 456,976 to share one) unless a prefix is set."""
    return ''.join((rng or random.SystemRandom()).choices(string.ascii_lowercase, k=4))


def face_id(prefix: str, track: int) -> str:
    """The REP-155 id of a track: stable for its life, never reused in a run."""
    return f'{prefix}{track}'


def normalized_roi(box: Sequence[float], width: int, height: int) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax) of an (x, y, w, h) pixel box, in [0, 1] of the image."""
    x, y, w, h = box
    return (min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0),
            min(max((x + w) / width, 0.0), 1.0), min(max((y + h) / height, 0.0), 1.0))


def crop(image: np.ndarray, window: Window, size: tuple[int, int] = CROP_SIZE) -> np.ndarray:
    """The square window scaled into width x height (size), centred, 0 outside the image and
    in the padding, as REP-155 has the cropped and aligned faces; rolled by window.roll."""
    width, height = size
    scale = min(width, height) / window.side
    turn = math.radians(window.roll)
    cos, sin = math.cos(turn) * scale, math.sin(turn) * scale
    # rotate by -roll about the window centre, scale, move the centre to the output's
    matrix = np.array([[cos, sin, width / 2.0 - cos * window.cx - sin * window.cy],
                       [-sin, cos, height / 2.0 + sin * window.cx - cos * window.cy]])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA
                          if scale < 1.0 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def face_crops(image: np.ndarray, box: Sequence[float], keypoints, size=CROP_SIZE
               ) -> tuple[np.ndarray, np.ndarray]:
    """(cropped, aligned) of one face: its box as a square, and the same with the eyes level."""
    return (crop(image, face_window(box, 0.0, keypoints, align=False), size),
            crop(image, face_window(box, 0.0, keypoints, align=True), size))
