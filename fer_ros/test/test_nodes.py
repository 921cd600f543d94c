"""The nodes on real rclpy + Fast DDS, in one executor."""
import math
import threading
import time

import cv2
import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from fer_msgs.msg import FaceEmotionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from payloads import png_of_zeros

from fer_ros.models import DEFAULT_MODEL
from fer_ros.nodes.camera_node import CameraNode
from fer_ros.nodes.fer_base import STALLED
from fer_ros.nodes.fer_node import FerNode
from fer_ros.nodes.fer_params import usable_cpus
from fer_ros.nodes.messages import duration, stamp_seconds
from fer_ros.perception.affect import valence_arousal
from fer_ros.perception.image_conversion import image_to_ndarray, ndarray_to_image


def spin_until(executor, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if predicate():
            return True
    return False


def publish_until_emotions(executor, pub, msg, rec, timeout=20.0):
    """Publish msg until rec has FaceEmotionArray output (discovery takes a moment)."""
    deadline = time.monotonic() + timeout
    while not rec.emotions and time.monotonic() < deadline:
        pub.publish(msg)
        spin_until(executor, lambda: rec.emotions, timeout=0.3)
    assert rec.emotions, 'no FaceEmotionArray received'
    return rec.emotions[0]


def seconds(duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def camera_stand_in(add, context, qos=qos_profile_sensor_data):
    return add(Node('publisher', context=context)).create_publisher(Image, 'image_raw', qos)


class Recorder(Node):
    """Subscribes to what a user's node would: emotions, image_annotated, image_raw."""

    def __init__(self, context):
        super().__init__('recorder', context=context)
        self.emotions, self.annotated, self.raw = [], [], []
        self.create_subscription(FaceEmotionArray, 'emotions', self.emotions.append, 10)
        self.create_subscription(Image, 'image_annotated', self.annotated.append, 10)
        self.create_subscription(Image, 'image_raw', self.raw.append, qos_profile_sensor_data)


@pytest.fixture
def graph(ros_context):
    executor = SingleThreadedExecutor(context=ros_context)
    nodes = []

    def add(node):
        nodes.append(node)
        executor.add_node(node)
        return node

    yield executor, add
    for node in reversed(nodes):
        executor.remove_node(node)
        node.destroy_node()


def fer_node(context, **params):
    overrides = [Parameter('device', value='cpu'), *(Parameter(k, value=v)
                                                     for k, v in params.items())]
    return FerNode(context=context, parameter_overrides=overrides,
                   cli_args=['--ros-args', '-r', 'image:=image_raw'])


def test_camera_and_fer_node_end_to_end(graph, ros_context, astronaut_bgr, tmp_path):
    executor, add = graph
    source = tmp_path / 'astronaut.png'
    cv2.imwrite(str(source), astronaut_bgr)
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(source)), Parameter('fps', value=20.0),
        Parameter('frame_id', value='test_camera')]))
    fer = add(fer_node(ros_context))
    rec = add(Recorder(ros_context))

    assert spin_until(executor, lambda: len(rec.emotions) >= 3 and len(rec.annotated) >= 3)
    assert camera.frames_published >= 3
    raw_headers = {(m.header.stamp.sec, m.header.stamp.nanosec): m.header for m in rec.raw}
    for msg in rec.emotions[-3:]:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        assert key in raw_headers and msg.header == raw_headers[key]
        assert msg.header.frame_id == 'test_camera'
        assert (msg.image_width, msg.image_height) == (512, 512)
        assert msg.model == DEFAULT_MODEL
        assert len(msg.faces) == 1
        face = msg.faces[0]
        assert face.label == 'happy' and msg.class_names[face.label_index] == 'happy'
        assert face.label_probability > 0.6
        assert len(face.probabilities) == len(msg.class_names)
        assert sum(face.probabilities) == pytest.approx(1.0, abs=1e-4)
        assert 150 < face.roi.x_offset < 200 and 80 < face.roi.width < 140
        assert not face.landmarks and math.isnan(face.yaw) and face.blink_count == 0
    assert {m.faces[0].id for m in rec.emotions} == {0}  # one tracked face, one id
    faces = [(stamp_seconds(m.header), m.faces[0]) for m in rec.emotions]
    for (t0, f0), (t1, f1) in zip(faces, faces[1:]):
        assert f1.track_frames > f0.track_frames
        assert seconds(f1.track_age) - seconds(f0.track_age) == pytest.approx(t1 - t0, abs=1e-6)
    assert faces[-1][1].track_confirmed and faces[-1][1].track_frames >= 3
    for _, face in faces:
        assert face.track_confirmed == (face.track_frames >= 3)
        expected = valence_arousal(np.array([face.probabilities]), rec.emotions[0].class_names)
        assert (face.valence, face.arousal) == pytest.approx(tuple(expected[0]), abs=1e-5)
        assert face.valence > 0.3 and face.arousal > 0.2  # happy
    assert fer._worker_threads == 1  # cpu_threads applied in the worker thread
    status = fer.diagnostics()
    assert status.level == status.OK and status.name.startswith('/fer_node: ')
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['frames processed']) >= 3 and values['latency median (ms, last 5 s)'] != 'n/a'
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in rec.emotions}
    for img in rec.annotated[-3:]:
        assert (img.width, img.height, img.encoding) == (512, 512, 'bgr8')
        assert (img.header.stamp.sec, img.header.stamp.nanosec) in stamps
        assert not np.array_equal(image_to_ndarray(img), astronaut_bgr)  # boxes drawn


