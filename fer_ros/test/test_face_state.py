"""Face mesh, eye openness, blinks and head pose, on real frames and on synthetic ones."""
import math

import cv2
import numpy as np
import pytest
from conftest import MEDIA, needs_shared

from fer_ros.perception.detection import Face, FaceDetector
from fer_ros.perception.eyes import LEFT_EYE, RIGHT_EYE, BlinkCounter, eye_openness
from fer_ros.perception.face_state import FaceStates
from fer_ros.perception.head_pose import (MESH_POINTS, MODEL_POINTS, camera_matrix, head_pose,
                                          intrinsics_problem, scaled_camera)
from fer_ros.perception.landmarks import (LITERT_REQUIREMENT, FaceLandmarker, check_landmarks,
                                          roi_transform)


@pytest.fixture(scope='module')
def detector():
    with FaceDetector() as d:
        yield d


@pytest.fixture(scope='module')
def landmarker():
    return FaceLandmarker()


def meshes(image, detector, landmarker):
    faces = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return [(f, landmarker.mesh(image, f)) for f in faces]


def test_the_mesh_lies_on_the_astronaut_s_face(astronaut_bgr, detector, landmarker):
    ((face, mesh),) = meshes(astronaut_bgr, detector, landmarker)
    assert mesh.points.shape == (468, 3) and mesh.presence > 0.9
    nose = np.array(face.keypoints[2])
    assert np.linalg.norm(mesh.points[1, :2] - nose) < 0.1 * face.width
    assert mesh.points[33, 0] < mesh.points[263, 0]  # the person's right eye: image left
    x, y = mesh.points[:, 0], mesh.points[:, 1]
    assert x.min() > face.x - 0.3 * face.width and x.max() < face.x + 1.3 * face.width
    assert y.min() > face.y - 0.5 * face.height and y.max() < face.y + 1.3 * face.height


def test_a_box_without_a_face_has_no_state(astronaut_bgr, landmarker):
    sky = Face(20, 20, 80, 80, 0.9)  # the grey backdrop, top left
    assert landmarker.mesh(astronaut_bgr, sky).presence < 0.5
    states = FaceStates(landmarker).update(astronaut_bgr, [sky], [0], {0}, 0.0)
    assert states == [None]


def test_the_crop_maps_the_face_box_centre_to_the_input_centre():
    face = Face(100, 50, 80, 80, 1.0, ((120, 80), (160, 70)))
    m = roi_transform(face)
    np.testing.assert_allclose(m @ [140, 90, 1], [96, 96], atol=1e-9)
    assert math.hypot(m[0, 0], m[1, 0]) == pytest.approx(192 / 120)  # 1.5 times the box


def test_landmarks_say_how_to_install_their_runtime(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'ai_edge_litert' else real(name, *a))
    assert LITERT_REQUIREMENT in check_landmarks(True)
    assert check_landmarks(False) is None


# --- eyes and blinks ---------------------------------------------------------------------

def closed(points, amount=1.0):
    """Points with both eyes' lids moved towards the eye's midline (amount 1: shut)."""
    out = points.copy()
    for eye in (LEFT_EYE, RIGHT_EYE):
        corners = (out[eye[0], :2] + out[eye[3], :2]) / 2
        for i in eye[1:3] + eye[4:]:
            out[i, :2] += amount * (corners - out[i, :2])
    return out


@needs_shared
def test_open_eyes_of_posed_faces_are_open(detector, landmarker):
    for name in ('sad', 'surprised', 'fearful', 'neutral', 'angry'):
        ((_, mesh),) = meshes(cv2.imread(str(MEDIA / f'faceapi_{name}.jpg')), detector,
                              landmarker)
        assert min(eye_openness(mesh.points)) > 0.8, name
        assert max(eye_openness(closed(mesh.points))) == 0.0, name


@pytest.fixture(scope='module')
def clip_meshes(detector, landmarker):
    """Face meshes of the one face of frames 92-209 of the shared clip (eyes open)."""
    capture = cv2.VideoCapture(str(MEDIA / 'facerec_short_hamilton_clip.mp4'))
    frames = [capture.read()[1] for _ in range(210)][92:]
    capture.release()
    return [meshes(frame, detector, landmarker)[0][1].points for frame in frames]


def count(meshes_, fps, blinks_at=(), duration=0.15):
    """Blinks counted on the clip's meshes played at fps, lids shut around blinks_at (s)."""
    counter = BlinkCounter()
    for i in range(0, len(meshes_), round(30 / fps)):
        t = i / 30
        shut = any(0 <= t - b < duration for b in blinks_at)
        counter.update(sum(eye_openness(closed(meshes_[i]) if shut else meshes_[i])) / 2, t)
    return counter


