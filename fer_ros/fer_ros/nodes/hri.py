"""fer_node's REP-155 (ROS4HRI) outputs, with the `hri` parameter: /humans/faces/tracked and,
for each confirmed track, /humans/faces/<id>/roi, cropped, aligned and expression.

hri_msgs is not a dependency of fer_node's default outputs: it is imported here only when the
feature is on (ros-<distro>-hri-msgs on a ROS install). Per-face publishers appear when a track
is confirmed and are destroyed when it ends, so their number follows the faces in view.
"""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_ros.perception import rep155
from fer_ros.perception.image_conversion import ndarray_to_image
from fer_ros.perception.pipeline import FrameResult

HRI_REQUIREMENT = ('hri_msgs (REP-155 messages: apt install ros-$ROS_DISTRO-hri-msgs, or build '
                   'ros4hri/hri_msgs into the workspace)')


class HriUnavailable(RuntimeError):
    """hri_msgs cannot be imported."""


class _Face:
    """The publishers of one tracked face."""

    def __init__(self, node: Node, face_id: str):
        from hri_msgs.msg import Expression, NormalizedRegionOfInterest2D
        base = f'/humans/faces/{face_id}/'
        self.publishers = [node.create_publisher(NormalizedRegionOfInterest2D, base + 'roi', 10),
                           node.create_publisher(Image, base + 'cropped', 1),
                           node.create_publisher(Image, base + 'aligned', 1),
                           node.create_publisher(Expression, base + 'expression', 10)]
        self.roi, self.cropped, self.aligned, self.expression = self.publishers


class HriFaces:
    """Publish a frame's faces as REP-155 says; `prefix` makes this node's ids its own."""

    def __init__(self, node: Node, prefix: str, size: tuple[int, int] = rep155.CROP_SIZE):
        try:
            from hri_msgs.msg import IdsList
        except ImportError as exc:
            raise HriUnavailable(f'hri: true needs {HRI_REQUIREMENT} ({exc})') from None
        self.node, self.prefix, self.size = node, prefix, size
        self.tracked = node.create_publisher(IdsList, '/humans/faces/tracked', 10)
        self._faces: dict[int, _Face] = {}

    @property
    def face_publishers(self) -> int:
        return sum(len(face.publishers) for face in self._faces.values())

    def publish(self, result: FrameResult, header, image: np.ndarray,
                live_tracks: set[int]) -> None:
        """One frame's outputs; the publishers of tracks not in `live_tracks` go."""
        from hri_msgs.msg import Expression, IdsList, NormalizedRegionOfInterest2D
        height, width = image.shape[:2]
        ids = []
        for fe in result.faces:
            if not fe.track.confirmed:
                continue
            face_id = rep155.face_id(self.prefix, fe.id)
            ids.append(face_id)
            face = self._faces.get(fe.id) or self._faces.setdefault(fe.id, _Face(self.node,
                                                                                face_id))
            xmin, ymin, xmax, ymax = rep155.normalized_roi(fe.face.box, width, height)
            face.roi.publish(NormalizedRegionOfInterest2D(
                header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=fe.face.score))
            face.expression.publish(Expression(  # what fer_msgs says of the face
                header=header, expression=rep155.EXPRESSION[result.class_names[fe.label_index]],
                valence=fe.valence, arousal=fe.arousal, confidence=fe.probability))
            if face.cropped.get_subscription_count() or face.aligned.get_subscription_count():
                cropped, aligned = rep155.face_crops(image, fe.face.box, fe.face.keypoints,
                                                     self.size)
                face.cropped.publish(ndarray_to_image(cropped, 'bgr8', header))
                face.aligned.publish(ndarray_to_image(aligned, 'bgr8', header))
        self.tracked.publish(IdsList(header=header, ids=ids))
        for track in [t for t in self._faces if t not in live_tracks]:
            self._drop(track)

    def _drop(self, track: int) -> None:
        for publisher in self._faces.pop(track).publishers:
            self.node.destroy_publisher(publisher)

    def close(self) -> None:
        for track in list(self._faces):
            self._drop(track)
        self.node.destroy_publisher(self.tracked)
