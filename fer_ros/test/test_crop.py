"""The face window: framing like the training images, roll from the eyes, the rotated crop;
and what they are worth on real faces through the node's pipeline."""
import math

import cv2
import numpy as np
import pytest
from conftest import DATA

from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import DETECTOR_FRAMING, FaceDetector
from fer_ros.perception.preprocess import (Framing, Window, crop_square, crop_window, eye_roll,
                                           face_window)

PUBLIC_TEST = DATA / 'fer2013' / 'public_test.npz'
needs_fer2013 = pytest.mark.skipif(not PUBLIC_TEST.exists(), reason='../shared is not present')


def test_eye_roll_and_window_geometry():
    assert eye_roll(()) == 0.0
    assert eye_roll(((10, 10), (20, 10))) == 0.0
    assert eye_roll(((10, 10), (20, 20))) == pytest.approx(45.0)  # right eye lower on screen
    box = (100, 200, 50, 50)
    assert face_window(box, 0.1) == Window(125, 225, 60, 0.0)
    framed = face_window(box, 0.1, framing=Framing(1.2, -0.1))  # the margin is not used
    assert (framed.cx, framed.cy, framed.side) == pytest.approx((125, 220, 60))
    # eyes one above the other: rolled 90 degrees clockwise, the face's up is screen +x,
    # and the frame centre lies above the box centre along that axis
    rolled = face_window(box, 0, ((125, 200), (125, 250)), Framing(1.0, -0.1))
    assert rolled.roll == pytest.approx(90.0)
    assert (rolled.cx, rolled.cy) == pytest.approx((130, 225))
    assert face_window(box, 0, ((125, 200), (125, 250)), align=False).roll == 0.0


def test_unrolled_crop_is_the_plain_square_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3)).astype(np.uint8)
    for window in (Window(40, 50, 30), Window(5, 5, 41), Window(150, 110, 64)):
        x0, y0 = round(window.cx - window.side / 2), round(window.cy - window.side / 2)
        plain = crop_square(image, x0, y0, round(window.side))
        expected = cv2.resize(plain, (48, 48), interpolation=(
            cv2.INTER_AREA if plain.shape[0] > 48 else cv2.INTER_LINEAR))
        np.testing.assert_array_equal(crop_window(image, window, 48), expected)


def test_a_rolled_crop_levels_what_was_rolled():
    face = np.zeros((200, 200), np.uint8)
    face[60:80, 40:160] = 255   # a bar: the eyes
    face[130:140, 80:120] = 128  # and a mouth
    for roll in (-30, 20):
        turned = cv2.warpAffine(face, cv2.getRotationMatrix2D((100, 100), -roll, 1.0),
                                (200, 200))  # content turned clockwise on screen by roll
        crop = crop_window(turned, Window(100, 100, 160, roll), 64)
        upright = crop_window(face, Window(100, 100, 160), 64)
        assert np.abs(crop.astype(int) - upright).mean() < 8
        assert np.abs(crop_window(turned, Window(100, 100, 160), 64).astype(int)
                      - upright).mean() > 20


def _scenes(images: np.ndarray, roll: float) -> list[np.ndarray]:
    """FER2013 faces 4x upscaled, padded and rolled: as a camera would show them."""
    out = []
    for face in images:
        big = cv2.copyMakeBorder(cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC),
                                 96, 96, 96, 96, cv2.BORDER_REPLICATE)
        big = cv2.warpAffine(big, cv2.getRotationMatrix2D((192, 192), roll, 1.0), (384, 384),
                             borderMode=cv2.BORDER_REPLICATE)
        out.append(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
    return out


@needs_fer2013
def test_detector_framing_constants_are_reproduced():
    from fer_ros.learning.data import load_dataset
    from fer_ros.learning.framing import measure_framing
    images = load_dataset(PUBLIC_TEST).images[::12]  # 300 faces across the split
    for model, recorded in DETECTOR_FRAMING.items():
        with FaceDetector(model) as detector:
            framing, found = measure_framing(images, detector)
        assert found > 250
        assert framing.scale == pytest.approx(recorded.scale, abs=0.03), model
        assert framing.shift == pytest.approx(recorded.shift, abs=0.02), model


@needs_fer2013
def test_alignment_recovers_tilted_faces():
    from fer_ros.learning.data import load_dataset
    data = load_dataset(PUBLIC_TEST).subset(slice(0, None, 9))  # 399 across the split
    classifier = ExpressionClassifier()
    names = classifier.class_names
    truth = np.array([names.index(data.class_names[k]) for k in data.labels])
    accuracy = {}
    with FaceDetector() as detector:
        for roll in (0, 30):
            hits = {True: [], False: []}
            for scene, label in zip(_scenes(data.images, roll), truth):
                faces = detector.detect(scene[:, :, ::-1].copy())
                if not faces:
                    continue
                for align in (True, False):
                    classifier.align = align
                    probs = classifier.predict(scene, [faces[0].box], [faces[0].keypoints],
                                               detector.framing)
                    hits[align].append(probs[0].argmax() == label)
            accuracy[roll] = {a: float(np.mean(h)) for a, h in hits.items()}
    # measured: upright 0.714 aligned / 0.708 not; rolled 30 degrees 0.690 / 0.590
    assert accuracy[0][True] >= accuracy[0][False] - 0.02
    assert accuracy[30][True] >= accuracy[30][False] + 0.03
    assert accuracy[30][True] >= accuracy[0][True] - 0.05


@needs_fer2013
def test_training_faces_are_cropped_as_the_node_crops_them():
    from fer_ros.learning.data import load_dataset
    from fer_ros.learning.framing import aligned_faces
    faces = load_dataset(PUBLIC_TEST).images[::90]  # 40 across the split
    rolled = np.stack([cv2.warpAffine(f, cv2.getRotationMatrix2D((23.5, 23.5), 25, 1.0),
                                      (48, 48), borderMode=cv2.BORDER_REPLICATE) for f in faces])
    with FaceDetector() as detector:
        upright, levelled = aligned_faces(faces, detector), aligned_faces(rolled, detector)
    assert upright.shape == faces.shape and upright.dtype == np.uint8

    def similarity(a, b):  # median correlation of the pixels, image by image
        return np.median([np.corrcoef(x.ravel().astype(float), y.ravel().astype(float))[0, 1]
                          for x, y in zip(a, b)])
    # measured: 0.72 (the node's crop of an upright face is near its training frame); a rolled
    # face, levelled, looks like the levelled upright one: 0.61, against 0.38 unlevelled
    assert similarity(upright, faces) > 0.6
    assert similarity(levelled, upright) > similarity(rolled, upright) + 0.15
