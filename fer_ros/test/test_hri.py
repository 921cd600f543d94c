"""fer_node's REP-155 (ROS4HRI) outputs, fer_node in its own process, hri_msgs built with rosidl
from ../shared/interfaces (skipped without it)."""
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
from fer_ros.perception.rep155 import EXPRESSION

PREFIX = 'cam0_'


class HriPeer(Peer):
    """A ROS4HRI consumer: /humans/faces/tracked, then each face's topics; and fer_msgs."""

    def __init__(self, context):
        from hri_msgs.msg import IdsList
        super().__init__(context)
        self.tracked, self.faces = [], {}
        self.create_subscription(IdsList, '/humans/faces/tracked', self.tracked.append, 10)

    def follow(self, face_id: str) -> dict:
        from hri_msgs.msg import Expression, NormalizedRegionOfInterest2D
        if face_id not in self.faces:
            got = self.faces[face_id] = {'roi': [], 'expression': [], 'cropped': [],
                                         'aligned': []}
            base = f'/humans/faces/{face_id}/'
            for name, kind in (('roi', NormalizedRegionOfInterest2D),
                               ('expression', Expression), ('cropped', Image),
                               ('aligned', Image)):
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
    proc = fer_node(hri_env, '-p', f'hri_id_prefix:={PREFIX}')
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
    finally:
        stop(proc)


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
                lambda: publishers() == base + 4 * len(in_view), 5.0), (cycle, publishers())
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
    try:
        proc.wait_for('listening on')
        assert 'hri: true needs hri_msgs' in proc.output and 'REP-155 outputs are off' in \
            proc.output
    finally:
        stop(proc)