def test_durations_are_clamped_to_int32_seconds():
    assert (duration(3.9e9).sec, duration(3.9e9).nanosec) == (2**31 - 1, 999_999_999)
    assert (duration(-1e12).sec, duration(-1e12).nanosec) == (-2**31, 0)
    assert (duration(1.5).sec, duration(1.5).nanosec) == (1, 500_000_000)


def test_malformed_images_are_skipped_and_good_ones_served(graph, ros_context, astronaut_bgr,
                                                          capfd):
    executor, add = graph
    add(fer_node(ros_context))
    rec = add(Recorder(ros_context))
    # A reliable publisher: fer_node must accept it as well as best-effort ones.
    pub = camera_stand_in(add, ros_context,
                          QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    assert spin_until(executor, lambda: pub.get_subscription_count() >= 2)

    bad = [Image(height=10, width=10, encoding='bgr8', step=30, data=bytes(50)),
           Image(height=10, width=10, encoding='yuv9', step=30, data=bytes(300)),
           Image(height=0, width=0, encoding='bgr8')]
    for i, msg in enumerate(bad):
        msg.header.frame_id = f'bad{i}'
        pub.publish(msg)
        executor.spin_once(timeout_sec=0.2)
        time.sleep(0.2)
    good = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='good'))
    publish_until_emotions(executor, pub, good, rec)
    assert {m.header.frame_id for m in rec.emotions} == {'good'}
    assert rec.emotions[0].faces[0].label == 'happy'
    assert 'skipping image' in capfd.readouterr().err