@needs_shared
def test_blinks_are_counted_alike_at_any_frame_rate(clip_meshes):
    assert len(clip_meshes) == 118
    for fps in (30, 15, 10):
        assert count(clip_meshes, fps).count == 0, fps  # the real frames: eyes open
        assert count(clip_meshes, fps, (0.5, 1.5, 2.6, 3.4)).count == 4, fps


@needs_shared
def test_eyes_shut_for_a_second_are_not_a_blink(clip_meshes):
    assert count(clip_meshes, 30, (1.0,), duration=1.0).count == 0
    assert count(clip_meshes, 30, (1.0, 1.1)).count == 1  # flicker is one blink


def test_blink_rate_over_the_last_minute():
    counter = BlinkCounter()
    for i in range(0, 20 * 30):  # 20 s at 30 Hz, a blink every 5 s from 2 s
        t = i / 30
        counter.update(0.0 if (t - 2) % 5 < 0.15 else 1.0, t)
        if t < 10:
            assert math.isnan(counter.rate(t))
    assert counter.count == 4 and counter.rate(20.0) == pytest.approx(4 * 60 / 20, rel=0.01)


# --- head pose ---------------------------------------------------------------------------

@pytest.mark.parametrize('yaw, pitch, roll', [(0, 0, 0), (30, 0, 0), (-20, 10, 0),
                                              (10, -15, 25), (-40, 20, -10)])
def test_known_poses_are_recovered(yaw, pitch, roll):
    """The six model points seen by a camera at a known pose (the module's angle signs)."""
    r = (cv2.Rodrigues(np.array([0.0, 0.0, math.radians(roll)]))[0]
         @ cv2.Rodrigues(np.array([0.0, -math.radians(yaw), 0.0]))[0]
         @ cv2.Rodrigues(np.array([-math.radians(pitch), 0.0, 0.0]))[0])
    camera = camera_matrix(640, 480, 60.0)
    seen = (MODEL_POINTS @ r.T + [100.0, -50.0, 3000.0]) @ camera.T
    points = np.zeros((468, 2))
    points[list(MESH_POINTS)] = seen[:, :2] / seen[:, 2:]
    pose = head_pose(points, camera)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=0.1)


def test_a_face_turned_to_the_image_right_has_a_positive_yaw_and_looks_away():
    r = cv2.Rodrigues(np.array([0.0, -math.radians(40), 0.0]))[0]
    camera = camera_matrix(640, 480, 60.0)
    seen = (MODEL_POINTS @ r.T + [0.0, 0.0, 3000.0]) @ camera.T
    points = np.zeros((468, 2))
    points[list(MESH_POINTS)] = seen[:, :2] / seen[:, 2:]
    pose = head_pose(points, camera)
    forward = r @ [0, 0, -1]
    assert forward[0] > 0 and pose.yaw == pytest.approx(40, abs=0.1)
    assert pose.off_axis == pytest.approx(40, abs=0.5)


def test_calibrations_scale_with_the_frame_but_not_across_aspect_ratios():
    k = camera_matrix(640, 480, 60.0)
    np.testing.assert_allclose(scaled_camera(k, (640, 480), (320, 240)),
                               camera_matrix(320, 240, 60.0))
    assert scaled_camera(k, (640, 480), (640, 480)) is k
    assert scaled_camera(k, (640, 480), (640, 360)) is None


# camera_info intrinsics that made every frame's SQPnP assert (and no frame was published)
POISONED = {  # name: (K, width, height, reason)
    'NaN cx': ([600, 0, math.nan, 0, 600, 256, 0, 0, 1], 512, 512, 'NaN or infinity'),
    'inf fy': ([600, 0, 256, 0, math.inf, 256, 0, 0, 1], 512, 512, 'NaN or infinity'),
    'f 1e308': ([1e308, 0, 256, 0, 1e308, 256, 0, 0, 1], 512, 512, 'fx = 1e+308'),
    'f 1e-300': ([1e-300, 0, 256, 0, 1e-300, 256, 0, 0, 1], 512, 512, 'fx = 1e-300'),
    'image 1x1': ([600, 0, 256, 0, 600, 256, 0, 0, 1], 1, 1, 'image size 1x1'),
    'cx outside': ([600, 0, 5000, 0, 600, 256, 0, 0, 1], 512, 512, 'principal point'),
    'bottom row': ([600, 0, 256, 0, 600, 256, 1, 0, 1], 512, 512, 'bottom row of 0 0 1'),
}


