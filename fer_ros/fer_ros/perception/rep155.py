"""What REP-155 (ROS4HRI) says of a face, from what the pipeline found: ids, the normalised
region of interest, cropped and aligned images, the 70 facial landmarks, the face and gaze
frames, and the expression with its constant. No ROS.

REP-155: https://github.com/ros-infrastructure/rep/blob/master/rep-0155.rst ("Faces").
"""
from __future__ import annotations

import math
import random
import string
from typing import Sequence

import cv2
import numpy as np

from fer_ros.perception.head_pose import HeadPose
from fer_ros.perception.landmarks import LANDMARK_COUNT
from fer_ros.perception.preprocess import Window, face_window

# Our classes -> hri_msgs/Expression's constants. contempt has none: SKEPTICAL is the
# nearest (the one-sided lip raise of contempt reads as doubt), and is what it maps to.
EXPRESSION = {'angry': 'angry', 'disgust': 'disgusted', 'fear': 'scared', 'happy': 'happy',
              'sad': 'sad', 'surprise': 'surprised', 'neutral': 'neutral',
              'contempt': 'skeptical'}
CROP_SIZE = (128, 128)  # /humans/faces/width and height when unset

_RIGHT_EYE, _LEFT_EYE = (33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380)
# hri_msgs/FacialLandmarks' 70 codes (dlib's 68 and two pupils; "right" is the person's) ->
# the face-mesh points that give them: one point, or the mean of several. docs: the table.
LANDMARKS: tuple[tuple[int, ...], ...] = tuple((i,) if isinstance(i, int) else i for i in (
    127, 234, 93, 132, 58, 136, 150, 176,          # 0-7 right ear, right profile 1-7
    152,                                           # 8 menton
    400, 379, 365, 288, 361, 323, 454, 356,        # 9-16 left profile 7-1, left ear
    70, 63, 105, 66, 107,                          # 17-21 right eyebrow, outside to inside
    336, 296, 334, 293, 300,                       # 22-26 left eyebrow, inside to outside
    6, 197, 5, 1,                                  # 27-30 sellion, nose 1-2, nose tip
    98, 97, 2, 326, 327,                           # 31-35 nostrils, right to left
    *_RIGHT_EYE,                                   # 36-41 outside, top 1-2, inside, bottom 2-1
    *_LEFT_EYE,                                    # 42-47 inside, top 2-1, outside, bottom 1-2
    61, 40, 37, 0, 267, 270,                       # 48-53 mouth outer right, top 1-5
    291, 321, 314, 17, 84, 91,                     # 54-59 outer left, bottom 5-1
    78, 82, 13, 312, 308, 317, 14, 87,             # 60-67 inner right, top, inner left, bottom
    _RIGHT_EYE, _LEFT_EYE))                        # 68-69 pupils: the eye contour's centre


def _means() -> np.ndarray:
    """(70, 468): the landmarks are this times the mesh points."""
    means = np.zeros((len(LANDMARKS), LANDMARK_COUNT))
    for row, group in enumerate(LANDMARKS):
        means[row, list(group)] = 1.0 / len(group)
    return means


_MEANS = _means()


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


def facial_landmarks(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """(70, 2) x, y in [0, 1] of the image, in hri_msgs/FacialLandmarks' order, from a face's
    (468, 2+) mesh points in pixels."""
    return np.clip(_MEANS @ points[:, :2] / (width, height), 0.0, 1.0)


# The face frame's axes (x out of the face, y to its left, z to the scalp) and the gaze
# frame's (z along the gaze, x to the face's right, y down) in the head-pose model's (x to the
# face's left, y down, z into the head: the camera's axes when the face looks into it).
FACE_AXES = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
GAZE_AXES = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])


def quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a 3 x 3 rotation matrix, w >= 0."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    i = int(np.argmax([trace, m[0, 0], m[1, 1], m[2, 2]]))
    if i == 0:
        s = 2.0 * math.sqrt(max(trace + 1.0, 1e-12))
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        a, b, c = ((0, 1, 2), (1, 2, 0), (2, 0, 1))[i - 1]
        s = 2.0 * math.sqrt(max(1.0 + m[a, a] - m[b, b] - m[c, c], 1e-12))
        v = [0.0, 0.0, 0.0]
        v[a], v[b], v[c] = s / 4, (m[a, b] + m[b, a]) / s, (m[a, c] + m[c, a]) / s
        q = (*v, (m[c, b] - m[b, c]) / s)
    norm = math.copysign(math.sqrt(sum(x * x for x in q)), q[3] or 1.0)
    return tuple(float(x / norm) for x in q)


def face_frames(pose: HeadPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin (3,) metres, face rotation, gaze rotation) in the camera's optical frame, as
    REP-155's face_<id> and gaze_<id> frames: both at the sellion, the gaze along the face's x
    (the head pose is all that is known of where the eyes look)."""
    return pose.sellion, pose.rotation @ FACE_AXES, pose.rotation @ GAZE_AXES


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