def test_parameters_are_validated_and_applied_at_run_time(graph, ros_context):
    _, add = graph
    node = add(fer_node(ros_context))
    assert node.get_parameter('detector_model').value == 'full_range'
    for name, value in (('rate', -1.0), ('detection_threshold', 1.5), ('max_faces', 1000),
                        ('device', 'tpu'), ('model', 'no_such_model'),
                        ('detector_model', 'medium_range')):
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and result.reason, name
    assert node.pipeline is not None and node.pipeline.detector.min_confidence == 0.3
    # a failing change in the same call leaves the valid one unapplied too
    results = node.set_parameters_atomically([Parameter('rate', value=7.0),
                                              Parameter('model', value='no_such_model')])
    assert not results.successful and node._worker.max_rate == 0.0

    assert node.set_parameters([Parameter('rate', value=5.0)])[0].successful
    assert node._worker.max_rate == 5.0
    assert node.set_parameters([Parameter('detection_threshold', value=0.9)])[0].successful
    assert node.pipeline.detector.min_confidence == 0.9
    assert node.set_parameters([Parameter('detector_model', value='short_range')])[0].successful
    assert node.pipeline.detector.model == 'short_range'
    assert node.get_parameter('rate').value == 5.0
    assert not node.set_parameters([Parameter('smoothing', value=0.99)])[0].successful
    assert node.set_parameters([Parameter('smoothing', value=0.5)])[0].successful
    assert node.tracker.smoothing == 0.5
    assert node.set_parameters([Parameter('cpu_threads', value=usable_cpus())])[0].successful
    assert node.cpu_threads == usable_cpus()
    assert node.set_parameters([Parameter('tta_flip', value=True)])[0].successful
    assert node.pipeline.classifier.tta_flip
    ensemble = 'fer_cnn_fer2013_ft+mini_xception_fer2013'
    assert node.set_parameters([Parameter('model', value=ensemble)])[0].successful
    assert [m.spec.name for m in node.pipeline.classifier.model.members] == [
        'fer_cnn_fer2013_ft', 'mini_xception_fer2013']
    assert node.pipeline.classifier.tta_flip
    for name, value in (('track_confirm_frames', 5), ('track_max_missed', 30)):
        assert node.set_parameters([Parameter(name, value=value)])[0].successful
    assert (node.tracker.confirm_frames, node.tracker.max_missed) == (5, 30)


def test_landmarks_are_refused_without_their_runtime(graph, ros_context, monkeypatch):
    import importlib.util
    _, add = graph
    node = add(fer_node(ros_context))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'ai_edge_litert' else real(name, *a))
    result = node.set_parameters([Parameter('landmarks', value=True)])[0]
    assert not result.successful and 'pip install' in result.reason
    assert node.pipeline.states is None


def test_landmarks_eyes_blinks_and_head_pose_over_dds(graph, ros_context, astronaut_bgr):
    executor, add = graph
    fer = add(fer_node(ros_context, landmarks=True, looking_threshold=90.0))
    rec = add(Recorder(ros_context))
    pub = camera_stand_in(add, ros_context)
    info_pub = add(Node('info', context=ros_context)).create_publisher(
        CameraInfo, 'camera_info', qos_profile_sensor_data)
    info = CameraInfo(width=1024, height=1024, k=[600.0, 0.0, 512.0, 0.0, 600.0, 512.0,
                                                 0.0, 0.0, 1.0])
    msg = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='camera'))
    deadline = time.monotonic() + 20
    while fer._camera(512, 512) is None and time.monotonic() < deadline:
        info_pub.publish(info)
        spin_until(executor, lambda: fer._camera(512, 512) is not None, timeout=0.3)
    np.testing.assert_allclose(fer._camera(512, 512), [[300, 0, 256], [0, 300, 256], [0, 0, 1]])
    (face,) = publish_until_emotions(executor, pub, msg, rec).faces
    assert len(face.landmarks) == 468
    assert all(0 <= p.x < 512 and 0 <= p.y < 512 for p in face.landmarks)
    assert face.roi.x_offset < face.landmarks[1].x < face.roi.x_offset + face.roi.width
    assert 0.8 <= face.left_eye_openness <= 1 and 0.8 <= face.right_eye_openness <= 1
    assert all(abs(a) < 60 for a in (face.yaw, face.pitch, face.roll))
    assert face.looking_at_camera and face.blink_count == 0
    assert fer.set_parameters([Parameter('looking_threshold', value=0.0)])[0].successful
    rec.emotions.clear()
    publish_until_emotions(executor, pub, msg, rec)
    assert not rec.emotions[0].faces[0].looking_at_camera


