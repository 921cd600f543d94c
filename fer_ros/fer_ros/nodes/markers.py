"""fer_node's RViz markers (`markers`, visualization_msgs/MarkerArray) of one frame: per face
its label and probability as text above it and, where the face mesh gave a head pose, an
arrow along the way the face points; in the image's frame, each with a lifetime so that the
markers of a lost face vanish."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from fer_ros.perception.annotate import COLOURS
from fer_ros.perception.head_pose import box_position
from fer_ros.perception.pipeline import FrameResult

NAMESPACE = 'fer_faces'
LIFETIME = Duration(sec=1)  # a marker not renewed within this goes
ARROW_LENGTH = 0.15         # m
TEXT_HEIGHT = 0.04          # m: of a capital letter
TEXT_ABOVE = 0.12           # m: above the face's centre
IDENTITY = Quaternion(w=1.0)


def _point(p: np.ndarray) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def face_markers(result: FrameResult, header, camera: np.ndarray) -> MarkerArray:
    """The markers of a frame's faces; camera: the 3 x 3 intrinsics that place a face without
    a head pose (by its box, at the distance a face of its size would be)."""
    markers = []
    for fe in result.faces:
        label = result.class_names[fe.label_index]
        b, g, r = (c / 255.0 for c in COLOURS.get(label, (255, 255, 255)))
        colour = ColorRGBA(r=r, g=g, b=b, a=1.0)
        pose = fe.state.pose if fe.state is not None else None
        origin = pose.sellion if pose is not None else box_position(fe.face.box, camera)
        common = dict(header=header, ns=NAMESPACE, action=Marker.ADD, lifetime=LIFETIME,
                      color=colour)
        markers.append(Marker(  # above the face: the optical frame's y points down
            id=2 * fe.id, type=Marker.TEXT_VIEW_FACING, text=f'{fe.id} {label} '
            f'{fe.probability:.2f}', scale=Vector3(z=TEXT_HEIGHT), pose=Pose(
                position=_point(origin - (0.0, TEXT_ABOVE, 0.0)), orientation=IDENTITY),
            **common))
        if pose is not None:
            forward = pose.rotation @ (0.0, 0.0, -1.0)  # out of the face
            markers.append(Marker(id=2 * fe.id + 1, type=Marker.ARROW,
                                  points=[_point(origin), _point(origin + ARROW_LENGTH * forward)],
                                  scale=Vector3(x=0.01, y=0.02, z=0.03),
                                  pose=Pose(orientation=IDENTITY), **common))
    return MarkerArray(markers=markers)
