"""REP-155's view of a face, without ROS: the 70 landmarks from the mesh, the face and gaze
frames from the head pose, on real faces; the stamp batches of fer_hri_node."""
import csv
import math

import cv2
import numpy as np
import pytest
from conftest import DATA
from scipy.spatial.transform import Rotation

from fer_ros.perception import rep155
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.face_state import FaceStates
from fer_ros.perception.head_pose import HeadPose
from fer_ros.perception.landmarks import LANDMARK_COUNT, FaceLandmarker
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.stamp_batches import StampBatches
from fer_ros.perception.tiling import make_detector

# hri_msgs/FacialLandmarks codes of the person's right -> their left counterparts
MIRROR = {**{i: 16 - i for i in range(8)}, **{17 + k: 26 - k for k in range(5)}, 31: 35,
          32: 34, 36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46, 48: 54, 49: 53, 50: 52,
          59: 55, 58: 56, 60: 64, 61: 63, 67: 65, 68: 69}
MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


@pytest.fixture(scope='module')
def pipeline():
    with make_detector('full_range', 0.3, 0, 0) as detector:
        yield FerPipeline(detector, ExpressionClassifier('fer_cnn_posed', 'cpu'),
                          states=FaceStates(FaceLandmarker()))


def landmarks(pipeline, image):
    face = pipeline.process(image).faces[0]
    return rep155.facial_landmarks(face.state.points, image.shape[1], image.shape[0])


def test_the_table_names_70_mesh_points_and_pairs_left_with_right():
    assert len(rep155.LANDMARKS) == 70
    assert all(0 <= i < LANDMARK_COUNT for group in rep155.LANDMARKS for i in group)
    singles = [g[0] for g in rep155.LANDMARKS if len(g) == 1]
    assert len(set(singles)) == len(singles) == 68
    assert set(MIRROR) | set(MIRROR.values()) | set(MIDLINE) == set(range(70))


def test_landmarks_of_a_real_face_lie_where_their_codes_say(pipeline, astronaut_bgr):
    points = landmarks(pipeline, astronaut_bgr)
    mirrored = landmarks(pipeline, astronaut_bgr[:, ::-1].copy())
    assert points.shape == (70, 2) and ((0 <= points) & (points <= 1)).all()
    # mirroring the photo swaps the person's right and left: each code lands on its partner
    for right, left in MIRROR.items():
        np.testing.assert_allclose(points[right], [1 - mirrored[left][0], mirrored[left][1]],
                                   atol=0.015, err_msg=f'{right} <-> {left}')
    centre = points[MIDLINE, 0].mean()
    assert (points[list(MIRROR), 0] < centre).all()  # the person's right: the image's left
    assert (points[list(MIRROR.values()), 0] > centre).all()
    y = points[:, 1]
    assert y[19] < y[37] < y[30] < y[51] < y[57] < y[8]  # brow, eye, nose tip, lips, menton
    assert y[62] < y[66] and y[27] < y[30] and y[37] < y[68] < y[41]  # lips, nose, pupil


def test_quaternions_are_those_of_the_rotations():
    for rotation in Rotation.random(50, random_state=1):
        expected = rotation.as_quat()
        got = rep155.quaternion(rotation.as_matrix())
        assert got[3] >= 0
        np.testing.assert_allclose(got, expected if expected[3] >= 0 else -expected, atol=1e-9)


def pose(rotation: np.ndarray) -> HeadPose:
    return HeadPose(0, 0, 0, 0, np.zeros((4, 2)), rotation, np.array([0.0, 0.0, 1.0]))


def test_the_frames_of_a_face_looking_into_the_camera():
    origin, face, gaze = rep155.face_frames(pose(np.eye(3)))
    assert 1.0 < origin[2] < 1.03 and origin[1] < 0  # the sellion: behind and above the nose tip
    np.testing.assert_allclose(face, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]])  # columns: x y z
    assert face[:, 0] @ -origin > 0.99 * np.linalg.norm(origin)  # x at the camera
    assert face[1, 2] == -1  # z up: the optical frame's -y
    np.testing.assert_allclose(gaze[:, 2], face[:, 0])  # the gaze along the face's x,
    np.testing.assert_allclose(gaze[:, 0], -face[:, 1])  # x to its right,
    np.testing.assert_allclose(gaze[:, 1], -face[:, 2])  # y down
    for frame in (face, gaze):
        assert np.linalg.det(frame) == pytest.approx(1.0)


@pytest.mark.skipif(not (DATA / 'kdef').is_dir(), reason='../shared/data/kdef is not present')
def test_the_face_frame_follows_turned_and_frontal_faces_of_real_people(pipeline):
    """KDEF's half_left views show a face turned to its right (the image's left), half_right
    to its left: yaw's sign as head_pose.py says, and the face's x that way."""
    rows = [r for r in csv.DictReader(open(DATA / 'kdef' / 'index.csv')) if r['split'] == 'val']
    seen: dict[str, list] = {}
    for view in ('frontal', 'half_left', 'half_right'):
        for row in [r for r in rows if r['view'] == view][:10]:
            image = cv2.copyMakeBorder(cv2.imread(str(DATA / 'kdef' / row['path'])),
                                       96, 96, 96, 96, cv2.BORDER_CONSTANT)
            state = pipeline.process(image).faces[0].state
            origin, face, _ = rep155.face_frames(state.pose)
            to_camera = -origin / np.linalg.norm(origin)
            seen.setdefault(view, []).append((state.pose.yaw, face[0, 0],
                                              math.degrees(math.acos(face[:, 0] @ to_camera))))
    frontal, left, right = (np.array(seen[v]) for v in ('frontal', 'half_left', 'half_right'))
    assert (left[:, 0] < -25).all() and (left[:, 1] < -0.3).all()
    assert (right[:, 0] > 25).all() and (right[:, 1] > 0.3).all()
    assert np.median(frontal[:, 2]) < 20 and (frontal[:, 2] < 35).all()
    assert (0.3 < origin[2] < 1.0)  # metres: a 192 px face at 60 degrees across 384 px


