"""camera_node: publishes frames of a V4L2 camera, video, image, folder or glob on image_raw,
with camera_info and image_raw/compressed beside it, as an image_transport camera driver does."""
from __future__ import annotations

import array
import time

from builtin_interfaces.msg import Time
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from sensor_msgs.srv import SetCameraInfo
from std_msgs.msg import Header

from fer_ros.nodes.camera_info import (Calibration, CalibrationError, check_camera_name, checked,
                                       load_calibration, save_calibration, url_path)
from fer_ros.nodes.params import (RELIABILITY, accept_integers_for_doubles, declare, image_qos,
                                  one_of)
from fer_ros.nodes.spin import run_node
from fer_ros.perception.compressed import encode_compressed
from fer_ros.perception.image_conversion import ndarray_to_image
from fer_ros.perception.sources import FrameSource, SourceError, open_source

_MAX_BACKOFF_S = 30.0
_COMPRESSED = 'image_raw.compressed'
_RUN_TIME = {f'{_COMPRESSED}.format': 'format', f'{_COMPRESSED}.jpeg_quality': 'quality',
             f'{_COMPRESSED}.png_level': 'png_level'}
_FORMAT = one_of('jpeg', 'png')


class CameraNode(Node):
    def __init__(self, **kwargs):
        super().__init__('camera_node', **kwargs)
        self._source: FrameSource | None = None
        accept_integers_for_doubles(self)
        self.source_spec = declare(
            self, 'source', '0',
            'V4L2 index or /dev/videoN, video file, image file, folder or glob of images, '
            'rosbag2 .mcap file, or builtin:astronaut')
        self.width = declare(self, 'width', 0, 'Output width in pixels (0 = native, or keep the '
                             'aspect ratio when only height is set)', bounds=(0, 7680))
        self.height = declare(self, 'height', 0, 'Output height in pixels (0 = native, or keep '
                              'the aspect ratio when only width is set)', bounds=(0, 4320))
        self.fps = declare(self, 'fps', 30.0, 'Publishing rate in Hz', bounds=(0.1, 240.0))
        self.frame_id = declare(self, 'frame_id', 'camera_frame',
                                'frame_id of the published images')
        self.loop = declare(self, 'loop', True, 'Replay file sources from the start at their end')
        self.bag_topic = declare(self, 'bag_topic', '', 'Image topic of an .mcap source (a '
                                 "rosbag2 recording); '' = its only image topic")
        self.bag_realtime = declare(self, 'bag_realtime', True, 'Replay an .mcap source at its '
                                    'recorded rate (false: as fast as fps allows)')
        reliability = declare(
            self, 'reliability', 'best_effort',
            'QoS reliability of image_raw, its compressed topic and camera_info: best_effort '
            '(sensor data) or reliable', validate=one_of(*RELIABILITY))
        self.camera_name = declare(
            self, 'camera_name', 'camera', 'Camera name: ${NAME} in camera_info_url',
            validate=check_camera_name)
        self.camera_info_url = declare(
            self, 'camera_info_url', '',
            'Calibration YAML (camera_calibration format): file:///path or package://pkg/path; '
            'empty = file://${ROS_HOME}/camera_info/${NAME}.yaml; no file = uncalibrated')
        # image_transport's compressed plugin's names; they apply at run time too.
        self.compression = {
            'format': declare(self, f'{_COMPRESSED}.format', 'jpeg',
                              'image_raw/compressed encoding: jpeg or png',
                              validate=_FORMAT),
            'quality': declare(self, f'{_COMPRESSED}.jpeg_quality', 95,
                               'image_raw/compressed JPEG quality', bounds=(1, 100)),
            'png_level': declare(self, f'{_COMPRESSED}.png_level', 3,
                                 'image_raw/compressed PNG compression level', bounds=(1, 9))}

        qos = image_qos(reliability, 1)
        self.publisher = self.create_publisher(Image, 'image_raw', qos)
        # Beside the image topic as it resolves after remapping, as image_transport has them.
        image_topic = self.publisher.topic_name
        self.compressed_publisher = self.create_publisher(
            CompressedImage, image_topic + '/compressed', qos)
        self.info_publisher = self.create_publisher(
            CameraInfo, image_topic.rsplit('/', 1)[0] + '/camera_info', qos)
        self._calibration = self._load_calibration()
        self._info: CameraInfo | None = None  # for the current frame size
        self.create_service(SetCameraInfo, 'set_camera_info', self._set_camera_info)
        self.frames_published = 0
        self._backoff_s = 0.5
        self._retry_at = 0.0
        self._failures = 0
        # A steady timer: frames keep their pace under use_sim_time; stamps use the node clock.
        self._timer = self.create_timer(1.0 / self.fps, self._tick,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"publishing '{self.source_spec}' on {self.publisher.topic_name} at {self.fps:g} Hz "
            f'({reliability}, frame_id {self.frame_id})')

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        changes = {}
        for param in params:
            key = _RUN_TIME.get(param.name)
            if param.name == 'use_sim_time':
                continue
            if key is None:
                return SetParametersResult(successful=False, reason=(
                    f"'{param.name}' applies at start only; restart camera_node"))
            if key == 'format' and _FORMAT(param.value):
                return SetParametersResult(successful=False, reason=_FORMAT(param.value))
            changes[key] = param.value
        self.compression.update(changes)
        return SetParametersResult(successful=True)

    def _load_calibration(self) -> Calibration | None:
        try:
            path = url_path(self.camera_info_url, self.camera_name)
            calibration = load_calibration(path)
        except CalibrationError as exc:
            self.get_logger().error(f'camera_info_url: {exc}; camera_info is uncalibrated')
            return None
        if calibration is None:
            self.get_logger().info(f'no calibration file {path}; camera_info is uncalibrated')
        return calibration

    def _camera_info(self, width: int, height: int) -> CameraInfo:
        if self._info is None or (self._info.width, self._info.height) != (width, height):
            calibration = self._calibration or Calibration(width, height)
            if abs(calibration.width * height - calibration.height * width) > \
                    0.01 * calibration.width * height:
                self.get_logger().warning(
                    f'calibration of {calibration.width}x{calibration.height} scaled to '
                    f'{width}x{height}, another aspect ratio: right only if the image is '
                    'stretched, not cropped; calibrate at this size')
            calibration = calibration.scaled(width, height)
            self._info = CameraInfo(
                width=width, height=height, distortion_model=calibration.distortion_model,
                d=list(calibration.d), k=calibration.k, r=calibration.r, p=calibration.p)
        return self._info

    def _set_camera_info(self, request: SetCameraInfo.Request,
                         response: SetCameraInfo.Response) -> SetCameraInfo.Response:
        info = request.camera_info
        try:
            calibration = checked(info.width, info.height, self.camera_name,
                                  info.distortion_model, info.d, info.k, info.r, info.p)
            path = url_path(self.camera_info_url, self.camera_name)
            save_calibration(calibration, path)
        except (CalibrationError, OSError) as exc:
            response.success, response.status_message = False, f'not saved: {exc}'
            self.get_logger().error(f'set_camera_info: {response.status_message}')
            return response
        self._calibration, self._info = calibration, None
        response.success, response.status_message = True, f'saved to {path}'
        self.get_logger().info(f'new calibration {info.width}x{info.height} saved to {path}')
        return response

    def _open(self) -> None:
        try:
            self._source = open_source(self.source_spec, self.width, self.height, self.fps,
                                       self.loop, self.get_logger().warning, self.bag_topic,
                                       self.bag_realtime)
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
        stamp = self._source.stamp  # a recording's own stamps are kept
        header = Header(stamp=Time(sec=stamp[0], nanosec=stamp[1]) if stamp else
                        self.get_clock().now().to_msg(), frame_id=self.frame_id)
        self.publisher.publish(ndarray_to_image(frame, 'bgr8', header))
        if self.compressed_publisher.get_subscription_count():
            data, fmt = encode_compressed(frame, self.compression['format'],
                                          self.compression['quality'],
                                          self.compression['png_level'])
            self.compressed_publisher.publish(CompressedImage(
                header=header, format=fmt, data=array.array('B', data)))
        info = self._camera_info(frame.shape[1], frame.shape[0])
        info.header = header
        self.info_publisher.publish(info)
        self.frames_published += 1

    def destroy_node(self) -> None:
        if self._source is not None:
            self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args)


if __name__ == '__main__':
    main()