def test_bad_start_values_fall_back_with_a_reason(graph, ros_context, capfd):
    _, add = graph
    node = add(fer_node(ros_context, rate=-5.0, device='tpu'))
    assert node.get_parameter('rate').value == 0.0
    assert node.get_parameter('device').value == 'auto'
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('reliability', value='sometimes'),
        Parameter('source', value='builtin:astronaut')]))
    assert camera.get_parameter('reliability').value == 'best_effort'
    result = camera.set_parameters([Parameter('fps', value=5.0)])[0]
    assert not result.successful and 'start only' in result.reason
    err = capfd.readouterr().err
    assert "parameter 'rate'" in err and "parameter 'device'" in err and 'reliability' in err


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
def test_missing_gpu_keeps_node_up_until_device_is_fixed(graph, ros_context, astronaut_bgr,
                                                         capfd):
    executor, add = graph
    node = add(fer_node(ros_context, device='cuda'))
    assert node.pipeline is None and 'no CUDA GPU' in node.load_error
    assert node.diagnostics().level == node.diagnostics().ERROR
    assert 'no CUDA GPU' in capfd.readouterr().err
    assert node.set_parameters([Parameter('device', value='cpu')])[0].successful
    rec = add(Recorder(ros_context))
    good = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
    msg = publish_until_emotions(executor, camera_stand_in(add, ros_context), good, rec)
    assert msg.faces[0].label == 'happy'


def test_unopenable_camera_source_logs_and_keeps_running(graph, ros_context, capfd):
    executor, add = graph
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value='/no/such/video.mp4'), Parameter('fps', value=50.0)]))
    spin_until(executor, lambda: camera._failures >= 2, timeout=3.0)
    assert camera._failures >= 2 and camera.frames_published == 0
    err = capfd.readouterr().err
    assert "cannot open source '/no/such/video.mp4': no such file" in err


def test_camera_reopens_a_source_that_stops_delivering(graph, ros_context, astronaut_bgr,
                                                       tmp_path):
    executor, add = graph
    frame = tmp_path / 'frame.png'
    cv2.imwrite(str(frame), astronaut_bgr)
    cv2.imwrite(str(tmp_path / 'other.png'), astronaut_bgr)
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(tmp_path)), Parameter('fps', value=50.0)]))
    assert spin_until(executor, lambda: camera.frames_published >= 2)
    frame.write_bytes(b'truncated')  # no image of the folder is readable now
    (tmp_path / 'other.png').write_bytes(b'truncated')
    assert spin_until(executor, lambda: camera._failures >= 1)
    published = camera.frames_published
    cv2.imwrite(str(frame), astronaut_bgr)  # the device "comes back"
    assert spin_until(executor, lambda: camera.frames_published > published + 2)
    assert camera._failures == 0


def test_fer_node_runs_a_trained_checkpoint(graph, ros_context, astronaut_bgr, tmp_path):
    from test_training import synthetic_fer2013

    from fer_ros.learning.config import TrainConfig
    from fer_ros.learning.trainer import Trainer

    data = synthetic_fer2013(tmp_path / 'train.npz', n=70)
    best = Trainer(TrainConfig(train=str(data), epochs=1, max_batches=2, threads=1,
                               arch='fer_cnn', arch_kwargs={'widths': [8, 16]}),
                   tmp_path / 'run').fit(progress=False)
    executor, add = graph
    node = add(fer_node(ros_context, model=str(best)))
    assert node.pipeline.classifier.model.members[0].spec.input.size == 48
    rec = add(Recorder(ros_context))
    good = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
    msg = publish_until_emotions(executor, camera_stand_in(add, ros_context), good, rec)
    assert msg.model == str(best)
    assert tuple(msg.class_names) == ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad',
                                      'surprise')
    assert len(msg.faces) == 1 and len(msg.faces[0].probabilities) == 7


