"""Face crop and input normalisation: the one definition shared by training and inference.

A face's window is the square the model sees: from the detector's box, framed like the
training images (Framing, measured per detector) or grown by the model's crop margin, and
rolled so the eyes are level when the detector gives eye keypoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from fer_ros.common.input_spec import InputSpec


@dataclass(frozen=True)
class Framing:
    """Where the training images' frame lies around a detector's face box: `scale` box sides
    wide, its centre `shift` box sides below the box centre along the face's vertical axis
    (negative: above)."""

    scale: float
    shift: float


@dataclass(frozen=True)
class Window:
    """A square of `side` px centred on (cx, cy), rotated by `roll` degrees (OpenCV's sense:
    counter-clockwise on screen) to level the eyes."""

    cx: float
    cy: float
    side: float
    roll: float = 0.0


def eye_roll(keypoints: Sequence[tuple[float, float]]) -> float:
    """Degrees by which the line from the first keypoint to the second (BlazeFace: the eyes)
    turns clockwise on screen; 0 without keypoints."""
    if len(keypoints) < 2:
        return 0.0
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


def face_window(box: Sequence[float], margin: float,
                keypoints: Sequence[tuple[float, float]] = (), framing: Framing | None = None,
                align: bool = True) -> Window:
    """The window of an (x, y, w, h) box: the training frame where the detector's framing is
    known, else the box grown by `margin` on every side; rolled by the eyes when `align`."""
    x, y, w, h = box
    roll = eye_roll(keypoints) if align else 0.0
    side, cx, cy = max(w, h), x + w / 2.0, y + h / 2.0
    if framing is None:
        return Window(cx, cy, side * (1.0 + 2.0 * margin), roll)
    down = math.radians(roll)  # the face's downward axis is (-sin, cos) of its roll
    shift = framing.shift * side
    return Window(cx - math.sin(down) * shift, cy + math.cos(down) * shift,
                  side * framing.scale, roll)


def crop_window(image: np.ndarray, window: Window, size: int) -> np.ndarray:
    """The window resized to size x size; outside pixels repeat the edge. An unrolled window
    is cropped and resized (area averaging when shrinking). A rolled one is cropped around its
    bounding square, shrunk by area averaging to at most twice the output if larger, and
    rotated and scaled in one linear resampling (two would blur the face)."""
    if window.roll == 0.0:
        x0, y0 = round(window.cx - window.side / 2.0), round(window.cy - window.side / 2.0)
        return resize_square(crop_square(image, x0, y0, max(round(window.side), 1)), size)
    turn = math.radians(window.roll)
    grow = abs(math.cos(turn)) + abs(math.sin(turn))  # bounding square / window side
    outer = max(round(window.side * grow), 1)
    square = crop_square(image, round(window.cx - outer / 2.0), round(window.cy - outer / 2.0),
                         outer)
    if outer > 2 * size * grow:
        square = resize_square(square, round(2 * size * grow))
    n = square.shape[0]
    m = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), window.roll, size * grow / n)
    m[:, 2] += (size - n) / 2.0
    return cv2.warpAffine(square, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def resize_square(image: np.ndarray, side: int) -> np.ndarray:
    """A face image at side x side: area-averaged down, bilinear up, as the node does."""
    if image.shape[0] == side and image.shape[1] == side:
        return image
    return cv2.resize(image, (side, side),
                      interpolation=cv2.INTER_AREA if image.shape[0] > side else cv2.INTER_LINEAR)


def crop_square(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """Crop a square that may extend past the image border; outside pixels repeat the edge."""
    height, width = image.shape[:2]
    x1, y1 = x0 + side, y0 + side
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f'crop ({x0}, {y0}, side {side}) lies outside the {width}x{height} image')
    crop = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1)
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    return crop


def normalize(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 crops (N, H, W) gray or (N, H, W, 3) BGR of the input size -> float32 (N, C, S, S)."""
    if crops.ndim == 3:
        crops = crops[..., None]
    if spec.channels == 1 and crops.shape[-1] == 3:
        crops = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops])[..., None]
    elif spec.channels == 3 and crops.shape[-1] == 3:
        crops = crops[..., ::-1]  # BGR -> RGB
    elif spec.channels == 3:
        crops = np.repeat(crops, 3, axis=-1)
    x = crops.astype(np.float32).transpose(0, 3, 1, 2) * (1.0 / 255.0)
    return (x - spec.mean) / spec.std


def resize_to_input(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize one uint8 face image to the model's input side."""
    return resize_square(image, spec.size)


def face_batch(image_bgr: np.ndarray, boxes: Sequence[Sequence[float]], spec: InputSpec,
               keypoints: Sequence[Sequence[tuple[float, float]]] | None = None,
               framing: Framing | None = None, align: bool = True) -> np.ndarray:
    """Crop every (x, y, w, h) face box of a BGR image into one normalised model batch
    (see face_window for keypoints, framing and align)."""
    keypoints = keypoints or [()] * len(boxes)
    crops = [crop_window(image_bgr, face_window(b, spec.crop_margin, k, framing, align),
                         spec.size) for b, k in zip(boxes, keypoints)]
    if not crops:
        return np.zeros((0, spec.channels, spec.size, spec.size), np.float32)
    return normalize(np.stack(crops), spec)
