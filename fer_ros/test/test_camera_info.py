"""camera_info: calibration files and URLs, and camera_node's camera_info, compressed image and
set_camera_info service on real rclpy."""
import os
from pathlib import Path

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage
from sensor_msgs.srv import SetCameraInfo
from test_nodes import Recorder, graph, spin_until  # noqa: F401 (fixture)

from fer_ros.nodes.camera_info import (Calibration, CalibrationError, load_calibration,
                                       parse_calibration, save_calibration, url_path)
from fer_ros.nodes.camera_node import CameraNode
from fer_ros.perception.compressed import decode_compressed
from fer_ros.perception.image_conversion import image_to_ndarray

# What camera_calibration's cameracalibrator commits for a 640x480 camera.
CALIBRATION = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [430.2, 0, 306.7, 0, 430.9, 237.4, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.337, 0.116, 0.0012, -0.0003, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [340.1, 0, 310.4, -12.0, 0, 380.3, 240.1, 0, 0, 0, 1, 0]
"""


def test_a_cameracalibrator_file_is_read():
    calibration = parse_calibration(CALIBRATION)
    assert (calibration.width, calibration.height) == (640, 480)
    assert calibration.camera_name == 'narrow_stereo' and calibration.calibrated
    assert calibration.k == (430.2, 0, 306.7, 0, 430.9, 237.4, 0, 0, 1)
    assert calibration.d == (-0.337, 0.116, 0.0012, -0.0003, 0)
    assert calibration.p[3] == -12.0


def test_saved_calibrations_read_back_the_same(tmp_path):
    calibration = parse_calibration(CALIBRATION)
    path = tmp_path / 'new' / 'camera.yaml'
    save_calibration(calibration, path)
    assert load_calibration(path) == calibration
    assert [p.name for p in path.parent.iterdir()] == ['camera.yaml']


def test_scaling_follows_the_resized_image():
    calibration = parse_calibration(CALIBRATION)
    assert calibration.scaled(640, 480) is calibration
    half = calibration.scaled(320, 240)
    assert (half.width, half.height) == (320, 240)
    np.testing.assert_allclose(half.k, [215.1, 0, 153.35, 0, 215.45, 118.7, 0, 0, 1])
    np.testing.assert_allclose(half.p, [170.05, 0, 155.2, -6.0, 0, 190.15, 120.05, 0, 0, 0, 1, 0])
    assert half.d == calibration.d and half.r == calibration.r
    stretched = calibration.scaled(1280, 480)
    assert stretched.k[0] == 860.4 and stretched.k[4] == 430.9
    assert not Calibration(64, 48).scaled(32, 24).calibrated


def test_urls_resolve_like_camera_info_manager(monkeypatch, tmp_path):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    assert url_path('', 'front') == tmp_path / 'camera_info' / 'front.yaml'
    assert url_path('file:///calib/${NAME}.yaml', 'front') == Path('/calib/front.yaml')
    assert url_path('file://${ROS_HOME}/c.yaml', 'x') == tmp_path / 'c.yaml'
    assert url_path('package://fer_ros/config/fer.yaml', 'x').is_file()
    for url in ('file://relative/c.yaml', 'http://example.com/c.yaml', '/calib/c.yaml',
                'package://no_such_package_here/c.yaml'):
        with pytest.raises(CalibrationError):
            url_path(url, 'front')


def test_a_missing_file_means_uncalibrated(tmp_path):
    assert load_calibration(tmp_path / 'none.yaml') is None


def _replace(old, new):
    assert old in CALIBRATION
    return CALIBRATION.replace(old, new)


@pytest.mark.parametrize('text, reason', [
    ('image_width: [', 'not YAML'),
    ('- 1\n- 2\n', 'mapping'),
    (_replace('image_width: 640', 'image_width: true'), 'integers'),
    (_replace('image_height: 480', 'image_height: 0'), 'integers'),
    (_replace('distortion_model: plumb_bob', 'distortion_model: fisheye9'), 'distortion model'),
    (_replace('[-0.337, 0.116, 0.0012, -0.0003, 0]', '[1, 2, 3]'), 'distortion_coefficients'),
    (_replace('[430.2, 0, 306.7', '[.nan, 0, 306.7'), 'finite'),
    (_replace('[430.2, 0, 306.7', '[-430.2, 0, 306.7'), 'focal'),
    (_replace('[430.2, 0, 306.7', '[abc, 0, 306.7'), 'numbers'),
    (_replace('[1, 0, 0, 0, 1, 0, 0, 0, 1]', '[1, 0, 0]'), 'rectification_matrix'),
    (CALIBRATION.split('projection_matrix')[0], 'projection_matrix'),
])
def test_broken_calibrations_say_what_is_wrong(text, reason, tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text(text)
    with pytest.raises(CalibrationError, match=reason):
        load_calibration(path)


def test_unreadable_calibration_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / 'fifo')  # opening it would block
    (tmp_path / 'big.yaml').write_bytes(b'#' * (2 << 20))
    for name in ('fifo', 'big.yaml'):
        with pytest.raises(CalibrationError, match='cannot be read'):
            load_calibration(tmp_path / name)


class Listener:
    """Images, camera_info and compressed images on the topics camera_node derives."""

    def __init__(self, node, image_topic='image_raw'):
        self.info, self.compressed = [], []
        info_topic = image_topic.rpartition('/')[0] + '/camera_info' if '/' in image_topic \
            else 'camera_info'
        node.create_subscription(CameraInfo, info_topic, self.info.append,
                                 qos_profile_sensor_data)
        node.create_subscription(CompressedImage, f'{image_topic}/compressed',
                                 self.compressed.append, qos_profile_sensor_data)


def _camera(ros_context, tmp_path, **params):
    params = {'source': 'builtin:astronaut', 'fps': 30.0, 'camera_name': 'front', **params}
    return CameraNode(context=ros_context, cli_args=['--ros-args', '--params-file',
                                                     str(_params_file(tmp_path, params))])


def _params_file(tmp_path, params):
    import yaml
    path = tmp_path / 'camera.yaml'
    path.write_text(yaml.safe_dump({'/**/camera_node': {'ros__parameters': params}}))
    return path


def test_camera_info_matches_each_image_and_its_size(graph, ros_context, tmp_path):
    (tmp_path / 'front.yaml').write_text(CALIBRATION)
    executor, add = graph
    add(_camera(ros_context, tmp_path, width=320, height=240,
                camera_info_url=f'file://{tmp_path}/${{NAME}}.yaml'))
    rec = add(Recorder(ros_context))
    listener = Listener(rec)
    assert spin_until(executor, lambda: len(listener.info) >= 5 and len(listener.compressed) >= 3)
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for m in rec.raw}
    matched = [m for m in listener.info
               if (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) in stamps]
    assert len(matched) >= len(listener.info) - 2  # all but ones whose image is still in flight
    info = listener.info[-1]
    assert (info.width, info.height, info.distortion_model) == (320, 240, 'plumb_bob')
    np.testing.assert_allclose(info.k, [215.1, 0, 153.35, 0, 215.45, 118.7, 0, 0, 1])
    np.testing.assert_allclose(info.p[3], -6.0)
    compressed = listener.compressed[-1]
    assert compressed.format == 'bgr8; jpeg compressed bgr8'
    raw = next(m for m in rec.raw if m.header == compressed.header)
    decoded = decode_compressed(compressed.data, compressed.format)
    assert np.abs(decoded.astype(int) - image_to_ndarray(raw)).mean() < 3


def test_topics_follow_a_remapped_image_topic(graph, ros_context, tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))  # no calibration there
    executor, add = graph
    camera = add(CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value='builtin:astronaut'), Parameter('width', value=64)],
        cli_args=['--ros-args', '-r', 'image_raw:=/cam/image']))
    names = {name for name, _ in camera.get_publisher_names_and_types_by_node(
        'camera_node', '/')}
    assert {'/cam/image', '/cam/image/compressed', '/cam/camera_info'} <= names
    listener = Listener(add(Recorder(ros_context)), '/cam/image')
    assert spin_until(executor, lambda: listener.info)
    info = listener.info[0]
    assert (info.width, info.height) == (64, 64)
    assert not any(info.k) and not any(info.p)  # uncalibrated, the ROS convention


def test_set_camera_info_saves_and_publishes_a_calibration(graph, ros_context, tmp_path):
    executor, add = graph
    url_file = tmp_path / 'calib' / 'front.yaml'
    add(_camera(ros_context, tmp_path, width=320, height=240,
                camera_info_url=f'file://{url_file}'))
    rec = add(Recorder(ros_context))
    listener = Listener(rec)
    client = rec.create_client(SetCameraInfo, 'set_camera_info')
    assert client.wait_for_service(timeout_sec=10)

    def call(info):
        future = client.call_async(SetCameraInfo.Request(camera_info=info))
        assert spin_until(executor, future.done)
        return future.result()

    calibration = parse_calibration(CALIBRATION).scaled(320, 240)
    good = CameraInfo(width=320, height=240, distortion_model='plumb_bob', d=list(calibration.d),
                      k=calibration.k, r=calibration.r, p=calibration.p)
    result = call(good)
    assert result.success, result.status_message
    saved = load_calibration(url_file)
    assert saved.k == calibration.k and saved.camera_name == 'front'
    listener.info.clear()
    assert spin_until(executor, lambda: listener.info)
    np.testing.assert_allclose(listener.info[-1].k, calibration.k)

    before = url_file.read_bytes()
    for bad in (CameraInfo(width=320, height=240, distortion_model='plumb_bob', d=[1.0, 2.0]),
                CameraInfo(width=0, height=240, k=calibration.k),
                CameraInfo(width=320, height=240, k=[float('nan')] * 9)):
        result = call(bad)
        assert not result.success and result.status_message.startswith('not saved')
    assert url_file.read_bytes() == before
    listener.info.clear()
    assert spin_until(executor, lambda: listener.info)  # still publishing, still calibrated
    np.testing.assert_allclose(listener.info[-1].k, calibration.k)


def test_a_bad_calibration_url_leaves_the_camera_running(graph, ros_context, tmp_path, capfd):
    executor, add = graph
    add(_camera(ros_context, tmp_path, camera_info_url='http://example.com/front.yaml'))
    listener = Listener(add(Recorder(ros_context)))
    assert spin_until(executor, lambda: listener.info)
    assert not any(listener.info[0].k)
    assert 'only file:// and package:// URLs' in capfd.readouterr().err


def test_compression_settings_apply_at_run_time(graph, ros_context, tmp_path):
    executor, add = graph
    camera = add(_camera(ros_context, tmp_path, width=64, camera_info_url='file:///none.yaml'))
    listener = Listener(add(Recorder(ros_context)))
    assert spin_until(executor, lambda: listener.compressed)
    assert camera.set_parameters([Parameter('image_raw.compressed.format', value='png')])[0] \
        .successful
    assert not camera.set_parameters([Parameter('image_raw.compressed.format', value='tiff')])[0] \
        .successful
    assert not camera.set_parameters([Parameter('image_raw.compressed.jpeg_quality',
                                                value=101)])[0].successful
    assert not camera.set_parameters([Parameter('fps', value=5.0)])[0].successful
    listener.compressed.clear()
    assert spin_until(executor, lambda: listener.compressed)
    assert listener.compressed[-1].format == 'bgr8; png compressed bgr8'


def test_a_calibration_of_another_aspect_ratio_is_scaled_with_a_warning(graph, ros_context,
                                                                         tmp_path, capfd):
    (tmp_path / 'front.yaml').write_text(CALIBRATION)  # 640x480; the astronaut is square
    executor, add = graph
    add(_camera(ros_context, tmp_path, width=64, camera_info_url=f'file://{tmp_path}/front.yaml'))
    listener = Listener(add(Recorder(ros_context)))
    assert spin_until(executor, lambda: len(listener.info) >= 3)
    np.testing.assert_allclose(listener.info[-1].k[:6], [43.02, 0, 30.67, 0, 57.4533, 31.6533],
                               rtol=1e-4)
    assert capfd.readouterr().err.count('another aspect ratio') == 1


def test_nothing_is_compressed_without_a_subscriber(graph, ros_context, tmp_path, monkeypatch):
    import fer_ros.nodes.camera_node as camera_node
    calls = []
    monkeypatch.setattr(camera_node, 'encode_compressed',
                        lambda *args: calls.append(args) or (b'', ''))
    executor, add = graph
    camera = add(_camera(ros_context, tmp_path, width=64, camera_info_url='file:///none.yaml'))
    assert spin_until(executor, lambda: camera.frames_published >= 5)
    assert not calls
