"""fer_node's REP-155 (ROS4HRI) outputs, fer_node in its own process, hri_msgs built with rosidl
from ../shared/interfaces (skipped without it)."""
import math
import os
import signal
import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import MEDIA
from fer_msgs.msg import FaceEmotionArray
from processes import Process
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_processes import Peer

from fer_ros.perception.image_conversion import image_to_ndarray, ndarray_to_image
from fer_ros.perception.rep155 import EXPRESSION, facial_landmarks

PREFIX = 'cam0_'


class HriPeer(Peer):
    """A ROS4HRI consumer: /humans/faces/tracked, then each face's topics; and fer_msgs."""

    def __init__(self, context):
        from hri_msgs.msg import IdsList
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray
        super().__init__(context)
        self.tracked, self.faces, self.tf, self.markers = [], {}, [], []
        self.create_subscription(IdsList, '/humans/faces/tracked', self.tracked.append, 10)
        self.create_subscription(TFMessage, '/tf', lambda m: self.tf.extend(m.transforms), 100)
        self.create_subscription(MarkerArray, 'markers', self.markers.append, 10)

    def follow(self, face_id: str) -> dict:
        from hri_msgs.msg import Expression, FacialLandmarks, NormalizedRegionOfInterest2D
        if face_id not in self.faces:
            got = self.faces[face_id] = {'roi': [], 'expression': [], 'cropped': [],
                                         'aligned': [], 'landmarks': []}
            base = f'/humans/faces/{face_id}/'
            for name, kind in (('roi', NormalizedRegionOfInterest2D),
                               ('expression', Expression), ('cropped', Image),
                               ('aligned', Image), ('landmarks', FacialLandmarks)):
                self.create_subscription(kind, base + name, got[name].append, 10)
        return self.faces[face_id]

    def answer(self, frame: np.ndarray, sec: int) -> FaceEmotionArray:
        """Publish a frame stamped `sec` until fer_node's emotions for it arrive."""
        msg = ndarray_to_image(frame, 'bgr8', Header(frame_id='camera', stamp=Time(sec=sec)))
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            self.image_pub.publish(msg)
            if self.spin_until(lambda: any(e.header.stamp.sec == sec for e in self.emotions),
                               0.3):
                return next(e for e in self.emotions if e.header.stamp.sec == sec)
        raise AssertionError(f'fer_node did not answer the frame stamped {sec}')


@pytest.fixture
def peer(ros_context, hri_env):
    node = HriPeer(ros_context)
    yield node
    node.spinner.remove_node(node)
    node.destroy_node()


def fer_node(env, *params):
    proc = Process('fer_node', '--ros-args', '-p', 'device:=cpu', '-p', 'hri:=true',
                   '-p', 'track_confirm_frames:=2', '-r', 'image:=image_raw', *params, env=env)
    proc.wait_for('listening on')
    return proc


def stop(proc):
    assert proc.stop(signal.SIGINT) == 0, proc.output
    assert 'Traceback' not in proc.output


def group_photo(astronaut_bgr):
    path = MEDIA / 'faceapi_bbt1.jpg'
    return cv2.imread(str(path)) if path.is_file() else astronaut_bgr


