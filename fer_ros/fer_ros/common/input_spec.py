"""What an expression model expects as input: shared by the models, which declare it, and
the preprocessing, which honours it."""
from __future__ import annotations

from dataclasses import dataclass


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
