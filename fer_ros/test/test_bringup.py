"""fer_bringup, the YAML and the launch file agree with the nodes."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import yaml

from fer_ros.models import DEFAULT_MODEL
from fer_ros.nodes.bringup import format_line
from fer_ros.nodes.camera_node import CameraNode
from fer_ros.nodes.environment import share_dir
from fer_ros.nodes.fer_node import FerNode
from fer_ros.nodes.overrides import OVERRIDES, node_overrides

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_bringup_prints_happy_and_writes_annotated_image(tmp_path):
    out = tmp_path / 'annotated.png'
    proc = subprocess.run(
        [BIN / 'fer_bringup', '--frames', '5', '--output', str(out), '--rate', '10.0',
         '--device', 'cpu'], capture_output=True, text=True, timeout=120, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('frame')]
    assert len(lines) == 5
    assert all('1 face(s) | face 0: happy' in line for line in lines)
    assert 'FPS' in lines[-1]
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (512, 512, 3)


def test_bringup_writes_video_from_an_image_folder(tmp_path, astronaut_bgr):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f'{i}.jpg'), astronaut_bgr)
    out = tmp_path / 'out.avi'
    proc = subprocess.run(
        [BIN / 'fer_bringup', '--frames', '6', '--source', str(tmp_path), '--output', str(out),
         '--quiet', '--ros-args', '-p', 'camera_node:fps:=15.0'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    capture = cv2.VideoCapture(str(out))
    ok, frame = capture.read()
    assert ok and frame.shape == (512, 512, 3)


def test_bringup_rejects_bad_overrides():
    proc = subprocess.run([BIN / 'fer_bringup', '--rate', 'fast'], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "rate: cannot read 'fast'" in proc.stderr


def test_overrides_map_to_nodes():
    assert node_overrides({'source': '0', 'rate': '5', 'model': '', 'device': None}) == {
        'camera_node': {'source': '0'}, 'fer_node': {'rate': 5.0}}
    with pytest.raises(ValueError):
        node_overrides({'rate': 'x'})


def test_yaml_matches_declared_parameters(ros_context):
    config = yaml.safe_load((ROOT / 'config' / 'fer.yaml').read_text())
    assert config['/**/fer_node']['ros__parameters']['model'] == DEFAULT_MODEL
    assert (share_dir() / 'config' / 'fer.yaml').read_text() == \
        (ROOT / 'config' / 'fer.yaml').read_text(), 'installed config is stale: run make setup'
    for node_class, name in ((CameraNode, 'camera_node'), (FerNode, 'fer_node')):
        node = node_class(context=ros_context)
        declared = {n for n in node._parameters
                    if n not in ('use_sim_time', 'start_type_description_service')}
        yaml_params = config[f'/**/{name}']['ros__parameters']
        assert set(yaml_params) == declared, name
        for key, value in yaml_params.items():
            assert type(node.get_parameter(key).value) is type(value), key
        for o in OVERRIDES:
            if o.node == name:
                assert o.name in declared
        node.destroy_node()


def test_launch_file_is_consistent():
    """launch_ros is not installable here; check the file's structure against the package."""
    source = (ROOT / 'launch' / 'fer.launch.py').read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]

    def kw(call, name):
        return next((k.value.value for k in call.keywords
                     if k.arg == name and isinstance(k.value, ast.Constant)), None)

    executables = {kw(c, 'executable') for c in calls
                   if getattr(c.func, 'id', '') in ('Node', 'LifecycleNode')
                   and kw(c, 'package') != 'rviz2'}
    setup = (ROOT / 'setup.py').read_text()
    assert executables == {'camera_node', 'fer_node', 'fer_lifecycle_node', 'fer_record_node'}
    assert all(f"'{e} = fer_ros.nodes.{e}:main'" in setup for e in executables)
    declared = {c.args[0].value for c in calls if getattr(c.func, 'id', '') ==
                'DeclareLaunchArgument' and c.args and isinstance(c.args[0], ast.Constant)}
    assert {'params_file', 'use_camera', 'image', 'namespace', 'managed', 'record',
            'record_dir', 'rviz'} <= declared
    # rviz:=true starts rviz2 with the shipped config where it is installed, else says so
    assert "package='rviz2'" in source and 'except PackageNotFoundError' in source
    assert "'fer.rviz'" in source and (share_dir() / 'config' / 'fer.rviz').is_file()
    assert source.count('namespace=namespace') == 3  # camera_node, fer_node, fer_record_node
    assert 'o.name' in source and 'OVERRIDES' in source  # source, model, device, rate
    assert "remappings=[('image', image)]" in source
    assert 'TRANSITION_CONFIGURE' in source and 'TRANSITION_ACTIVATE' in source
    assert 'def generate_launch_description' in source
    compile(source, 'fer.launch.py', 'exec')
    installed = share_dir() / 'launch' / 'fer.launch.py'
    assert installed.read_text() == source


def test_format_line():
    from fer_msgs.msg import FaceEmotion, FaceEmotionArray
    msg = FaceEmotionArray(class_names=['happy', 'sad', 'neutral'], faces=[FaceEmotion(
        id=0, label='happy', label_probability=0.9, probabilities=[0.9, 0.06, 0.04])])
    assert format_line(msg, 3, 29.5) == \
        'frame    3 | 0.000 | 1 face(s) | face 0: happy 0.90 (sad 0.06, neutral 0.04) |  29.5 FPS'


def test_a_burst_of_results_still_gives_a_playable_video(tmp_path, ros_context, astronaut_bgr):
    """Results that arrive back to back (a loaded machine) read as a huge rate; a video
    writer refuses 65536 fps and more, and the file had no frames."""
    import numpy as np
    from std_msgs.msg import Header

    from fer_ros.nodes.bringup import Monitor
    from fer_ros.perception.image_conversion import ndarray_to_image

    monitor = Monitor(tmp_path / 'out.mp4', context=ros_context)
    monitor._arrivals.extend([100.0, 100.000001])  # two results a microsecond apart
    frame = ndarray_to_image(np.ascontiguousarray(astronaut_bgr), 'bgr8', Header())
    for _ in range(3):
        monitor._on_annotated(frame)
    assert monitor.close() == tmp_path / 'out.mp4'
    monitor.destroy_node()
    capture, frames = cv2.VideoCapture(str(tmp_path / 'out.mp4')), 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3


def test_rviz_config_shows_what_fer_node_publishes(ros_context):
    """config/fer.rviz: the annotated image and markers by the node's own (relative) topic
    names, TF, and camera_node's frame as the fixed frame."""
    view = yaml.safe_load((ROOT / 'config' / 'fer.rviz').read_text())['Visualization Manager']
    displays = {d['Class']: d for d in view['Displays']}
    node = FerNode(context=ros_context)
    try:
        published = {name for name, _ in node.get_publisher_names_and_types_by_node(
            'fer_node', '/')}
        for kind in ('Image', 'MarkerArray'):
            topic = displays[f'rviz_default_plugins/{kind}']['Topic']['Value']
            assert not topic.startswith('/') and f'/{topic}' in published, kind
    finally:
        node.destroy_node()
    assert 'rviz_default_plugins/TF' in displays
    config = yaml.safe_load((ROOT / 'config' / 'fer.yaml').read_text())
    assert view['Global Options']['Fixed Frame'] == \
        config['/**/camera_node']['ros__parameters']['frame_id']
