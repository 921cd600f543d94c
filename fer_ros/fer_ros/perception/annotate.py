"""The annotated image: boxes and labels, and what the face mesh adds, each switchable."""
from __future__ import annotations

import math

import cv2
import numpy as np

from fer_ros.perception.pipeline import FaceExpression, FrameResult

COLOURS = {  # BGR
    'happy': (60, 200, 60), 'surprise': (0, 200, 255), 'neutral': (200, 200, 200),
    'sad': (200, 120, 40), 'angry': (40, 40, 230), 'disgust': (60, 140, 100),
    'fear': (180, 60, 180), 'contempt': (90, 90, 160),
}
_AXES = ((0, 0, 255), (0, 255, 0), (255, 0, 0))  # x red, y green, forward blue (BGR)


def annotate(image_bgr: np.ndarray, result: FrameResult, landmarks: bool = True,
             head_pose: bool = True, blinks: bool = True) -> np.ndarray:
    """A copy of the frame with a box and 'id: label probability' per face; where the face
    mesh ran, also its points, its head-pose axes and its blink count."""
    out = image_bgr.copy()
    scale = max(out.shape[1] / 1000.0, 0.45)
    thickness = max(int(round(scale * 2)), 1)
    for fe in result.faces:
        label = result.class_names[fe.label_index]
        colour = COLOURS.get(label, (255, 255, 255))
        state = fe.state
        if state is not None and landmarks:
            for x, y in state.points[:, :2].astype(np.int32):
                cv2.circle(out, (int(x), int(y)), 0, colour, -1)
        if state is not None and head_pose and state.pose is not None:
            origin, *ends = (tuple(int(round(v)) for v in p) for p in state.pose.axes)
            for end, axis_colour in zip(ends, _AXES):
                cv2.line(out, origin, end, axis_colour, thickness, cv2.LINE_AA)
        text = f'{fe.id}: {label} {fe.probability:.2f}'
        if state is not None and blinks:
            text += f' blinks {state.blinks}'
            if not math.isnan(state.blink_rate):
                text += f' ({state.blink_rate:.0f}/min)'
        _box(out, fe, text, colour, scale, thickness)
    return out


def _box(out: np.ndarray, fe: FaceExpression, text: str, colour: tuple[int, int, int],
         scale: float, thickness: int) -> None:
    f = fe.face
    cv2.rectangle(out, (f.x, f.y), (f.x + f.width, f.y + f.height), colour, thickness)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = f.y - base - 2 if f.y - th - base - 2 >= 0 else f.y + f.height + th + 2
    cv2.rectangle(out, (f.x, y - th - 2), (f.x + tw + 2, y + base), colour, cv2.FILLED)
    cv2.putText(out, text, (f.x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                thickness, cv2.LINE_AA)