def test_each_confirmed_face_gets_its_rep155_topics(peer, hri_env, astronaut_bgr):
    frame = group_photo(astronaut_bgr)
    height, width = frame.shape[:2]
    proc = fer_node(hri_env, '-p', f'hri_id_prefix:={PREFIX}', '-p', 'landmarks:=true')
    try:
        first = peer.answer(frame, 1)
        assert all(not f.track_confirmed for f in first.faces)
        assert peer.spin_until(lambda: peer.tracked) and peer.tracked[-1].ids == []
        second = peer.answer(frame, 2)  # confirmed: two frames
        assert peer.spin_until(lambda: any(t.header.stamp.sec == 2 for t in peer.tracked))
        ids = next(t for t in peer.tracked if t.header.stamp.sec == 2).ids
        assert sorted(ids) == sorted(f'{PREFIX}{f.id}' for f in second.faces)
        assert len(ids) == len(second.faces) >= (4 if frame is not astronaut_bgr else 1)
        topics = [peer.follow(face_id) for face_id in ids]
        assert peer.spin_until(lambda: all(
            peer.get_publishers_info_by_topic(f'/humans/faces/{i}/aligned') for i in ids))
        for sec in range(3, 8):  # subscriptions matched: cropped and aligned are published
            frames = peer.answer(frame, sec)
            if peer.spin_until(lambda: all(any(m.header.stamp.sec == sec for m in t['aligned'])
                                           for t in topics), 2.0):
                break
        by_id = {f'{PREFIX}{f.id}': f for f in frames.faces}
        meshed = [t for i, t in zip(ids, topics) if by_id[i].landmarks]
        assert meshed and peer.spin_until(lambda: all(
            any(m.header.stamp.sec == sec for m in t['landmarks']) for t in meshed), 5.0)
        for face_id, got in zip(ids, topics):
            face = by_id[face_id]
            roi = next(m for m in got['roi'] if m.header.stamp.sec == sec)
            assert roi.header.frame_id == 'camera'
            np.testing.assert_allclose(
                [roi.xmin, roi.ymin, roi.xmax, roi.ymax],
                [face.roi.x_offset / width, face.roi.y_offset / height,
                 (face.roi.x_offset + face.roi.width) / width,
                 (face.roi.y_offset + face.roi.height) / height], atol=2e-3)
            assert roi.c == pytest.approx(face.detection_confidence, abs=1e-6)
            expression = next(m for m in got['expression'] if m.header.stamp.sec == sec)
            assert expression.expression == EXPRESSION[face.label]  # same face, same stamp
            assert expression.confidence == pytest.approx(face.label_probability, abs=1e-6)
            assert (expression.valence, expression.arousal) == pytest.approx(
                (face.valence, face.arousal), abs=1e-6)
            for name in ('cropped', 'aligned'):
                image = next(m for m in got[name] if m.header.stamp.sec == sec)
                pixels = image_to_ndarray(image)
                assert (image.width, image.height, image.encoding) == (128, 128, 'bgr8')
                assert pixels.std() > 10  # a face, not padding
            marks = next((m for m in got['landmarks'] if m.header.stamp.sec == sec), None)
            if not face.landmarks:  # the mesh model saw no face in the box: no landmarks
                assert marks is None
                continue
            assert (marks.width, marks.height, len(marks.landmarks)) == (width, height, 70)
            mesh = np.array([(p.x, p.y, p.z) for p in face.landmarks])  # fer_msgs' 468
            np.testing.assert_allclose([(p.x, p.y) for p in marks.landmarks],
                                       facial_landmarks(mesh, width, height), atol=1e-6)
            nose = marks.landmarks[30]  # FacialLandmarks.NOSE: inside the face's box
            assert roi.xmin < nose.x < roi.xmax and roi.ymin < nose.y < roi.ymax
        check_frames(peer, sec, by_id, ids)
        check_markers(peer, sec, frames)
    finally:
        stop(proc)


def check_frames(peer, sec, by_id, ids):
    """face_<id> and gaze_<id> of every face with a head pose, in the image's frame."""
    from scipy.spatial.transform import Rotation
    assert peer.spin_until(lambda: any(t.header.stamp.sec == sec for t in peer.tf), 5.0)
    frames = {t.child_frame_id: t for t in peer.tf if t.header.stamp.sec == sec}
    posed = [i for i in ids if not math.isnan(by_id[i].yaw)]
    assert posed and set(frames) == {f'{k}_{i}' for i in posed for k in ('face', 'gaze')}
    for face_id in posed:
        face, gaze = frames[f'face_{face_id}'], frames[f'gaze_{face_id}']
        assert face.header.frame_id == gaze.header.frame_id == 'camera'
        t = face.transform.translation
        assert 0.2 < t.z < 20 and (t.x, t.y, t.z) == (gaze.transform.translation.x,
                                                        gaze.transform.translation.y,
                                                        gaze.transform.translation.z)
        turn = {k: Rotation.from_quat([f.transform.rotation.x, f.transform.rotation.y,
                                       f.transform.rotation.z, f.transform.rotation.w])
                for k, f in (('face', face), ('gaze', gaze))}
        forward = turn['face'].apply([1, 0, 0])
        assert forward[2] < -0.5  # x out of the face: towards the camera, whose z looks at it
        assert turn['face'].apply([0, 0, 1])[1] < -0.5  # z to the scalp: up, the image's -y
        np.testing.assert_allclose(turn['gaze'].apply([0, 0, 1]), forward, atol=1e-6)
        yaw = math.degrees(math.atan2(forward[0], -forward[2]))  # the face turned image-right
        assert yaw == pytest.approx(by_id[face_id].yaw, abs=15)  # is fer_msgs' positive yaw


