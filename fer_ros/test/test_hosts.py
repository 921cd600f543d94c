"""camera_node and fer_node as on two hosts: two network namespaces joined by a veth pair,
discovery through ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET and ROS_STATIC_PEERS. Proves that
reliable 640x480 frames cross the link (the veth's byte counter, not shared memory, carries
them), that emotions come back across it stamped with the headers of frames camera_node
published, and that both nodes exit cleanly on SIGINT; with a UDPv4-only Fast DDS profile,
with the shipped one (shared memory and UDPv4: Fast DDS uses UDP between hosts), and with
JPEG frames (image_raw/compressed) crossing instead of raw ones."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from processes import BIN, Process

IP = shutil.which('ip') or 'ip'
ADDRESSES = ('10.231.0.1', '10.231.0.2')
LINK = 'fer0'  # the veth's name in both namespaces
FRAME_BYTES = 640 * 480 * 3
EMOTIONS = 10
SHIPPED_PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds.xml'
UDP_ONLY_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>udp_only</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="udp_only" is_default_profile="true">
      <rtps>
        <userTransports><transport_id>udp_only</transport_id></userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""

# Prints, as JSON lines, the header stamp (and size) of every frame on the topic fer_node takes
# and of every FaceEmotionArray. argv[1]: raw or compressed.
OBSERVER = """
import json, sys
from fer_msgs.msg import FaceEmotionArray
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from fer_ros.nodes.spin import run_node

def say(**kw):
    print(json.dumps(kw), flush=True)

class Observer(Node):
    def __init__(self):
        super().__init__('observer')
        raw = sys.argv[1] == 'raw'
        self.create_subscription(
            Image if raw else CompressedImage, 'image_raw' if raw else 'image_raw/compressed',
            lambda m: say(image=[m.header.stamp.sec, m.header.stamp.nanosec], size=len(m.data)),
            50)
        self.create_subscription(FaceEmotionArray, 'emotions', lambda m: say(
            emotions=[m.header.stamp.sec, m.header.stamp.nanosec], frame_id=m.header.frame_id,
            faces=len(m.faces)), 50)

run_node(Observer)
"""


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([IP, *args], capture_output=True, text=True)


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """Two namespaces with a veth between them (ADDRESSES/24); deleted afterwards."""
    if not shutil.which('ip'):
        pytest.skip('no ip command')
    names = (f'fer_a_{os.getpid()}', f'fer_b_{os.getpid()}')
    added = ip('netns', 'add', names[0])
    if added.returncode:
        pytest.skip(f'ip netns add is not permitted: {added.stderr.strip()}')
    try:
        steps = [('netns', 'add', names[1]),
                 ('-n', names[0], 'link', 'add', LINK, 'type', 'veth',
                  'peer', 'name', LINK, 'netns', names[1])]
        for name, address in zip(names, ADDRESSES):
            steps += [('-n', name, 'addr', 'add', f'{address}/24', 'dev', LINK),
                      ('-n', name, 'link', 'set', 'lo', 'up'),
                      ('-n', name, 'link', 'set', LINK, 'up')]
        for step in steps:
            done = ip(*step)
            assert done.returncode == 0, (step, done.stderr)
        yield names
    finally:
        for name in names:
            ip('netns', 'delete', name)


def in_namespace(namespace: str, *argv: str, env: dict[str, str]) -> Process:
    # An absolute argv[0] replaces Process's BIN; ip netns exec execs the command in its own
    # process, so signals reach the node itself.
    return Process(IP, 'netns', 'exec', namespace, *argv, env=env)


def records(proc: Process) -> list[dict]:
    return [json.loads(line) for line in list(proc.lines) if line.startswith('{')]


@pytest.mark.parametrize('profile, transport', [
    ('udp_only', 'raw'), ('shipped', 'raw'), ('udp_only', 'compressed')])
def test_frames_and_emotions_cross_a_link_between_hosts(hosts, tmp_path, profile, transport):
    a, b = hosts
    path = SHIPPED_PROFILE
    if profile == 'udp_only':
        path = tmp_path / 'udp_only.xml'
        path.write_text(UDP_ONLY_PROFILE)
    domain = str(os.getpid() % 100 + 1)

    def env(peer: str) -> dict[str, str]:
        return {'FASTDDS_DEFAULT_PROFILES_FILE': str(path), 'ROS_DOMAIN_ID': domain,
                'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET', 'ROS_STATIC_PEERS': peer}

    procs = {
        'fer_node': in_namespace(
            b, str(BIN / 'fer_node'), '--ros-args', '-r', 'image:=image_raw',
            '-p', 'image_reliability:=reliable', '-p', f'image_transport:={transport}',
            '-p', 'device:=cpu', env=env(ADDRESSES[0])),
        'observer': in_namespace(a, sys.executable, '-c', OBSERVER, transport,
                                 env=env(ADDRESSES[1])),
        'camera_node': in_namespace(
            a, str(BIN / 'camera_node'), '--ros-args', '-p', 'source:=builtin:astronaut',
            '-p', 'fps:=10.0', '-p', 'reliability:=reliable', '-p', 'width:=640',
            '-p', 'height:=480', env=env(ADDRESSES[1]))}
    observer = procs['observer']

    def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert all(p.alive() for p in procs.values()) and time.monotonic() < deadline, \
                {n: p.output for n, p in procs.items()}
            time.sleep(0.1)

    try:  # fer_node loads its models first: a slow start on a busy machine
        wait_until(lambda: sum('emotions' in r for r in records(observer)) >= EMOTIONS, 75)
        got = records(observer)
        link_bytes = int(subprocess.run(
            [IP, 'netns', 'exec', b, 'cat', f'/sys/class/net/{LINK}/statistics/rx_bytes'],
            capture_output=True, text=True, check=True).stdout)
    finally:
        for proc in procs.values():
            if proc.alive():
                proc.proc.send_signal(signal.SIGINT)
        codes: dict[str, int | str] = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.proc.kill()
                codes[name] = 'killed'
    for name in ('camera_node', 'fer_node'):  # the observer is this test's own tool
        assert codes[name] == 0 and 'Traceback' not in procs[name].output, (
            name, procs[name].output)

    # the frames the observer saw by the end: it may print a frame's answer, which crossed
    # the link, before the frame itself (one executor, two subscriptions ready at once)
    frames = [r for r in records(observer) if 'image' in r]
    images = {tuple(r['image']) for r in frames}
    emotions = [r for r in got if 'emotions' in r]
    for e in emotions:
        assert tuple(e['emotions']) in images and e['frame_id'] == 'camera_frame', e
        assert e['faces'] >= 1, e
    # every emotion array answers a distinct frame fer_node received in b
    answered = {tuple(e['emotions']) for e in emotions}
    assert len(answered) == len(emotions) >= EMOTIONS
    if transport == 'raw':
        assert link_bytes > len(answered) * FRAME_BYTES, (link_bytes, len(answered))
    else:  # JPEG frames crossed, not raw ones: at most every frame sent, plus discovery
        sent = sum(r['size'] for r in frames)
        assert all(r['size'] < FRAME_BYTES / 4 for r in frames)
        assert len(answered) * frames[0]['size'] / 2 < link_bytes < sent + 10**6, \
            (link_bytes, sent)
