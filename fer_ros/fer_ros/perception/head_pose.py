"""Head pose from face-mesh landmarks with cv2.solvePnP. No ROS here.

A generic face model of six points (nose tip, chin, outer eye corners, mouth corners; the
one of Mallick's "Head Pose Estimation using OpenCV and Dlib", LearnOpenCV 2016, in units
of about 0.2 mm) is fitted to the same six mesh points. Its axes are the camera's (OpenCV):
x to the image's right, y down, z away from the camera, so a face looking straight into the
camera has no rotation. Yaw turns the face to the image's right (positive: the person looks
to their left), pitch raises it (positive: up), roll tilts it clockwise on screen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MESH_POINTS = (1, 152, 33, 263, 61, 291)  # nose tip, chin, right/left eye and mouth corners
MODEL_POINTS = np.array([
    (0.0, 0.0, 0.0),           # nose tip
    (0.0, 330.0, 65.0),        # chin
    (-225.0, -170.0, 135.0),   # the person's right eye, outer corner (image left)
    (225.0, -170.0, 135.0),    # left eye, outer corner
    (-150.0, 150.0, 125.0),    # right mouth corner
    (150.0, 150.0, 125.0),     # left mouth corner
])


MODEL_UNIT = 0.0002  # metres per model unit: 450 units between the outer eye corners, 9 cm
SELLION = np.array([0.0, -180.0, 100.0])  # model units: the nose bridge between the eyes
AXIS_LENGTH = 250.0  # model units (about 5 cm): the drawn axes
FACE_WIDTH = 0.15    # metres across a detector box on an adult face: a distance without a pose
FOV_RANGE = (1.0, 179.0)  # degrees: the fields of view a camera_info's K may describe
MIN_SIDE = 16             # px: the smallest image a camera_info may describe


@dataclass(frozen=True)
class HeadPose:
    yaw: float        # degrees
    pitch: float
    roll: float
    off_axis: float   # degrees between where the face points and the line to the camera
    axes: np.ndarray  # (4, 2) pixels: the nose tip, then the ends of its x, y, -z axes
    rotation: np.ndarray     # (3, 3): the model's axes in the camera's (OpenCV optical) frame
    translation: np.ndarray  # (3,) metres: the nose tip in the camera's frame

    @property
    def sellion(self) -> np.ndarray:
        """(3,) metres: the nose bridge between the eyes, in the camera's frame."""
        return self.translation + self.rotation @ SELLION * MODEL_UNIT


def camera_matrix(width: int, height: int, horizontal_fov: float) -> np.ndarray:
    """Intrinsics of an ideal camera with this horizontal field of view (degrees)."""
    f = (width / 2.0) / math.tan(math.radians(horizontal_fov) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def box_position(box: tuple[float, float, float, float], camera: np.ndarray) -> np.ndarray:
    """(3,) metres in the camera's frame: the centre of an (x, y, w, h) detector box, at the
    distance where a face of FACE_WIDTH fills it."""
    x, y, w, h = box
    z = camera[0, 0] * FACE_WIDTH / max(w, 1.0)
    return np.array([(x + w / 2.0 - camera[0, 2]) * z / camera[0, 0],
                     (y + h / 2.0 - camera[1, 2]) * z / camera[1, 1], z])


def intrinsics_problem(k: np.ndarray, width: int, height: int) -> str | None:
    """Why a camera_info's 3 x 3 K cannot be the intrinsics of a width x height image (NaN or
    inf, a field of view outside FOV_RANGE, the principal point outside the image, a bottom
    row other than 0 0 1), or None when it can."""
    if min(width, height) < MIN_SIDE:
        return f'image size {width}x{height} is under {MIN_SIDE} px'
    if not np.isfinite(k).all():
        return 'K holds NaN or infinity'
    if k[1, 0] != 0 or tuple(k[2]) != (0.0, 0.0, 1.0):
        return 'K is not upper triangular with a bottom row of 0 0 1'
    lo, hi = (0.5 / math.tan(math.radians(fov) / 2.0) for fov in reversed(FOV_RANGE))
    for name, f, side in (('fx', k[0, 0], width), ('fy', k[1, 1], height)):
        if not lo * side <= f <= hi * side:
            return (f'{name} = {f:.6g} gives a field of view outside {FOV_RANGE[0]:g}-'
                    f'{FOV_RANGE[1]:g} degrees across {side} px')
    if not (0 <= k[0, 2] <= width and 0 <= k[1, 2] <= height):
        return f'principal point ({k[0, 2]:.6g}, {k[1, 2]:.6g}) outside the {width}x{height} image'
    return None


def scaled_camera(camera: np.ndarray, size: tuple[int, int],
                  frame: tuple[int, int]) -> np.ndarray | None:
    """Calibrated intrinsics for `size` (width, height) applied to a frame of another size of
    the same aspect ratio (a driver's binning or resize); None for another aspect ratio."""
    if size == frame:
        return camera
    sx, sy = frame[0] / size[0], frame[1] / size[1]
    if abs(sx / sy - 1.0) > 0.01:
        return None
    return np.diag([sx, sy, 1.0]) @ camera


def head_pose(points: np.ndarray, camera: np.ndarray,
              distortion: np.ndarray | None = None) -> HeadPose | None:
    """The pose of a face from its (468, 2+) mesh points in pixels; None if unsolvable."""
    image_points = np.ascontiguousarray(points[list(MESH_POINTS), :2], np.float64)
    if not np.isfinite(image_points).all():
        return None
    try:  # SQPnP asserts on degenerate input (points collapsed by absurd intrinsics)
        ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_points, camera, distortion,
                                      flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:
        return None
    if not ok or not (np.isfinite(rvec).all() and np.isfinite(tvec).all()) or tvec[2, 0] <= 0:
        return None
    r = cv2.Rodrigues(rvec)[0]
    # R = Rz(roll) Ry(-yaw) Rx(-pitch): signs as the module says
    yaw = math.degrees(math.asin(max(min(r[2, 0], 1.0), -1.0)))
    pitch = math.degrees(math.atan2(-r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    facing = -r[:, 2]                  # the face's forward direction, towards a viewer
    to_camera = -tvec[:, 0] / np.linalg.norm(tvec)
    off_axis = math.degrees(math.acos(max(min(float(facing @ to_camera), 1.0), -1.0)))
    ends = np.array([(0, 0, 0), (AXIS_LENGTH, 0, 0), (0, AXIS_LENGTH, 0), (0, 0, -AXIS_LENGTH)])
    axes = cv2.projectPoints(ends, rvec, tvec, camera, distortion)[0].reshape(4, 2)
    if not np.isfinite(axes).all():
        return None
    return HeadPose(yaw, pitch, roll, off_axis, axes, r, tvec[:, 0] * MODEL_UNIT)
