"""fer_record_node: fer_record on a live image topic, as a node (the launch file's record:=true).

Subscribes to `image` (remap it), runs the recorder's own pipeline on the newest frame and
appends the tracked faces to the `out` folder, as fer_record does for files; frames are
stamped with their header stamps.
"""
from __future__ import annotations

from pathlib import Path

from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_ros.common.untrusted import printable
from fer_ros.learning.record import FaceRecorder, RecordError
from fer_ros.models import DEFAULT_MODEL
from fer_ros.nodes.latest import LatestWorker
from fer_ros.nodes.messages import stamp_seconds
from fer_ros.nodes.params import declare, image_qos, refuse_run_time_changes
from fer_ros.nodes.spin import run_node
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.image_conversion import ImageConversionError, image_to_bgr8
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.tiling import make_detector


class RecordNode(Node):
    def __init__(self, **kwargs):
        super().__init__('fer_record', **kwargs)
        out = declare(self, 'out', 'fer_faces', 'Dataset folder the faces are appended to '
                      '(relative: to the working directory)')
        model = declare(self, 'model', DEFAULT_MODEL, 'Expression model whose crops and '
                        'guesses are saved')
        detector = declare(self, 'detector_model', 'full_range', 'MediaPipe face detector')
        min_change = declare(self, 'min_change', 0.05, 'Skip a crop this close to its '
                             "track's last saved one (mean absolute difference, 0..1)",
                             bounds=(0.0, 1.0))
        rate = declare(self, 'rate', 5.0, 'Maximum frames recorded per second (0 = every '
                       'frame)', bounds=(0.0, 1000.0))
        refuse_run_time_changes(self)
        self._detector = make_detector(detector, 0.3, 0, 0)
        pipeline = FerPipeline(self._detector, ExpressionClassifier(model, 'cpu'))
        self._frames, self._worker = 0, None
        try:
            self.recorder = FaceRecorder(Path(out).expanduser(), pipeline,
                                         self.resolve_topic_name('image'), min_change)
        except RecordError as exc:
            self.recorder = None
            self.get_logger().error(f'{printable(exc, 300)}; not recording: set out to a '
                                    'writable folder and start again')
            return
        self._worker = LatestWorker(self._record, rate, name='fer_record-worker')
        self.create_subscription(Image, 'image', self._worker.submit,
                                 image_qos('best_effort', 1))
        self.get_logger().info(f"recording faces of {self.resolve_topic_name('image')} "
                               f'into {printable(out)}')

    def _record(self, msg: Image) -> None:
        try:
            self.recorder.add(image_to_bgr8(msg), self._frames, stamp_seconds(msg.header))
            self._frames += 1
        except ImageConversionError as exc:
            self.get_logger().warning(f'skipping image: {exc}', throttle_duration_sec=5.0)
        except RecordError as exc:  # a full disk: retried on every frame
            self.get_logger().error(f'{printable(exc, 300)}; frames are dropped until it can '
                                    'be written', throttle_duration_sec=10.0)
        except Exception as exc:  # a frame must not end the recording
            self.get_logger().error(f'frame failed: {printable(exc, 300)}',
                                    throttle_duration_sec=5.0)

    def destroy_node(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        self._detector.close()
        if self.recorder is not None:
            self.recorder.close()
            # after a signal the context is gone and with it /rosout: the summary goes to stdout
            print(f'fer_record: {self.recorder.stats.summary()}', flush=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(RecordNode, args)


if __name__ == '__main__':
    main()
