"""sensor_msgs/Image <-> numpy conversion (a small, dependency-free cv_bridge).

Arrays are (H, W) for single-channel encodings and (H, W, C) otherwise, with
the dtype of the encoding. Row padding (``step`` > width * pixel size) is
honoured on input and never produced on output. Images over MAX_PIXELS are refused
(an 8000x6000 camera frame is accepted).
"""
from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np

from fer_ros.common.untrusted import printable

MAX_PIXELS = 8192 * 8192


class ImageConversionError(ValueError):
    """An Image message cannot be converted (bad encoding, size or data)."""


class Encoding(NamedTuple):
    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, Encoding] = {
    'bgr8': Encoding(np.dtype(np.uint8), 3),
    'rgb8': Encoding(np.dtype(np.uint8), 3),
    'bgra8': Encoding(np.dtype(np.uint8), 4),
    'rgba8': Encoding(np.dtype(np.uint8), 4),
    'mono8': Encoding(np.dtype(np.uint8), 1),
    'mono16': Encoding(np.dtype(np.uint16), 1),
    'bgr16': Encoding(np.dtype(np.uint16), 3),
    'rgb16': Encoding(np.dtype(np.uint16), 3),
    '8UC1': Encoding(np.dtype(np.uint8), 1),
    '8UC3': Encoding(np.dtype(np.uint8), 3),
    '16UC1': Encoding(np.dtype(np.uint16), 1),
    '32FC1': Encoding(np.dtype(np.float32), 1),
}


def _encoding(name: str) -> Encoding:
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ImageConversionError(
            f"unsupported encoding '{printable(name)}' (supported: {', '.join(ENCODINGS)})"
        ) from None


def image_to_ndarray(msg: Any) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image as an array (a copy-free view when possible)."""
    enc = _encoding(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f'empty image ({width}x{height})')
    if height * width > MAX_PIXELS:
        raise ImageConversionError(
            f'{width}x{height} image is over the {MAX_PIXELS // 2**20} megapixel limit')
    row_bytes = width * enc.channels * enc.dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width x pixel size = {row_bytes} bytes')
    data = msg.data
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else data.reshape(-1).view(np.uint8)
    if buf.size < step * height:
        raise ImageConversionError(
            f'data has {buf.size} bytes, expected step x height = {step * height}')
    rows = buf[:step * height].reshape(height, step)[:, :row_bytes]
    dtype = enc.dtype.newbyteorder('>' if msg.is_bigendian else '<')
    array = np.ascontiguousarray(rows).view(dtype).reshape(height, width, enc.channels)
    array = array.astype(enc.dtype, copy=False)  # to native byte order when needed
    return array[:, :, 0] if enc.channels == 1 else array


def ndarray_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Build a sensor_msgs/Image from an array laid out as ``encoding`` describes."""
    from sensor_msgs.msg import Image

    enc = _encoding(encoding)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != enc.channels:
        raise ImageConversionError(
            f'array of shape {array.shape} does not fit encoding {encoding} '
            f'({enc.channels} channel(s))')
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageConversionError(f'empty array of shape {array.shape}')
    if array.dtype != enc.dtype:
        raise ImageConversionError(f'array dtype {array.dtype} does not fit encoding {encoding}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = sys.byteorder == 'big'
    msg.step = msg.width * enc.channels * enc.dtype.itemsize
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


_TO_BGR = {
    'bgr8': lambda a: a,
    '8UC3': lambda a: a,
    'rgb8': lambda a: a[:, :, ::-1],
    'bgra8': lambda a: a[:, :, :3],
    'rgba8': lambda a: a[:, :, 2::-1],
    'mono8': lambda a: np.repeat(a[:, :, None], 3, axis=2),
    '8UC1': lambda a: np.repeat(a[:, :, None], 3, axis=2),
    'mono16': lambda a: np.repeat((a >> 8).astype(np.uint8)[:, :, None], 3, axis=2),
    'bgr16': lambda a: (a >> 8).astype(np.uint8),
    'rgb16': lambda a: (a[:, :, ::-1] >> 8).astype(np.uint8),
}


def image_to_bgr8(msg: Any) -> np.ndarray:
    """Return a colour image message as a contiguous (H, W, 3) uint8 BGR array."""
    array = image_to_ndarray(msg)
    try:
        convert = _TO_BGR[msg.encoding]
    except KeyError:
        raise ImageConversionError(
            f"encoding '{printable(msg.encoding)}' cannot be shown as a colour image "
            f"(colour encodings: {', '.join(_TO_BGR)})") from None
    return np.ascontiguousarray(convert(array))
