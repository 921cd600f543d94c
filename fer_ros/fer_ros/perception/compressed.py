"""sensor_msgs/CompressedImage <-> BGR arrays, as image_transport's compressed plugin has them.

``format`` is ``'<encoding>; <jpeg|png> compressed <payload layout>'`` (``'rgb8; jpeg compressed
bgr8'``, ``'mono16; png compressed '``) or, from older publishers, ``'jpeg'`` or ``'png'``. The
payload comes from anyone on the ROS graph: its headers are checked before OpenCV reads it.
"""
from __future__ import annotations

import array
import struct

import cv2
import numpy as np

from fer_ros.common.untrusted import printable
from fer_ros.perception.image_conversion import MAX_PIXELS, ImageConversionError
from fer_ros.perception.native_log import native_stderr_silenced

# Original encodings a format may name: colour ones (sensor_msgs isColor), then the others.
COLOUR_ENCODINGS = {'bgr8', 'rgb8', 'bgra8', 'rgba8', 'bgr16', 'rgb16', 'bgra16', 'rgba16'}
OTHER_ENCODINGS = {'mono8', 'mono16', '8UC1', '8UC3'}
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers
_MAX_SEGMENTS = 1000  # JPEG markers or PNG chunks walked in Python, at most
# The default pixel budget of a compressed frame: DCI 4K. A 1 MB payload can claim 64 MP (1000:1
# for a uniform image), so the header is read, and a frame over budget refused, before decoding.
COMPRESSED_MAX_PIXELS = 4096 * 2160


def _png_size(data: memoryview) -> tuple[int, int, int]:
    """Width, height and bits per sample."""
    if len(data) < 33 or data[12:16] != b'IHDR':
        raise ImageConversionError('PNG without a header chunk (IHDR)')
    # OpenCV allocates and zeroes what each chunk up to the image data says it holds (a 1 KB
    # PNG that says 2 GB costs 2 GB): those chunks must fit in the payload.
    at = 8
    for _ in range(_MAX_SEGMENTS):
        end = at + 12 + (struct.unpack_from('>I', data, at)[0] if at + 8 <= len(data) else 0)
        if end > len(data):
            raise ImageConversionError('PNG chunk runs past the end of the data')
        if data[at + 4:at + 8] == b'IDAT':
            return (*struct.unpack_from('>II', data, 16), data[24])
        if data[at + 4:at + 8] == b'acTL':
            raise ImageConversionError('animated PNG, not supported')
        at = end
    raise ImageConversionError(f'PNG without image data in its first {_MAX_SEGMENTS} chunks')


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    at = 2
    for _ in range(_MAX_SEGMENTS):
        if at + 9 > len(data):
            break
        if data[at] != 0xFF:
            raise ImageConversionError(f'JPEG marker expected at byte {at}')
        marker = data[at + 1]
        if marker in _SOF:
            height, width = struct.unpack_from('>HH', data, at + 5)
            return width, height, 8
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            break
        # Fill byte, markers without a length (TEM, RSTn), then segments with one.
        at += (1 if marker == 0xFF else 2 if marker == 0x01 or 0xD0 <= marker <= 0xD7
               else 2 + struct.unpack_from('>H', data, at + 2)[0])
    raise ImageConversionError('JPEG without a frame header (SOF marker) where expected')


