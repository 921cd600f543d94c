"""fer_node's REP-155 (ROS4HRI) outputs, with the `hri` parameter: /humans/faces/tracked and,
for each confirmed track, /humans/faces/<id>/roi, cropped, aligned, landmarks and expression,
and the face_<id> and gaze_<id> frames on /tf.

hri_msgs and tf2_msgs are not dependencies of fer_node's default outputs: they are imported
here only when the feature is on (ros-<distro>-hri-msgs and tf2_msgs on a ROS install).
Per-face publishers appear when a track is confirmed and are destroyed when it ends, so their
number follows the faces in view.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from fer_ros.perception import rep155
from fer_ros.perception.image_conversion import ndarray_to_image
from fer_ros.perception.pipeline import FaceExpression, FrameResult

HRI_REQUIREMENT = ('hri_msgs (REP-155 messages: apt install ros-$ROS_DISTRO-hri-msgs, or build '
                   'ros4hri/hri_msgs into the workspace)')
TF_QOS = QoSProfile(depth=100)  # tf2_ros.TransformBroadcaster's


class HriUnavailable(RuntimeError):
    """hri_msgs cannot be imported."""


class _Face:
    """The publishers of one tracked face."""

    def __init__(self, node: Node, face_id: str):
        from hri_msgs.msg import Expression, FacialLandmarks, NormalizedRegionOfInterest2D
        base = f'/humans/faces/{face_id}/'
        self.publishers = [node.create_publisher(NormalizedRegionOfInterest2D, base + 'roi', 10),
                           node.create_publisher(Image, base + 'cropped', 1),
                           node.create_publisher(Image, base + 'aligned', 1),
                           node.create_publisher(FacialLandmarks, base + 'landmarks', 10),
                           node.create_publisher(Expression, base + 'expression', 10)]
        self.roi, self.cropped, self.aligned, self.landmarks, self.expression = self.publishers


def tf_sender(node: Node):
    """A function that sends a list of TransformStamped on /tf: tf2_ros's broadcaster where
    tf2_ros is installed, else a publisher of tf2_msgs/TFMessage with its QoS; None (and an
    error logged) without tf2_msgs."""
    try:
        from tf2_ros import TransformBroadcaster
        return TransformBroadcaster(node, TF_QOS).sendTransform
    except ImportError:
        pass
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        node.get_logger().error(f'the face and gaze frames need tf2_msgs ({exc}); no TF')
        return None
    publisher = node.create_publisher(TFMessage, '/tf', TF_QOS)
    return lambda transforms: publisher.publish(TFMessage(transforms=transforms))


def _transform(header, child: str, origin: np.ndarray, rotation: np.ndarray) -> TransformStamped:
    x, y, z, w = rep155.quaternion(rotation)
    return TransformStamped(header=header, child_frame_id=child, transform=Transform(
        translation=Vector3(x=float(origin[0]), y=float(origin[1]), z=float(origin[2])),
        rotation=Quaternion(x=x, y=y, z=z, w=w)))


def face_transforms(header, face_id: str, fe: FaceExpression) -> list[TransformStamped]:
    """face_<id> and gaze_<id> in the image's frame, where the face has a head pose."""
    if fe.state is None or fe.state.pose is None or not header.frame_id:
        return []
    origin, face, gaze = rep155.face_frames(fe.state.pose)
    return [_transform(header, f'face_{face_id}', origin, face),
            _transform(header, f'gaze_{face_id}', origin, gaze)]


class HriFaces:
    """Publish a frame's faces as REP-155 says; `prefix` makes this node's ids its own."""

    def __init__(self, node: Node, prefix: str, size: tuple[int, int] = rep155.CROP_SIZE):
        try:
            from hri_msgs.msg import IdsList
        except ImportError as exc:
            raise HriUnavailable(f'hri: true needs {HRI_REQUIREMENT} ({exc})') from None
        self.node, self.prefix, self.size = node, prefix, size
        self.tracked = node.create_publisher(IdsList, '/humans/faces/tracked', 10)
        self.send_tf = tf_sender(node)
        self._faces: dict[int, _Face] = {}

    @property
    def face_publishers(self) -> int:
        return sum(len(face.publishers) for face in self._faces.values())

    def publish(self, result: FrameResult, header, image: np.ndarray,
                live_tracks: set[int]) -> None:
        """One frame's outputs; the publishers of tracks not in `live_tracks` go."""
        from hri_msgs.msg import (Expression, FacialLandmarks, IdsList,
                                  NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D)
        height, width = image.shape[:2]
        ids, transforms = [], []
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
            label = result.class_names[fe.label_index]
            face.expression.publish(Expression(  # what fer_msgs says of the face
                header=header, expression=rep155.EXPRESSION.get(label, label),
                valence=fe.valence, arousal=fe.arousal, confidence=fe.probability))
            if fe.state is not None:
                points = rep155.facial_landmarks(fe.state.points, width, height)
                face.landmarks.publish(FacialLandmarks(
                    header=header, height=height, width=width, landmarks=[
                        NormalizedPointOfInterest2D(x=float(x), y=float(y), c=1.0)
                        for x, y in points]))
            if face.cropped.get_subscription_count() or face.aligned.get_subscription_count():
                cropped, aligned = rep155.face_crops(image, fe.face.box, fe.face.keypoints,
                                                     self.size)
                face.cropped.publish(ndarray_to_image(cropped, 'bgr8', header))
                face.aligned.publish(ndarray_to_image(aligned, 'bgr8', header))
            transforms += face_transforms(header, face_id, fe)
        self.tracked.publish(IdsList(header=header, ids=ids))
        if transforms and self.send_tf is not None:
            self.send_tf(transforms)
        for track in [t for t in self._faces if t not in live_tracks]:
            self._drop(track)

    def _drop(self, track: int) -> None:
        for publisher in self._faces.pop(track).publishers:
            self.node.destroy_publisher(publisher)

    def close(self) -> None:
        for track in list(self._faces):
            self._drop(track)
        self.node.destroy_publisher(self.tracked)
