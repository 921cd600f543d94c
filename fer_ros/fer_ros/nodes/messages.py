"""fer_msgs messages of what the core found in a frame."""
from __future__ import annotations

import math

from builtin_interfaces.msg import Duration
from fer_msgs.msg import FaceEmotion, FaceEmotionArray
from geometry_msgs.msg import Point32
from sensor_msgs.msg import RegionOfInterest

from fer_ros.perception.face_state import FaceState
from fer_ros.perception.pipeline import FrameResult


def to_msg(result: FrameResult, header, width: int, height: int, model: str) -> FaceEmotionArray:
    """The message of one frame; model and class names must come from the same pipeline."""
    msg = FaceEmotionArray(header=header, image_width=width, image_height=height, model=model,
                           class_names=list(result.class_names))
    for fe in result.faces:
        f = fe.face
        msg.faces.append(with_state(FaceEmotion(
            id=fe.id, track_confirmed=fe.track.confirmed, track_frames=fe.track.frames,
            track_age=duration(fe.track.age),
            roi=RegionOfInterest(x_offset=f.x, y_offset=f.y, width=f.width, height=f.height),
            detection_confidence=f.score,
            label=result.class_names[fe.label_index], label_index=fe.label_index,
            label_probability=fe.probability,
            probabilities=fe.probabilities.astype(float).tolist(),
            valence=fe.valence, arousal=fe.arousal), fe.state))
    return msg


def with_state(face: FaceEmotion, state: FaceState | None) -> FaceEmotion:
    """The face-mesh fields of a face: NaN, empty and zero without a state."""
    nan = math.nan
    face.left_eye_openness = face.right_eye_openness = face.blink_rate = nan
    face.yaw = face.pitch = face.roll = nan
    if state is None:
        return face
    face.landmarks = [Point32(x=x, y=y, z=z) for x, y, z in state.points.tolist()]
    face.left_eye_openness, face.right_eye_openness = state.eye_openness
    face.blink_count, face.blink_rate = state.blinks, state.blink_rate
    if state.pose is not None:
        face.yaw, face.pitch, face.roll = state.pose.yaw, state.pose.pitch, state.pose.roll
    face.looking_at_camera = state.looking
    return face


def duration(seconds: float) -> Duration:
    """A Duration, clamped to what its int32 seconds hold (never wrapped)."""
    nanoseconds = min(max(round(seconds * 1e9), -2**31 * 10**9), 2**31 * 10**9 - 1)
    return Duration(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9
