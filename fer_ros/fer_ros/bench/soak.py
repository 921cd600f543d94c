"""Soak: camera_node publishes a six-face frame at 30 Hz to fer_node with landmarks on, two OS
processes as the launch file starts them, for many minutes; a third process watches. Prints,
minute by minute, the rate fer_node answers, the end-to-end latency (header stamp to the
emotions' arrival, p50 and p95) and fer_node's RSS, then the RSS drift over the run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from fer_msgs.msg import FaceEmotionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from fer_ros.nodes.environment import use_transport_profile

FRAME = 'faceapi_bbt4.jpg'  # six faces


def _rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def run(media: Path, minutes: float) -> None:
    frame = media / FRAME
    if not frame.is_file():
        print(f'\nsoak: skipped ({frame} not found)')
        return
    print(f'\nsoak: {FRAME} (6 faces) at 30 Hz, landmarks on, {minutes:g} min '
          '(camera_node -> fer_node, two processes)')
    print(f"{'minute':>6s} {'answered Hz':>12s} {'faces':>6s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'fer_node RSS MB':>16s}")
    use_transport_profile()
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    procs = [subprocess.Popen([str(bin_dir / 'camera_node'), '--ros-args', '-p',
                               f'source:={frame}', '-p', 'fps:=30.0'], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([str(bin_dir / 'fer_node'), '--ros-args', '-p', 'device:=cpu',
                               '-p', 'landmarks:=true', '-r', 'image:=image_raw'], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('soak_watcher', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    arrivals: list[tuple[float, float, int]] = []  # (monotonic, latency ms, faces)

    def on_emotions(msg: FaceEmotionArray) -> None:
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        arrivals.append((time.monotonic(), (time.time() - sent) * 1e3, len(msg.faces)))

    node.create_subscription(FaceEmotionArray, 'emotions', on_emotions, 10)
    try:
        deadline = time.monotonic() + 90.0  # start-up: models, discovery
        while not arrivals and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        if not arrivals:
            print('soak: fer_node did not answer within 90 s')
            return
        rss = []
        for minute in range(1, int(minutes) + 1):
            arrivals.clear()
            end = time.monotonic() + 60.0
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
            rss.append(_rss_mb(procs[1].pid))
            latency = np.array([a[1] for a in arrivals]) if arrivals else np.array([np.nan])
            faces = int(np.median([a[2] for a in arrivals])) if arrivals else 0
            print(f'{minute:>6d} {len(arrivals) / 60.0:>12.1f} {faces:>6d} '
                  f'{np.percentile(latency, 50):>8.1f} {np.percentile(latency, 95):>8.1f} '
                  f'{rss[-1]:>16.0f}', flush=True)
        if len(rss) > 1:
            print(f'fer_node RSS: {rss[0]:.0f} MB after the first minute, {rss[-1]:.0f} MB '
                  f'after the last ({(rss[-1] - rss[0]) / (len(rss) - 1):+.2f} MB per minute)')
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