def decode_compressed(data: bytes | array.array | memoryview | np.ndarray, format: str,
                      max_pixels: int = COMPRESSED_MAX_PIXELS) -> np.ndarray:
    """Decode a CompressedImage's ``data`` and ``format`` into a contiguous (H, W, 3) uint8 BGR
    image: the image's true colours in BGR order, what image_to_bgr8 gives for the Image that
    image_transport's compressed subscriber would rebuild. The payload is JPEG or PNG, told
    by its first bytes; grey becomes three equal channels, 16-bit values keep their high byte,
    alpha is dropped. Raises ImageConversionError for anything it cannot or will not decode,
    among them images over ``max_pixels`` (16-bit PNGs count twice, as they decode to twice
    the memory), told by the header before any pixel is decoded.

    Damaged payloads make libjpeg, libpng and OpenCV write to stderr; that is dropped, and so
    is what other threads write to stderr while a frame is being decoded."""
    if 'compressedDepth' in format:
        raise ImageConversionError(f"'{printable(format)}' is a compressedDepth image (depth "
                                   'map), not supported: subscribe to a colour or mono topic')
    encoding, split, layout = format.partition(';')
    if split and encoding not in COLOUR_ENCODINGS | OTHER_ENCODINGS:
        raise ImageConversionError(f"unsupported encoding '{printable(encoding)}' in format "
                                   f"'{printable(format)}'")
    # A colour image whose payload is not declared BGR ('... compressed rgb8') was encoded
    # from RGB-ordered pixels: OpenCV's BGR holds them swapped.
    swap = bool(split) and encoding in COLOUR_ENCODINGS and 'compressed bgr' not in layout
    buf = (np.ascontiguousarray(data).reshape(-1).view(np.uint8) if isinstance(data, np.ndarray)
           else np.frombuffer(data, np.uint8))
    view = memoryview(buf)
    if not len(view):
        raise ImageConversionError('empty compressed image')
    if view[:8] == b'\x89PNG\r\n\x1a\n':
        kind, (width, height, depth) = 'PNG', _png_size(view)
    elif view[:2] == b'\xff\xd8':
        kind, (width, height, depth) = 'JPEG', _jpeg_size(view)
    else:
        raise ImageConversionError(
            f"compressed image (format '{printable(format)}') is neither PNG nor JPEG")
    if width == 0 or height == 0:
        raise ImageConversionError(f'empty {kind} image ({width}x{height})')
    if width * height > MAX_PIXELS:
        raise ImageConversionError(f'{width}x{height} {kind} image is over the '
                                   f'{MAX_PIXELS // 2**20} megapixel limit')
    # A Huffman-coded JPEG takes at least a bit per 8x8 block; a shorter one is mostly
    # missing and would still cost a full-size decode (1 KB claiming 8192x8192: 0.5 s).
    if kind == 'JPEG' and width * height > 512 * len(view):
        raise ImageConversionError(f'a {len(view)}-byte JPEG cannot hold {width}x{height} pixels')
    if width * height * (2 if depth > 8 else 1) > max_pixels:
        raise ImageConversionError(
            f'{width}x{height} {"16-bit " if depth > 8 else ""}{kind} image is over the '
            f'budget of {max_pixels} pixels for a compressed frame'
            + (' (16-bit counts twice)' if depth > 8 else ''))
    # No EXIF rotation, as in the ROS subscriber; 16-bit PNG is shifted below.
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    flags |= cv2.IMREAD_ANYDEPTH if kind == 'PNG' else 0
    try:
        with native_stderr_silenced():
            image = cv2.imdecode(buf, flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageConversionError(f'{width}x{height} {kind} image cannot be decoded '
                                   '(damaged or unsupported)')
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8, out=image).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, ::-1] if swap else image)


def encode_compressed(bgr: np.ndarray, fmt: str = 'jpeg', quality: int = 80,
                      png_level: int = 3) -> tuple[bytes, str]:
    """Compress an (H, W, 3) uint8 BGR image for a CompressedImage: returns ``data`` and the
    ``format`` image_transport's compressed subscriber expects (``'bgr8; jpeg compressed
    bgr8'``). ``fmt`` is 'jpeg' (``quality`` 1-100) or 'png' (``png_level`` 1-9)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8 or not bgr.size:
        raise ImageConversionError(f'expected an (H, W, 3) uint8 BGR image, got {bgr.shape} '
                                   f'{bgr.dtype}')
    if fmt not in ('jpeg', 'png'):
        raise ValueError(f"compression format must be 'jpeg' or 'png', got {fmt!r}")
    if fmt == 'jpeg' and not 1 <= quality <= 100:
        raise ValueError(f'JPEG quality must be 1-100, got {quality}')
    if fmt == 'png' and not 1 <= png_level <= 9:
        raise ValueError(f'PNG compression level must be 1-9, got {png_level}')
    params = ([cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == 'jpeg'
              else [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    ok, payload = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', bgr, params)
    if not ok:
        raise ImageConversionError(f'OpenCV could not encode a {bgr.shape} image as {fmt}')
    return payload.tobytes(), f'bgr8; {fmt} compressed bgr8'