@pytest.mark.parametrize('name', POISONED)
def test_implausible_intrinsics_are_named_and_cost_only_the_pose(name, astronaut_bgr,
                                                                   detector, landmarker):
    k, width, height, reason = POISONED[name]
    k = np.array(k, np.float64).reshape(3, 3)
    assert reason in intrinsics_problem(k, width, height)
    if name in ('cx outside', 'bottom row'):
        return  # wrong, yet SQPnP solves them
    camera = scaled_camera(k, (width, height), (512, 512)) if width == 1 else k
    (face,) = detector.detect(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))
    (state,) = FaceStates(landmarker).update(astronaut_bgr, [face], [0], {0}, 0.0, camera)
    assert state.pose is None and not state.looking  # was: cv2.error from SQPnP
    assert state.points.shape == (468, 3) and min(state.eye_openness) > 0.5


@pytest.mark.parametrize('k, width, height', [
    ([525, 0, 319.5, 0, 525, 239.5, 0, 0, 1], 640, 480),     # a Kinect-class camera
    ([300, 0, 640, 0, 300, 360, 0, 0, 1], 1280, 720),        # wide angle, 130 degrees
    ([9000, 0, 960, 0, 9000, 540, 0, 0, 1], 1920, 1080),     # telephoto, 12 degrees
    ([600, 0.5, 256, 0, 610, 250, 0, 0, 1], 512, 512)])      # skew, non-square pixels
def test_real_calibrations_are_accepted(k, width, height):
    assert intrinsics_problem(np.array(k, np.float64).reshape(3, 3), width, height) is None


def test_a_failing_face_mesh_costs_only_that_face_s_state(astronaut_bgr, detector, landmarker):
    (face,) = detector.detect(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB))

    class Flaky:
        def mesh(self, image, box):
            if box is face:
                raise ValueError('broken interpreter')
            return landmarker.mesh(image, box)

    states = FaceStates(Flaky())
    other = Face(face.x + 1, face.y, face.width, face.height, face.score, face.keypoints)
    out = states.update(astronaut_bgr, [face, other], [0, 1], {0, 1}, 0.0)
    assert out[0] is None and out[1].pose is not None
    assert states.problems == ['face mesh failed: ValueError: broken interpreter']


def poses(image, detector, landmarker):
    camera = camera_matrix(image.shape[1], image.shape[0], 60.0)
    return [head_pose(mesh.points, camera) for _, mesh in meshes(image, detector, landmarker)]


@needs_shared
def test_real_faces_rolled_and_mirrored(detector, landmarker):
    for name in ('happy', 'surprised', 'neutral', 'fearful', 'angry'):
        image = cv2.imread(str(MEDIA / f'faceapi_{name}.jpg'))
        h, w = image.shape[:2]
        (pose,) = poses(image, detector, landmarker)
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), -20, 1.0)  # 20 degrees clockwise
        (rolled,) = poses(cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE),
                          detector, landmarker)
        assert rolled.roll - pose.roll == pytest.approx(20, abs=5), name
        (mirrored,) = poses(np.ascontiguousarray(image[:, ::-1]), detector, landmarker)
        if abs(pose.yaw) > 10:
            assert mirrored.yaw * pose.yaw < 0, name


@needs_shared
def test_a_profile_looks_away_and_frontal_faces_look_at_the_camera(detector, landmarker):
    for name in ('fearful', 'angry'):
        (pose,) = poses(cv2.imread(str(MEDIA / f'faceapi_{name}.jpg')), detector, landmarker)
        assert pose.off_axis < 25, name
    capture = cv2.VideoCapture(str(MEDIA / 'facerec_short_hamilton_clip.mp4'))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 25)
    frame = capture.read()[1]
    capture.release()
    profile = max(meshes(frame, detector, landmarker), key=lambda fm: fm[0].width)
    pose = head_pose(profile[1].points, camera_matrix(640, 360, 60.0))
    assert pose.yaw < -45 and pose.off_axis > 45  # looking to the image's left


def test_each_drawing_can_be_switched_off(astronaut_bgr, detector, landmarker):
    from fer_ros.perception.annotate import annotate
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.pipeline import FerPipeline
    pipeline = FerPipeline(detector, ExpressionClassifier(device='cpu'),
                           states=FaceStates(landmarker))
    result = pipeline.process(astronaut_bgr, stamp=0.0)
    assert result.faces[0].state is not None
    plain = annotate(astronaut_bgr, result, False, False, False)
    changed = {}
    for name, flags in (('landmarks', (True, False, False)), ('pose', (False, True, False)),
                        ('blinks', (False, False, True))):
        drawn = annotate(astronaut_bgr, result, *flags)
        changed[name] = int((drawn != plain).any(axis=2).sum())
    assert changed['landmarks'] > 300 and changed['pose'] > 50 and changed['blinks'] > 50
