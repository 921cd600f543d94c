"""Face crop and input normalisation: the one definition shared by training and inference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What an expression model expects as input.

    size: side of the square input in pixels.
    channels: 1 for grayscale, 3 for RGB.
    mean, std: per-channel normalisation applied after scaling pixels to [0, 1].
    crop_margin: fraction of the detector box side added on every side before
        the square crop, so live crops are framed like the training images.
    """

    size: int
    channels: int
    mean: float
    std: float
    crop_margin: float

    def __post_init__(self) -> None:
        if self.size < 8 or self.channels not in (1, 3) or self.std <= 0 or self.crop_margin < 0:
            raise ValueError(f'invalid input spec {self}')


def square_box(box: Sequence[float], margin: float) -> tuple[int, int, int]:
    """Return (x0, y0, side) of the square crop around an (x, y, w, h) box grown by margin."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    side_px = max(int(round(side)), 1)
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side_px


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
    side = spec.size
    if image.shape[0] == side and image.shape[1] == side:
        return image
    shrinking = image.shape[0] > side
    return cv2.resize(image, (side, side),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def face_batch(image_bgr: np.ndarray, boxes: Sequence[Sequence[float]],
               spec: InputSpec) -> np.ndarray:
    """Crop every (x, y, w, h) face box of a BGR image into one normalised model batch."""
    crops = [resize_to_input(crop_square(image_bgr, *square_box(b, spec.crop_margin)), spec)
             for b in boxes]
    if not crops:
        return np.zeros((0, spec.channels, spec.size, spec.size), np.float32)
    return normalize(np.stack(crops), spec)
