"""Camera degradations for training match OpenCV's, and the capture augmentation applies them."""
import cv2
import numpy as np
import pytest
import torch

from fer_ros.learning.augment import Augment
from fer_ros.learning.degrade import Degrade, down_up, gaussian_blur, jpeg


@pytest.fixture(scope='module')
def faces():
    """Smooth 48 px 'faces' with edges: blurred noise plus a bright bar."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 48, 48)).astype(np.uint8)
    images = np.stack([cv2.GaussianBlur(im, (0, 0), 1.2) for im in images])
    images[:, 18:24, 8:40] = 230
    return images


def _pixels(images):
    return torch.from_numpy(images).float().unsqueeze(1) / 255


@pytest.mark.parametrize('quality', [20, 30, 60])
def test_jpeg_is_the_luma_round_trip_opencv_does(faces, quality):
    ours = (jpeg(_pixels(faces), torch.full((len(faces),), float(quality))) * 255)
    ours = ours.round().squeeze(1).numpy()
    theirs = np.stack([cv2.imdecode(cv2.imencode(
        '.jpg', im, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE) for im in faces])
    assert np.abs(ours - theirs).mean() < 0.5  # rounding of the DCT only
    assert np.abs(theirs.astype(float) - faces).mean() > 2  # it did compress


def test_blur_and_low_resolution_are_opencv_s(faces):
    for sigma in (0.5, 1.5):
        ours = gaussian_blur(_pixels(faces), torch.full((len(faces),), sigma)) * 255
        theirs = np.stack([cv2.GaussianBlur(im, (9, 9), sigma, borderType=cv2.BORDER_REPLICATE)
                           for im in faces])
        assert np.abs(ours.squeeze(1).numpy() - theirs).mean() < 0.6
    ours = down_up(_pixels(faces), 24) * 255
    theirs = np.stack([cv2.resize(cv2.resize(im, (24, 24), interpolation=cv2.INTER_AREA),
                                  (48, 48), interpolation=cv2.INTER_LINEAR) for im in faces])
    assert np.abs(ours.squeeze(1).numpy() - theirs).mean() < 0.6


def test_degrade_applies_each_with_its_probability(faces):
    p = _pixels(faces)
    off = Degrade(0, (1, 1), 0, (1, 1), 0, (24,), 0, (50, 50), 0)
    assert torch.equal(off(p, torch.Generator().manual_seed(0)), p)
    dark = Degrade(1.0, (0.5, 0.5), 0, (1, 1), 0, (24,), 0, (50, 50), 0)
    torch.testing.assert_close(dark(p, torch.Generator().manual_seed(0)), p * 0.5)
    every = Degrade(1.0, (0.3, 1.0), 1.0, (0.4, 1.5), 1.0, (16,), 1.0, (20, 90), 1.0)
    a, b = (every(p, torch.Generator().manual_seed(s)) for s in (1, 1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1  # seeded, in range
    assert (a - p).abs().mean() > 0.03


def test_capture_augmentation_keeps_the_batch_and_normalisation():
    x = torch.rand(32, 1, 48, 48) * 2 - 1  # normalised with mean 0.5, std 0.5
    out = Augment.capture()(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.equal(out, Augment()(x, torch.Generator().manual_seed(0)))
