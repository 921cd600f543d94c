"""Cross-process rates: camera_node and fer_node as two OS processes, as the launch file
starts them, watched from a third. For each frame size, camera_node publishes a still image
at 30 Hz; fer_node's /diagnostics give the rate it receives, and the emotions the rate it
answers. Runs once with fer_ros's Fast DDS profile and once with Fast DDS's defaults.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from fer_msgs.msg import FaceEmotionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from fer_ros.nodes.environment import PROFILE_VARIABLE, use_transport_profile

SIZES = ((640, 480), (1280, 720), (1920, 1080))
DEFAULT_PROFILE = ('<?xml version="1.0" encoding="UTF-8" ?><dds xmlns="http://www.eprosima.com">'
                   '<profiles/></dds>')


def _start(executable: str, env: dict, *ros_args: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / executable), '--ros-args',
                             *ros_args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _rates(frame: np.ndarray, env: dict, context: rclpy.Context, seconds: float) -> tuple:
    """(Hz received by fer_node, Hz of emotions) with camera_node publishing frame at 30 Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / 'frame.png'
        cv2.imwrite(str(image), frame)
        procs = [_start('camera_node', env, '-p', f'source:={image}', '-p', 'fps:=30.0'),
                 _start('fer_node', env, '-p', 'device:=cpu', '-r', 'image:=image_raw')]
        node = Node('bench_watcher', context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        received: list[tuple[float, int]] = []
        emotions: list[float] = []

        def on_status(array: DiagnosticArray) -> None:
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                if 'frames received' in values:
                    received.append((time.monotonic(), int(values['frames received'])))

        node.create_subscription(DiagnosticArray, '/diagnostics', on_status, 10)
        node.create_subscription(FaceEmotionArray, 'emotions',
                                 lambda m: emotions.append(time.monotonic()), 10)
        try:
            deadline = time.monotonic() + 60.0  # start-up: model loading, discovery
            while not (emotions and received and received[-1][1] > 30) and \
                    time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
            start = time.monotonic()
            while time.monotonic() < start + seconds:
                executor.spin_once(timeout_sec=0.1)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(20)
            executor.remove_node(node)
            node.destroy_node()
        window = [r for r in received if r[0] >= start]
        rx = ((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
              if len(window) > 1 else 0.0)
        out = [t for t in emotions if t >= start]
        return rx, (len(out) - 1) / (out[-1] - out[0]) if len(out) > 2 else 0.0


def run(seconds: float = 6.0) -> None:
    print('\ncross-process, camera_node -> fer_node at 30 Hz (Hz received by fer_node / Hz '
          'of emotions)')
    print(f"{'frame':>10s} {'fer_ros profile':>18s} {'Fast DDS defaults':>18s}")
    use_transport_profile()
    profile = os.environ.get(PROFILE_VARIABLE)
    context = rclpy.Context()
    rclpy.init(context=context)
    with tempfile.NamedTemporaryFile('w', suffix='.xml') as default:
        default.write(DEFAULT_PROFILE)
        default.flush()
        rng = np.random.default_rng(0)
        for width, height in SIZES:
            frame = rng.integers(0, 255, (height, width, 3), np.uint8)
            cells = []
            for path in (profile, default.name):
                env = {**os.environ, PROFILE_VARIABLE: path or default.name}
                rx, answered = _rates(frame, env, context, seconds)
                cells.append(f'{rx:6.1f} / {answered:5.1f}')
            print(f'{width:>5d}x{height:<4d} {cells[0]:>18s} {cells[1]:>18s}')
    rclpy.try_shutdown(context=context)