def test_a_result_never_mixes_two_models_during_swaps(graph, ros_context, astronaut_bgr):
    import threading
    executor, add = graph
    node = add(fer_node(ros_context))
    rec = add(Recorder(ros_context))
    classes = {}
    for name in (DEFAULT_MODEL, 'fer_cnn_ferplus'):
        assert node.set_parameters([Parameter('model', value=name)])[0].successful
        classes[name] = node.pipeline.classifier.class_names
    assert len(set(classes.values())) == 2
    msg = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
    stop = threading.Event()

    def frames():  # what the worker thread does, back to back
        while not stop.is_set():
            node.process_frame(msg)

    worker = threading.Thread(target=frames)
    worker.start()
    try:
        for i in range(8):
            model = (DEFAULT_MODEL, 'fer_cnn_ferplus')[i % 2]
            assert node.set_parameters([Parameter('model', value=model)])[0].successful
            spin_until(executor, lambda: False, timeout=0.15)
    finally:
        stop.set()
        worker.join()
    spin_until(executor, lambda: False, timeout=0.5)
    assert len({m.model for m in rec.emotions}) == 2
    mixed = [m.model for m in rec.emotions if tuple(m.class_names) != classes[m.model]]
    assert not mixed, f'{len(mixed)} of {len(rec.emotions)} results mix two models'


def test_integers_are_accepted_for_double_parameters(graph, ros_context):
    _, add = graph
    node = add(FerNode(context=ros_context, cli_args=[
        '--ros-args', '-p', 'device:=cpu', '-p', 'rate:=4', '-p', 'smoothing:=0']))
    assert node.get_parameter('rate').value == 4.0 and node._worker.max_rate == 4.0
    assert node.get_parameter('smoothing').value == 0.0
    assert node.set_parameters([Parameter('rate', value=3)])[0].successful
    assert node.get_parameter('rate').value == 3.0 and node._worker.max_rate == 3.0
    assert not node.set_parameters([Parameter('rate', value='fast')])[0].successful


def test_a_parameter_set_to_its_value_does_not_rebuild_the_pipeline(graph, ros_context):
    _, add = graph
    node = add(fer_node(ros_context))
    pipeline = node.pipeline
    for name in ('model', 'device', 'detector_model', 'detection_threshold', 'max_faces'):
        value = node.get_parameter(name).value
        assert node.set_parameters([Parameter(name, value=value)])[0].successful
    assert node.pipeline is pipeline
    assert node.set_parameters([Parameter('max_faces', value=3)])[0].successful
    assert node.pipeline is not pipeline and node.pipeline.detector.max_faces == 3


def test_a_change_rebuilds_only_the_part_it_concerns(graph, ros_context, capfd, tmp_path):
    """Refused detector_model values rebuilt the classifier, logging 'no CUDA GPU' each time."""
    _, add = graph
    node = add(FerNode(context=ros_context))  # device auto
    capfd.readouterr()
    classifier, detector = node.pipeline.classifier, node.pipeline.detector
    for bad in ('/proc/version', str(tmp_path), '/no/such/file.tflite', 'x' * 300):
        assert not node.set_parameters([Parameter('detector_model', value=bad)])[0].successful
    assert (node.pipeline.classifier, node.pipeline.detector) == (classifier, detector)
    for name, value in (('detector_model', 'short_range'), ('detection_threshold', 0.5),
                        ('max_faces', 3)):
        assert node.set_parameters([Parameter(name, value=value)])[0].successful
        assert node.pipeline.classifier is classifier and node.pipeline.detector is not detector
        detector = node.pipeline.detector
    assert node.pipeline.detector.model == 'short_range' and node.pipeline.detector.max_faces == 3
    assert node.set_parameters([Parameter('model', value='fer_cnn_fer2013_ft')])[0].successful
    assert node.pipeline.classifier is not classifier and node.pipeline.detector is detector
    err = capfd.readouterr().err
    assert err.count('no CUDA GPU') == (0 if torch.cuda.is_available() else 1), err
    assert err.count('now using model') == 1


