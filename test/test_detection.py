import cv2
import numpy as np
import pytest

from conftest import MEDIA, needs_shared
from fer_ros.detection import FaceDetector

# Face of the astronaut photo (512 x 512): eyes near (205, 105) and (247, 106),
# mouth near (225, 150), chin near y = 175.
ASTRONAUT_FACE_POINTS = [(205, 105), (247, 106), (225, 150), (225, 170)]


@pytest.fixture(scope='module')
def detector():
    with FaceDetector() as d:
        yield d


def test_astronaut_has_exactly_one_face_covering_it(detector, astronaut_bgr):
    faces = detector.detect(astronaut_bgr[:, :, ::-1].copy())
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    for px, py in ASTRONAUT_FACE_POINTS:
        assert face.x <= px <= face.x + face.width and face.y <= py <= face.y + face.height
    assert 80 <= face.width <= 140 and 80 <= face.height <= 140  # the face, not the body
    assert len(face.keypoints) == 6


def test_no_face_in_a_blank_image(detector):
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_max_faces_keeps_the_best(astronaut_bgr):
    crowd = np.concatenate([astronaut_bgr, astronaut_bgr], axis=1)[:, :, ::-1].copy()
    with FaceDetector(max_faces=1) as d:
        assert len(d.detect(crowd)) == 1
    with FaceDetector() as d:
        faces = d.detect(crowd)
    assert len(faces) == 2 and faces[0].score >= faces[1].score


def test_rejects_bad_input_and_options(detector):
    with pytest.raises(ValueError, match='RGB'):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match='min_confidence'):
        FaceDetector(min_confidence=1.5)
    with pytest.raises(FileNotFoundError, match='full_range'):
        FaceDetector(model='no_such_model')


@needs_shared
@pytest.mark.parametrize('name, count', [('bbt1', 4), ('bbt2', 3), ('bbt3', 5), ('bbt4', 6),
                                         ('bbt5', 5), ('facerec_two_people', 2)])
def test_group_photos_find_every_face(detector, name, count):
    path = MEDIA / (f'faceapi_{name}.jpg' if name.startswith('bbt') else f'{name}.jpg')
    rgb = cv2.imread(str(path))[:, :, ::-1].copy()
    assert len(detector.detect(rgb)) == count
