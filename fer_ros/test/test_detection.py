import cv2
import numpy as np
import pytest
from conftest import MEDIA, needs_shared

from fer_ros.perception.detection import FaceDetector

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


CRASH_SHAPES = [(1, 32767), (32767, 1), (2, 40000), (100, 40000), (40000, 3)]


def test_frames_with_a_side_over_32766_px_do_not_abort_the_process():
    """MediaPipe's bundled OpenCV aborts (SIGABRT, no Python exception) on such frames, so
    this runs in a child process: the suite survives a regression."""
    import subprocess
    import sys
    code = (
        'import numpy as np\n'
        'from fer_ros.perception.detection import FaceDetector\n'
        'with FaceDetector() as d:\n'
        f'    for h, w in {CRASH_SHAPES!r}:\n'
        '        assert d.detect(np.zeros((h, w, 3), np.uint8)) == []\n'
        "print('survived')\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and 'survived' in proc.stdout, proc.stderr[-1500:]


def test_a_large_frame_is_downscaled_for_detection_and_boxes_map_back(detector, astronaut_bgr):
    from fer_ros.perception.detection import DETECT_MAX_SIDE
    big = cv2.resize(astronaut_bgr, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((6000, 8000, 3), 90, np.uint8)
    canvas[:, 1000:7000] = cv2.resize(big, (6000, 6000))
    assert max(canvas.shape) > DETECT_MAX_SIDE
    faces = detector.detect(canvas[:, :, ::-1].copy())
    assert len(faces) == 1
    scale = 6000 / 512
    for px, py in ASTRONAUT_FACE_POINTS:
        x, y = 1000 + px * scale, py * scale
        face = faces[0]
        assert face.x <= x <= face.x + face.width and face.y <= y <= face.y + face.height
    assert 80 * scale <= faces[0].width <= 140 * scale
    assert all(1000 <= kx <= 7000 and 0 <= ky <= 6000 for kx, ky in faces[0].keypoints)
