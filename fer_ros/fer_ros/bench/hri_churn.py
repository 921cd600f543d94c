"""REP-155 churn: faces come and go before fer_node (hri: true, its own process) for many
minutes, each appearance a new track and id. Prints, minute by minute, the ids seen so far,
fer_node's publishers (its own and the per-face ones) once the faces are gone, and its RSS.
Needs hri_msgs (a ROS install, or PYTHONPATH to the test interfaces build).

  python -m fer_ros.bench.hri_churn --minutes 10
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_ros.bench.soak import _rss_mb
from fer_ros.nodes.environment import use_transport_profile
from fer_ros.perception.image_conversion import ndarray_to_image


def _face() -> np.ndarray:
    from skimage import data
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256))


def run(minutes: float) -> None:
    try:
        from hri_msgs.msg import IdsList
    except ImportError as exc:
        print(f'\nhri churn: skipped ({exc})')
        return
    print(f'\nhri churn: a face in a new place for 3 frames, then none, at 10 Hz, '
          f'{minutes:g} min (fer_node hri: true, its own process)')
    print(f"{'minute':>6s} {'ids seen':>9s} {'publishers with no face':>24s} "
          f"{'fer_node RSS MB':>16s}")
    use_transport_profile()
    fer = subprocess.Popen(
        [str(Path(sys.executable).parent / 'fer_node'), '--ros-args', '-p', 'device:=cpu',
         '-p', 'hri:=true', '-p', 'track_confirm_frames:=2', '-p', 'track_max_missed:=0',
         '-r', 'image:=image_raw'], env=dict(os.environ), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('hri_churn', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    images = node.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
    ids: set[str] = set()
    node.create_subscription(IdsList, '/humans/faces/tracked', lambda m: ids.update(m.ids), 10)
    blank, face = np.full((720, 1280, 3), 90, np.uint8), _face()
    start = time.monotonic()
    try:
        for minute in range(1, int(np.ceil(minutes)) + 1):
            cycle = 0
            while time.monotonic() - start < minute * 60.0:
                frame = blank.copy()
                x = 40 + (cycle % 4) * 300
                frame[200:456, x:x + 256] = face
                for image in (frame, frame, frame, blank):
                    images.publish(ndarray_to_image(image, 'bgr8', Header(frame_id='camera')))
                    deadline = time.monotonic() + 0.1
                    while time.monotonic() < deadline:
                        executor.spin_once(timeout_sec=0.01)
                cycle += 1
            deadline = time.monotonic() + 1.0  # the last face gone
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.01)
            publishers = len(node.get_publisher_names_and_types_by_node('fer_node', '/'))
            print(f'{minute:6d} {len(ids):9d} {publishers:24d} {_rss_mb(fer.pid):16.0f}',
                  flush=True)
    finally:
        fer.terminate()
        fer.wait(30)
        node.destroy_node()
        rclpy.shutdown(context=context)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=10.0)
    run(parser.parse_args(argv).minutes)


if __name__ == '__main__':
    main()