def test_a_frame_is_batched_when_all_its_faces_are_in():
    batches = StampBatches(max_wait=0.2)
    assert batches.add(1, 'a', 'a1', now=0.0) == []
    assert batches.expect(1, ['a', 'b'], now=0.01) == []
    assert batches.add(1, 'b', 'b1', now=0.02) == [(1, {'a': 'a1', 'b': 'b1'})]
    assert batches.add(2, 'a', 'a2', now=0.05) == []  # no tracked list yet: waits
    assert batches.flush(0.1) == [] and batches.flush(0.26) == [(2, {'a': 'a2'})]


def test_a_complete_newer_frame_drops_older_incomplete_ones():
    batches = StampBatches(max_wait=1.0, max_stamps=3)
    batches.expect(1, ['a', 'b'], 0.0)
    batches.add(1, 'a', 'a1', 0.0)  # b's crop of frame 1 is lost
    assert batches.expect(2, ['a'], 0.1) == []
    assert batches.add(2, 'a', 'a2', 0.1) == [(2, {'a': 'a2'})]
    assert batches.flush(5.0) == []
    for stamp in range(10, 20):  # a flood of stamps whose lists never complete: bounded
        batches.add(stamp, 'x', stamp, 0.0)
        batches.expect(stamp + 100, ['y'], 0.0)
    assert len(batches._items) <= 3 and len(batches._expected) <= 3


@pytest.mark.skipif(not (DATA / 'kdef').is_dir(), reason='../shared/data is not present')
@pytest.mark.parametrize('dataset', ['kdef', 'cfee'])
def test_rep155_aligned_crops_are_classified_as_well_as_the_frame(dataset):
    """fer_hri_node sees only another detector's aligned crops: on posed faces of people the
    models never saw, as accurate as fer_node's own crop of the photo."""
    from fer_ros.perception.detection import DETECTOR_FRAMING
    classifier = ExpressionClassifier('fer_cnn_posed', 'cpu', backend='auto')
    framing, names = DETECTOR_FRAMING['full_range'], classifier.class_names
    rows = [r for r in csv.DictReader(open(DATA / dataset / 'index.csv'))
            if r['split'] == 'val' and r.get('type', 'simple') == 'simple']
    frame = crops = 0
    for row in rows:
        image = cv2.imread(str(DATA / dataset / row['path']))
        box = tuple(float(row[k]) for k in ('face_x', 'face_y', 'face_w', 'face_h'))
        keypoints = [tuple(map(float, p.split(','))) for p in row['keypoints'].split()]
        _, aligned = rep155.face_crops(image, box, keypoints)
        frame += names[classifier.predict(image, [box], [keypoints], framing)[0].argmax()] \
            == row['label']
        crops += names[classifier.predict_crops([aligned], framing)[0].argmax()] == row['label']
    assert len(rows) > 100
    assert 100 * crops / len(rows) > 100 * frame / len(rows) - 1.5, (crops, frame, len(rows))


def test_a_face_without_a_head_pose_is_placed_by_its_box():
    from fer_ros.perception.head_pose import FACE_WIDTH, box_position, camera_matrix
    camera = camera_matrix(640, 480, 60.0)
    x, y, z = box_position((245, 165, 150, 150), camera)
    assert (x, y, z) == pytest.approx((0, 0, camera[0, 0] * FACE_WIDTH / 150))
    assert box_position((0, 0, 150, 150), camera)[:2].tolist() < [0, 0]  # up left: -x, -y


def test_markers_of_faces_with_and_without_a_head_pose(pipeline, astronaut_bgr):
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker

    from fer_ros.nodes.markers import face_markers
    from fer_ros.perception.head_pose import camera_matrix
    camera = camera_matrix(512, 512, 60.0)
    header = Header(frame_id='camera')
    plain = FerPipeline(pipeline.detector, pipeline.classifier)  # no face mesh: no pose
    for result, kinds in ((plain.process(astronaut_bgr), [Marker.TEXT_VIEW_FACING]),
                          (pipeline.process(astronaut_bgr),
                           [Marker.TEXT_VIEW_FACING, Marker.ARROW])):
        markers = face_markers(result, header, camera).markers
        face = result.faces[0]
        assert [m.type for m in markers] == kinds
        assert markers[0].text.startswith(f'{face.id} {result.class_names[face.label_index]} ')
        assert 0.2 < markers[0].pose.position.z < 2.0 and markers[0].lifetime.sec == 1
        assert all(m.header.frame_id == 'camera' and m.pose.orientation.w == 1.0
                   for m in markers)
    arrow = markers[1]
    assert arrow.points[1].z < arrow.points[0].z  # out of the face, towards the camera
