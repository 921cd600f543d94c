"""fer_msgs messages of what the core found in a frame."""
from __future__ import annotations

from builtin_interfaces.msg import Duration
from fer_msgs.msg import FaceEmotion, FaceEmotionArray
from sensor_msgs.msg import RegionOfInterest

from fer_ros.perception.pipeline import FrameResult


def to_msg(result: FrameResult, header, width: int, height: int, model: str) -> FaceEmotionArray:
    """The message of one frame; model and class names must come from the same pipeline."""
    msg = FaceEmotionArray(header=header, image_width=width, image_height=height, model=model,
                           class_names=list(result.class_names))
    for fe in result.faces:
        f = fe.face
        msg.faces.append(FaceEmotion(
            id=fe.id, track_confirmed=fe.track.confirmed, track_frames=fe.track.frames,
            track_age=duration(fe.track.age),
            roi=RegionOfInterest(x_offset=f.x, y_offset=f.y, width=f.width, height=f.height),
            detection_confidence=f.score,
            label=result.class_names[fe.label_index], label_index=fe.label_index,
            label_probability=fe.probability,
            probabilities=fe.probabilities.astype(float).tolist(),
            valence=fe.valence, arousal=fe.arousal))
    return msg


def duration(seconds: float) -> Duration:
    nanoseconds = round(seconds * 1e9)
    return Duration(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def stamp_seconds(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9
