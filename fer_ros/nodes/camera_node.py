"""camera_node: publishes frames of a V4L2 camera, video, image, folder or glob on image_raw."""
from __future__ import annotations

import time

from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fer_ros.image_conversion import ndarray_to_image
from fer_ros.nodes.params import (RELIABILITY, accept_integers_for_doubles, declare, image_qos,
                                  one_of)
from fer_ros.nodes.spin import run_node
from fer_ros.sources import FrameSource, SourceError, open_source

_MAX_BACKOFF_S = 30.0


class CameraNode(Node):
    def __init__(self, **kwargs):
        super().__init__('camera_node', **kwargs)
        self._source: FrameSource | None = None
        accept_integers_for_doubles(self)
        self.source_spec = declare(
            self, 'source', '0',
            'V4L2 index or /dev/videoN, video file, image file, folder or glob of images, '
            'or builtin:astronaut')
        self.width = declare(self, 'width', 0, 'Output width in pixels (0 = native, or keep the '
                             'aspect ratio when only height is set)', bounds=(0, 7680))
        self.height = declare(self, 'height', 0, 'Output height in pixels (0 = native, or keep '
                              'the aspect ratio when only width is set)', bounds=(0, 4320))
        self.fps = declare(self, 'fps', 30.0, 'Publishing rate in Hz', bounds=(0.1, 240.0))
        self.frame_id = declare(self, 'frame_id', 'camera_frame',
                                'frame_id of the published images')
        self.loop = declare(self, 'loop', True, 'Replay file sources from the start at their end')
        reliability = declare(
            self, 'reliability', 'best_effort',
            'QoS reliability of image_raw: best_effort (sensor data) or reliable',
            validate=one_of(*RELIABILITY))

        self.publisher = self.create_publisher(Image, 'image_raw', image_qos(reliability, 1))
        self.frames_published = 0
        self._backoff_s = 0.5
        self._retry_at = 0.0
        self._failures = 0
        # A steady timer: frames keep their pace under use_sim_time; stamps use the node clock.
        self._timer = self.create_timer(1.0 / self.fps, self._tick,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(lambda params: SetParametersResult(
            successful=all(p.name == 'use_sim_time' for p in params),
            reason='camera_node parameters apply at start only (but use_sim_time); restart it'))
        self.get_logger().info(
            f"publishing '{self.source_spec}' on {self.publisher.topic_name} at {self.fps:g} Hz "
            f'({reliability}, frame_id {self.frame_id})')

    def _open(self) -> None:
        try:
            self._source = open_source(self.source_spec, self.width, self.height, self.fps,
                                       self.loop, on_skip=self.get_logger().warning)
        except SourceError as exc:
            self._schedule_retry(str(exc))

    def _schedule_retry(self, reason: str) -> None:
        self._failures += 1
        message = f'{reason}; retrying in {self._backoff_s:.1f} s'
        if self._failures == 1:
            self.get_logger().error(message)
        else:
            self.get_logger().warning(message, throttle_duration_sec=10.0)
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2.0, _MAX_BACKOFF_S)

    def _tick(self) -> None:
        if self._source is None:
            if time.monotonic() >= self._retry_at:
                self._open()
            if self._source is None:
                return
        try:
            frame = self._source.read()
        except SourceError as exc:
            self._source.close()
            self._source = None
            self._schedule_retry(f"source '{self.source_spec}' stopped delivering frames ({exc})")
            return
        if frame is None:
            if self._source.finished:
                self.get_logger().info(f"source '{self.source_spec}' ended (loop is false)")
                self._timer.cancel()
            return
        if self._failures:
            self.get_logger().info(f"source '{self.source_spec}' delivers frames again")
            self._failures, self._backoff_s = 0, 0.5
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        self.publisher.publish(ndarray_to_image(frame, 'bgr8', header))
        self.frames_published += 1

    def destroy_node(self) -> None:
        if self._source is not None:
            self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args)


if __name__ == '__main__':
    main()