def test_a_hung_inference_blocks_no_parameter_change_diagnostics_or_shutdown(
        graph, ros_context, astronaut_bgr, capfd):
    """A planted graph that never returned wedged the node: a model change got no answer (it
    waited on the lock the stuck frame held), diagnostics said OK, SIGINT did not stop it."""
    executor, add = graph
    node = fer_node(ros_context)
    executor.add_node(node)
    pub = camera_stand_in(add, ros_context)
    entered, release = threading.Event(), threading.Event()

    def hang(*args):
        entered.set()
        release.wait(120)
        return np.zeros((len(args[1]), len(node.pipeline.classifier.class_names)))

    node.pipeline.classifier.predict = hang
    msg = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
    assert spin_until(executor, lambda: pub.publish(msg) or entered.is_set())
    start = time.monotonic()
    assert node.set_parameters([Parameter('detector_model', value='short_range')])[0].successful
    assert node.set_parameters([Parameter('model', value='fer_cnn_fer2013_ft')])[0].successful
    assert time.monotonic() - start < 5
    spin_until(executor, lambda: pub.publish(msg), timeout=STALLED + 1)  # frames keep coming
    status = node.diagnostics()
    assert status.level == DiagnosticStatus.ERROR and 'the model or detector hangs' in \
        status.message
    worker = node._worker
    start = time.monotonic()
    executor.remove_node(node)
    node.destroy_node()
    assert time.monotonic() - start < 10
    assert 'a frame has been processing for over 5 s' in capfd.readouterr().err
    release.set()  # the frame ends: the worker closes the detectors left to it, and stops
    worker._thread.join(20)
    assert not worker._thread.is_alive() and not node._retired


def test_camera_node_accepts_use_sim_time_and_keeps_the_aspect_ratio(graph, ros_context):
    executor, add = graph
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value='builtin:astronaut'), Parameter('width', value=256),
        Parameter('fps', value=50)]))
    assert camera.get_parameter('fps').value == 50.0
    assert camera.set_parameters([Parameter('use_sim_time', value=True)])[0].successful
    assert not camera.set_parameters([Parameter('width', value=100)])[0].successful
    rec = add(Recorder(ros_context))
    assert spin_until(executor, lambda: rec.raw)  # frames keep coming without a /clock
    assert (rec.raw[0].width, rec.raw[0].height) == (256, 256)
    assert rec.raw[0].header.stamp.sec == 0  # stamped with the (unset) simulation time


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
def test_diagnostics_name_the_device_in_use_and_the_namespace(graph, ros_context):
    _, add = graph
    node = add(FerNode(context=ros_context, namespace='robot1'))  # device auto
    status = node.diagnostics()
    assert status.hardware_id == 'cpu' and status.name.startswith('/robot1/fer_node: ')
    assert {kv.key: kv.value for kv in status.values}['device'] == 'cpu'


def test_compressed_input_from_image_transport_topics(graph, ros_context, astronaut_bgr, capfd):
    from sensor_msgs.msg import CompressedImage

    from fer_ros.perception.compressed import encode_compressed
    executor, add = graph
    add(FerNode(context=ros_context, parameter_overrides=[
        Parameter('device', value='cpu'), Parameter('image_transport', value='compressed')],
        cli_args=['--ros-args', '-r', 'image:=image_raw']))
    rec = add(Recorder(ros_context))
    pub = add(Node('driver', context=ros_context)).create_publisher(
        CompressedImage, 'image_raw/compressed', qos_profile_sensor_data)
    bad = CompressedImage(header=Header(frame_id='bad'), format='jpeg', data=b'\xff\xd8junk')
    bomb = CompressedImage(header=Header(frame_id='bomb'), format='png',  # 64 MP in 200 kB
                           data=png_of_zeros(8192, 8192))
    for msg in (bomb, bad, bomb):
        pub.publish(msg)
        spin_until(executor, lambda: False, timeout=0.2)
    data, fmt = encode_compressed(astronaut_bgr)
    good = CompressedImage(header=Header(frame_id='cam'), format=fmt, data=data)
    msg = publish_until_emotions(executor, pub, good, rec)
    assert msg.header.frame_id == 'cam' and (msg.image_width, msg.image_height) == (512, 512)
    assert msg.faces[0].label == 'happy'
    assert 'bomb' not in {m.header.frame_id for m in rec.emotions}
    err = capfd.readouterr().err
    assert 'skipping image' in err and '8192x8192 PNG image is over the budget of 8847360' in err


