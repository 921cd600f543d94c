import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_ros.perception.image_conversion import (ENCODINGS, ImageConversionError, image_to_bgr8,
                                                 image_to_ndarray, ndarray_to_image)


def _random(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    enc = ENCODINGS[encoding]
    shape = (height, width) if enc.channels == 1 else (height, width, enc.channels)
    rng = np.random.default_rng(0)
    if enc.dtype.kind == 'f':
        return rng.standard_normal(shape).astype(enc.dtype)
    return rng.integers(0, np.iinfo(enc.dtype).max, shape, dtype=enc.dtype)


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    array = _random(encoding)
    header = Header(frame_id='camera_frame')
    msg = ndarray_to_image(array, encoding, header)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * array.itemsize * (1 if array.ndim == 2 else array.shape[2])
    assert msg.header.frame_id == 'camera_frame'
    back = image_to_ndarray(msg)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8', 'bgra8', 'rgba8', 'mono16'])
def test_padded_step_is_honoured(encoding):
    array = _random(encoding, 4, 5)
    row = array.reshape(4, -1).view(np.uint8).reshape(4, -1)
    padded = np.concatenate([row, np.full((4, 3), 0xAB, np.uint8)], axis=1)
    msg = Image(height=4, width=5, encoding=encoding, step=padded.shape[1],
                data=padded.tobytes())
    np.testing.assert_array_equal(image_to_ndarray(msg), array)


def test_big_endian_16_bit():
    array = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    msg = Image(height=3, width=4, encoding='mono16', step=8, is_bigendian=True,
                data=array.astype('>u2').tobytes())
    np.testing.assert_array_equal(image_to_ndarray(msg), array)


def test_to_bgr8_from_every_colour_layout():
    bgr = _random('bgr8')
    rgb, rgba = bgr[:, :, ::-1], np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 9, np.uint8)])
    bgra = np.dstack([bgr, np.zeros(bgr.shape[:2], np.uint8)])
    for array, encoding in ((bgr, 'bgr8'), (rgb, 'rgb8'), (bgra, 'bgra8'), (rgba, 'rgba8')):
        np.testing.assert_array_equal(image_to_bgr8(ndarray_to_image(array, encoding)), bgr)
    mono = _random('mono8')
    out = image_to_bgr8(ndarray_to_image(mono, 'mono8'))
    assert out.shape == mono.shape + (3,)
    np.testing.assert_array_equal(out[:, :, 1], mono)


@pytest.mark.parametrize('kwargs, message', [
    (dict(encoding='yuv422_yuy2'), 'unsupported encoding'),
    (dict(height=0), 'empty image'),
    (dict(width=0), 'empty image'),
    (dict(step=10), 'step 10 is smaller'),
    (dict(data=bytes(5 * 21 - 1)), 'expected step x height'),
])
def test_bad_messages_raise_clear_errors(kwargs, message):
    fields = dict(height=5, width=7, encoding='bgr8', step=21, data=bytes(5 * 21))
    fields.update(kwargs)
    with pytest.raises(ImageConversionError, match=message):
        image_to_ndarray(Image(**fields))


def test_bad_arrays_raise_clear_errors():
    with pytest.raises(ImageConversionError, match='does not fit encoding'):
        ndarray_to_image(np.zeros((2, 2, 3), np.uint8), 'mono8')
    with pytest.raises(ImageConversionError, match='dtype'):
        ndarray_to_image(np.zeros((2, 2, 3), np.float32), 'bgr8')
    with pytest.raises(ImageConversionError, match='empty'):
        ndarray_to_image(np.zeros((0, 2, 3), np.uint8), 'bgr8')
    with pytest.raises(ImageConversionError, match='colour'):
        image_to_bgr8(ndarray_to_image(np.zeros((2, 2), np.float32), '32FC1'))


def test_images_over_the_pixel_limit_are_refused_before_reading_data():
    from fer_ros.perception.image_conversion import MAX_PIXELS
    side = int(MAX_PIXELS ** 0.5) + 1
    msg = Image(height=side, width=side, encoding='mono8', step=side, data=bytes(16))
    with pytest.raises(ImageConversionError, match='megapixel limit'):
        image_to_ndarray(msg)
    wide = 8000 * 6000  # a real camera frame is accepted
    assert wide <= MAX_PIXELS


@pytest.mark.parametrize('encoding', ['bgr8\n[FATAL] [fer_node]: forged', '\x1b[2J\x1b[31mred',
                                      'x' * 100_000, 'caf\u00e9\r\n' * 3000])
def test_encodings_from_the_wire_are_escaped_and_bounded_in_errors(encoding):
    msg = Image(height=2, width=2, encoding=encoding, step=6, data=bytes(12))
    with pytest.raises(ImageConversionError) as info:
        image_to_bgr8(msg)
    text = str(info.value)
    assert '\n' not in text and '\r' not in text and '\x1b' not in text
    assert text.isascii() and len(text) < 400