def check_markers(peer, sec, frames):
    from visualization_msgs.msg import Marker
    assert peer.spin_until(lambda: any(m.markers and m.markers[0].header.stamp.sec == sec
                                       for m in peer.markers), 5.0)
    markers = next(m.markers for m in peer.markers
                   if m.markers and m.markers[0].header.stamp.sec == sec)
    texts = {m.id // 2: m for m in markers if m.type == Marker.TEXT_VIEW_FACING}
    arrows = {m.id // 2: m for m in markers if m.type == Marker.ARROW}
    assert set(texts) == {f.id for f in frames.faces}
    assert set(arrows) == {f.id for f in frames.faces if not math.isnan(f.yaw)}
    for face in frames.faces:
        text = texts[face.id]
        assert text.text == f'{face.id} {face.label} {face.label_probability:.2f}'
        assert text.header.frame_id == 'camera' and text.lifetime.sec == 1
        assert text.pose.position.z > 0.2


def test_per_face_publishers_follow_the_faces_in_view(peer, hri_env, astronaut_bgr):
    """Faces coming and going: the node's publishers stay bounded."""
    proc = fer_node(hri_env, '-p', 'track_max_missed:=0')
    blank = np.full((720, 1280, 3), 90, np.uint8)
    small = cv2.resize(astronaut_bgr, (256, 256))

    def publishers() -> int:
        return len(peer.get_publisher_names_and_types_by_node('fer_node', '/'))

    try:
        peer.answer(blank, 9)
        time.sleep(1.0)
        peer.spin_until(lambda: False, 1.0)
        base = publishers()  # no face: the node's own publishers
        sec, ids = 10, set()
        for cycle in range(12):  # a face at a new place, confirmed, then gone
            frame = blank.copy()
            x = 40 + (cycle % 4) * 300
            frame[200:456, x:x + 256] = small
            for _ in range(3):
                peer.answer(frame, sec)
                sec += 1
            assert peer.spin_until(lambda: peer.tracked[-1].header.stamp.sec == sec - 1, 5.0)
            in_view = peer.tracked[-1].ids
            ids.update(in_view)
            assert in_view and peer.spin_until(
                lambda: publishers() == base + 5 * len(in_view), 5.0), (cycle, publishers())
            peer.answer(blank, sec)
            sec += 1
            assert peer.spin_until(lambda: publishers() == base, 5.0), (cycle, publishers())
        assert len(ids) >= 12  # new ids each time, never reused
    finally:
        stop(proc)


def test_without_hri_msgs_the_node_says_why_and_serves_fer_msgs():
    import subprocess
    import sys
    if subprocess.run([sys.executable, '-c', 'import hri_msgs'], capture_output=True,
                      env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
                      ).returncode == 0:
        pytest.skip('hri_msgs is installed here')
    proc = Process('fer_node', '--ros-args', '-p', 'device:=cpu', '-p', 'hri:=true')
    consumer = Process('fer_hri_node')
    try:
        proc.wait_for('listening on')
        assert 'hri: true needs hri_msgs' in proc.output and 'REP-155 outputs are off' in \
            proc.output
        consumer.wait_for('fer_hri_node needs hri_msgs')
        assert consumer.alive()
    finally:
        stop(proc)
        stop(consumer)


class Detector(Peer):
    """Plays a REP-155 face detector's part: tracked ids and aligned crops of real faces."""

    def __init__(self, context, ids):
        from hri_msgs.msg import Expression, IdsList
        super().__init__(context)
        self.tracked_pub = self.create_publisher(IdsList, '/humans/faces/tracked', 10)
        self.aligned = {i: self.create_publisher(Image, f'/humans/faces/{i}/aligned', 1)
                        for i in ids}
        self.expressions = {i: [] for i in ids}
        for i in ids:
            self.create_subscription(Expression, f'/humans/faces/{i}/expression',
                                     self.expressions[i].append, 10)

    def frame(self, sec: int, crops: dict) -> dict:
        """Publish one stamp's tracked list and crops until every face's expression is back."""
        from hri_msgs.msg import IdsList
        header = Header(frame_id='camera', stamp=Time(sec=sec))
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            self.tracked_pub.publish(IdsList(header=header, ids=list(crops)))
            for face_id, crop in crops.items():
                self.aligned[face_id].publish(ndarray_to_image(crop, 'bgr8', header))
            if self.spin_until(lambda: all(any(e.header.stamp.sec == sec for e in
                                               self.expressions[i]) for i in crops), 0.5):
                return {i: next(e for e in self.expressions[i] if e.header.stamp.sec == sec)
                        for i in crops}
        raise AssertionError(f'no expressions for the crops stamped {sec}')


def test_fer_hri_node_recognizes_the_faces_another_detector_found(ros_context, hri_env,
                                                                  astronaut_bgr):
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.detection import DETECTOR_FRAMING
    from fer_ros.perception.rep155 import face_crops
    from fer_ros.perception.tiling import make_detector
    frame = group_photo(astronaut_bgr)
    with make_detector('full_range', 0.3, 0, 0) as detector:
        faces = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    crops = {f'det{i}': face_crops(frame, f.box, f.keypoints)[1] for i, f in enumerate(faces)}
    classifier = ExpressionClassifier('fer_cnn_posed', 'cpu', backend='auto', align=False)
    expected = classifier.predict_crops(list(crops.values()), DETECTOR_FRAMING['full_range'])
    peer = Detector(ros_context, list(crops))
    proc = Process('fer_hri_node', '--ros-args', '-p', 'detector_framing:=full_range',
                   '-p', 'model:=fer_cnn_posed', '-p', 'max_faces:=8', env=hri_env)
    try:
        proc.wait_for('recognizing the expressions of /humans/faces/<id>/aligned')
        got = peer.frame(1, crops)
        for (face_id, expression), p in zip(got.items(), expected):
            label = classifier.class_names[int(np.argmax(p))]
            assert expression.expression == EXPRESSION[label], face_id
            assert expression.confidence == pytest.approx(float(p.max()), abs=1e-4)
            assert expression.header.frame_id == 'camera'
        assert len(got) == len(faces) >= (4 if frame is not astronaut_bgr else 1)
        # a face leaves: its publisher goes; 51 ids at once: the first max_faces are followed
        gone, *kept = crops
        peer.frame(2, {i: crops[i] for i in kept})
        assert peer.spin_until(lambda: not peer.get_publishers_info_by_topic(
            f'/humans/faces/{gone}/expression'), 5.0)
        from hri_msgs.msg import IdsList
        peer.tracked_pub.publish(IdsList(header=Header(stamp=Time(sec=3)),
                                         ids=['bad id!'] + [f'x{i}' for i in range(50)]))
        proc.wait_for('51 face ids in a tracked list: following the first 8', 10.0)
        proc.wait_for('refused', 10.0)  # the id that is no topic name
        assert peer.frame(4, {kept[0]: crops[kept[0]]})
        assert 'Traceback' not in proc.output and 'detector' not in proc.output
    finally:
        stop(proc)
        peer.spinner.remove_node(peer)
        peer.destroy_node()