def test_detection_tile_finds_small_faces_in_wide_frames(graph, ros_context, astronaut_bgr,
                                                         capfd):
    executor, add = graph
    frame = np.full((1080, 1920, 3), 128, np.uint8)  # three ~45 px faces in a 1080p frame
    small = cv2.resize(astronaut_bgr, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    for x in (100, 900, 1500):
        frame[500:500 + small.shape[0], x:x + small.shape[1]] = small
    msg = ndarray_to_image(frame, 'bgr8', Header(frame_id='cam'))
    assert add(fer_node(ros_context, detection_tile=50)).get_parameter('detection_tile').value == 0
    assert "'detection_tile' = 50 rejected" in capfd.readouterr().err
    node = add(fer_node(ros_context))
    pub = camera_stand_in(add, ros_context)
    rec = add(Recorder(ros_context))
    assert publish_until_emotions(executor, pub, msg, rec).faces == []  # whole frame only
    for bad in (64, 128, 4000, -1):
        result = node.set_parameters([Parameter('detection_tile', value=bad)])[0]
        assert not result.successful and result.reason
    assert node.set_parameters([Parameter('detection_tile', value=640)])[0].successful
    assert node.pipeline.detector.tile == 640
    deadline = time.monotonic() + 20  # a result of the old pipeline may still be on its way
    while not any(m.faces for m in rec.emotions) and time.monotonic() < deadline:
        pub.publish(msg)
        spin_until(executor, lambda: any(m.faces for m in rec.emotions), timeout=0.3)
    faces = next(m.faces for m in rec.emotions if m.faces)
    found = sorted(f.roi.x_offset for f in faces if f.roi.y_offset < 580)
    assert [x // 100 for x in found] == [1, 9, 15]  # each astronaut's face, once


def test_backend_parameter_switches_to_onnx_runtime(graph, ros_context, astronaut_bgr):
    executor, add = graph
    node = add(fer_node(ros_context, backend='onnxruntime_int8', device='auto'))
    assert node.pipeline.classifier.backend == 'onnxruntime_int8'
    pub = camera_stand_in(add, ros_context)
    rec = add(Recorder(ros_context))
    msg = ndarray_to_image(astronaut_bgr, 'bgr8', Header(frame_id='cam'))
    face = publish_until_emotions(executor, pub, msg, rec).faces[0]
    assert face.label == 'happy' and face.label_probability > 0.6
    for name, value, reason in (('backend', 'tensorrt', 'use one of auto, torch'),
                                ('model', 'mini_xception_fer2013', 'use backend torch'),
                                ('device', 'cuda', 'cpu')):
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and reason in result.reason, (name, result.reason)
    assert node.pipeline.classifier.backend == 'onnxruntime_int8'
    assert node.get_parameter('model').value == DEFAULT_MODEL
    assert node.set_parameters([Parameter('backend', value='onnxruntime')])[0].successful
    assert node.pipeline.classifier.backend == 'onnxruntime'
    assert {kv.key: kv.value for kv in node.diagnostics().values}['backend'] == 'onnxruntime'
    # auto, the default: the verified int8 graph on the CPU; torch for a model without one
    assert node.set_parameters([Parameter('backend', value='auto')])[0].successful
    assert node.pipeline.classifier.backend == 'onnxruntime_int8'
    assert node.set_parameters([Parameter('model', value='mini_xception_fer2013')])[0].successful
    assert {kv.key: kv.value for kv in node.diagnostics().values}['backend'] == 'torch'
