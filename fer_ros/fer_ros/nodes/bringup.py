"""fer_bringup: camera_node + fer_node in one process, configured like fer.launch.py.

Also runs a monitor that subscribes to the FER outputs like any user node,
prints one line per processed frame and writes the annotated output.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from fer_msgs.msg import FaceEmotionArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from fer_ros.nodes.camera_node import CameraNode
from fer_ros.nodes.environment import share_dir
from fer_ros.nodes.fer_node import FerNode
from fer_ros.nodes.messages import stamp_seconds
from fer_ros.nodes.overrides import OVERRIDES, node_overrides
from fer_ros.nodes.spin import prepare_process
from fer_ros.perception.image_conversion import image_to_bgr8

VIDEO_SUFFIXES = {'.mp4': 'mp4v', '.avi': 'MJPG', '.mkv': 'mp4v'}


def format_line(msg: FaceEmotionArray, index: int, fps: float) -> str:
    faces = '; '.join(
        f'face {f.id}: {f.label} {f.label_probability:.2f} (' + ', '.join(
            f'{name} {p:.2f}' for name, p in sorted(zip(msg.class_names, f.probabilities),
                                                     key=lambda t: -t[1])[1:3]) + ')'
        for f in msg.faces) or 'no face'
    stamp = stamp_seconds(msg.header)
    return f'frame {index:4d} | {stamp:.3f} | {len(msg.faces)} face(s) | {faces} | {fps:5.1f} FPS'


class Monitor(Node):
    """Prints every FaceEmotionArray and writes annotated frames to an image or video file."""

    def __init__(self, output: Path | None, quiet: bool = False, **kwargs):
        super().__init__('fer_monitor', **kwargs)
        self.output, self.quiet = output, quiet
        self.count = 0
        self.annotated = 0
        self.last_faces: FaceEmotionArray | None = None
        self._arrivals: collections.deque[float] = collections.deque(maxlen=30)
        self._writer: cv2.VideoWriter | None = None
        self._last_frame: np.ndarray | None = None
        self.create_subscription(FaceEmotionArray, 'emotions', self._on_emotions, 10)
        if output is not None:
            self.create_subscription(Image, 'image_annotated', self._on_annotated, 1)

    def fps(self) -> float:
        if len(self._arrivals) < 2:
            return 0.0
        return (len(self._arrivals) - 1) / max(self._arrivals[-1] - self._arrivals[0], 1e-9)

    def _on_emotions(self, msg: FaceEmotionArray) -> None:
        self._arrivals.append(time.monotonic())
        self.count += 1
        self.last_faces = msg
        if not self.quiet:
            print(format_line(msg, self.count, self.fps()), flush=True)

    def _on_annotated(self, msg: Image) -> None:
        if self.output is None:  # the video could not be written
            return
        frame = image_to_bgr8(msg)
        self.annotated += 1
        self._last_frame = frame
        codec = VIDEO_SUFFIXES.get(self.output.suffix.lower())
        if codec is None:
            return  # still image: written once at close
        if self._writer is None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            # Results that arrive back to back read as a huge rate: writers refuse >= 65536 fps.
            fps = min(max(self.fps(), 10.0), 60.0)
            self._writer = cv2.VideoWriter(str(self.output), cv2.VideoWriter_fourcc(*codec),
                                           fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                self.get_logger().error(f'cannot write a video to {self.output}')
                self.output, self._writer = None, None
                return
        self._writer.write(frame)

    def close(self) -> Path | None:
        if self._writer is not None:
            self._writer.release()
            return self.output
        if self._last_frame is not None and self.output is not None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.output), self._last_frame)
            return self.output
        return None


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog='fer_bringup', description=__doc__.split('\n\n')[0],
        epilog='Arguments after --ros-args are passed to ROS (e.g. -r emotions:=/faces).')
    parser.add_argument('--params-file', type=Path,
                        default=share_dir() / 'config' / 'fer.yaml',
                        help='node parameters (default: %(default)s)')
    for o in OVERRIDES:
        parser.add_argument(f'--{o.name}', help=f'{o.help} (default: from the params file)')
    parser.add_argument('--no-camera', action='store_true',
                        help='do not start camera_node; process an existing image topic')
    parser.add_argument('--image-topic', default='image_raw',
                        help='topic fer_node subscribes to (default: %(default)s)')
    parser.add_argument('--namespace', default='',
                        help='namespace of the nodes and their relative topics (e.g. robot1)')
    parser.add_argument('--output', type=Path,
                        help='write annotated frames: .png/.jpg (last frame) or .mp4/.avi/.mkv')
    parser.add_argument('--frames', type=int, default=0,
                        help='stop after this many processed frames (0 = run until Ctrl-C)')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='with --frames: give up if no frame is processed for this long (s)')
    parser.add_argument('--quiet', action='store_true', help='no per-frame lines')
    ros_args: list[str] = []
    if '--ros-args' in argv:
        i = argv.index('--ros-args')
        argv, ros_args = argv[:i], argv[i + 1:]
    return parser.parse_args(argv), ros_args


def main(argv: list[str] | None = None) -> int:
    args, ros_args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.params_file.is_file():
        print(f'fer_bringup: params file {args.params_file} does not exist', file=sys.stderr)
        return 2
    try:
        overrides = node_overrides(vars(args))
    except ValueError as exc:
        print(f'fer_bringup: {exc}', file=sys.stderr)
        return 2

    def params(node: str) -> list[Parameter]:
        return [Parameter(k, value=v) for k, v in overrides.get(node, {}).items()]

    prepare_process()
    context = rclpy.Context()
    rclpy.init(args=['fer_bringup', '--ros-args', '--params-file', str(args.params_file),
                     *ros_args], context=context, signal_handler_options=SignalHandlerOptions.ALL)
    executor = SingleThreadedExecutor(context=context)
    nodes: list[Node] = []
    monitor: Monitor | None = None
    status = 0
    try:
        ns = args.namespace
        if not args.no_camera:
            nodes.append(CameraNode(context=context, namespace=ns,
                                    parameter_overrides=params('camera_node')))
        nodes.append(FerNode(context=context, namespace=ns, parameter_overrides=params('fer_node'),
                             cli_args=['--ros-args', '-r', f'image:={args.image_topic}']))
        monitor = Monitor(args.output, args.quiet, context=context, namespace=ns)
        nodes.append(monitor)
        for node in nodes:
            executor.add_node(node)
        last_count, last_progress = 0, time.monotonic()
        while context.ok() and (args.frames <= 0 or monitor.count < args.frames):
            executor.spin_once(timeout_sec=0.1)
            if monitor.count != last_count:
                last_count, last_progress = monitor.count, time.monotonic()
            elif args.frames > 0 and time.monotonic() - last_progress > args.timeout:
                print(f'fer_bringup: no frame processed for {args.timeout:g} s, giving up',
                      file=sys.stderr)
                status = 1
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if context.ok():
            raise
        # a signal shut the context down while the nodes were starting: nothing to report
    finally:
        written = monitor.close() if monitor is not None else None
        for node in reversed(nodes):
            executor.remove_node(node)
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    if written is not None:
        print(f'annotated output written to {written}')
    return status


if __name__ == '__main__':
    sys.exit(main())
