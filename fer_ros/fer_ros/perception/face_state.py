"""What the face mesh tells of each tracked face: landmarks, eyes, blinks, head pose. No ROS."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fer_ros.perception.detection import Face
from fer_ros.perception.eyes import BlinkCounter, eye_openness
from fer_ros.perception.head_pose import HeadPose, camera_matrix, head_pose
from fer_ros.perception.landmarks import FaceLandmarker

MIN_PRESENCE = 0.5  # the mesh model's face score below which a box holds no usable face


@dataclass(frozen=True)
class FaceState:
    points: np.ndarray                 # (468, 3) face mesh, pixels of the image
    eye_openness: tuple[float, float]  # the person's left and right eye, 0 closed .. 1 open
    blinks: int                        # of the face's track so far
    blink_rate: float                  # per minute over the track's last 60 s; NaN at first
    pose: HeadPose | None              # None where solvePnP finds no pose in front
    looking: bool                      # the face points at the camera (within the threshold)


class FaceStates:
    """Run the face mesh on every face and keep a blink counter per track id."""

    def __init__(self, landmarker: FaceLandmarker, horizontal_fov: float = 60.0,
                 looking_threshold: float = 25.0):
        self.landmarker = landmarker
        self.horizontal_fov, self.looking_threshold = horizontal_fov, looking_threshold
        self._blinks: dict[int, BlinkCounter] = {}
        self.problems: list[str] = []  # what failed on the last frame's faces

    def update(self, image_bgr: np.ndarray, faces: Sequence[Face], ids: Sequence[int],
               live_ids: set[int], stamp: float,
               camera: np.ndarray | None = None) -> list[FaceState | None]:
        """States of this frame's faces (their track ids in `ids`), None where the mesh model
        sees no face in the box; counters of tracks not in `live_ids` are forgotten.
        camera: 3 x 3 intrinsics, else those of horizontal_fov."""
        for gone in self._blinks.keys() - live_ids:
            del self._blinks[gone]
        if camera is None:
            camera = camera_matrix(image_bgr.shape[1], image_bgr.shape[0], self.horizontal_fov)
        out, self.problems = [], []
        for face, track_id in zip(faces, ids):
            try:
                out.append(self._state(image_bgr, face, track_id, stamp, camera))
            except Exception as exc:  # one face's mesh or eyes never cost the frame
                self.problems.append(f'face mesh failed: {type(exc).__name__}: {exc}')
                out.append(None)
        return out

    def _state(self, image_bgr: np.ndarray, face: Face, track_id: int, stamp: float,
               camera: np.ndarray) -> FaceState | None:
        mesh = self.landmarker.mesh(image_bgr, face)
        if mesh.presence < MIN_PRESENCE:
            return None
        points = mesh.points
        left, right = eye_openness(points)
        counter = self._blinks.setdefault(track_id, BlinkCounter())
        counter.update((left + right) / 2.0, stamp)
        pose = head_pose(points, camera)  # None costs only the pose fields
        return FaceState(points, (left, right), counter.count, counter.rate(stamp), pose,
                         pose is not None and pose.off_axis <= self.looking_threshold)
