"""What fer_node does, shared by the plain node (fer_node.py) and the managed one
(fer_lifecycle_node.py): parameters, model loading, the image subscription feeding a
newest-frame worker, outputs stamped with the input header, and /diagnostics."""
from __future__ import annotations

import collections
import threading
import time
from typing import NamedTuple

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from fer_msgs.msg import FaceEmotionArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from fer_ros.common.untrusted import printable
from fer_ros.nodes.fer_params import CHECKS, NOW, PIPELINE, START_ONLY, declare_fer_parameters
from fer_ros.nodes.hri import HriFaces, HriUnavailable
from fer_ros.nodes.input_stats import InputStats
from fer_ros.nodes.latest import LatestWorker
from fer_ros.nodes.markers import face_markers
from fer_ros.nodes.messages import stamp_seconds, to_msg
from fer_ros.nodes.params import image_qos
from fer_ros.perception import rep155
from fer_ros.perception.annotate import annotate
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.compressed import decode_compressed
from fer_ros.perception.face_state import FaceStates
from fer_ros.perception.head_pose import camera_matrix, intrinsics_problem, scaled_camera
from fer_ros.perception.image_conversion import (ImageConversionError, image_to_bgr8,
                                                 ndarray_to_image)
from fer_ros.perception.landmarks import FaceLandmarker
from fer_ros.perception.pipeline import FerPipeline, Stopwatch
from fer_ros.perception.tiling import make_detector
from fer_ros.perception.tracking import FaceTracker

LOSS_WARN = 0.1  # WARN on /diagnostics above this fraction of input frames lost (last 5 s)
STALLED = 5.0    # seconds on one frame after which /diagnostics says ERROR


class FrameTiming(NamedTuple):
    done: float                  # time.perf_counter() when the frame was published
    faces: int
    stages_ms: dict[str, float]  # convert, detect, classify, publish, annotate


class FerNodeBase(Node):
    """Steps a node takes: declare_fer_parameters, load, open_outputs, start_input (and back:
    stop_input, unload). The plain node takes them all at start; the managed one per
    lifecycle transition."""

    def declare_fer_parameters(self) -> None:
        declare_fer_parameters(self)
        self._worker_threads = 0  # the cpu_threads the worker thread last applied
        self.tracker = FaceTracker(confirm_frames=self.track_confirm_frames,
                                   max_missed=self.track_max_missed, smoothing=self.smoothing)
        self.pipeline: FerPipeline | None = None
        self.load_error: str | None = 'not configured'
        self.loaded = False  # models wanted: parameter changes (re)build the pipeline
        self._load_lock = threading.Lock()  # held by the worker while a frame is processed
        self._retired: list = []  # replaced detectors, closed by the worker after its frame
        self.timings: collections.deque[FrameTiming] = collections.deque(maxlen=2000)
        self.input = InputStats()
        self._worker: LatestWorker | None = None
        self._subscription = self._camera_info = None
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def load(self) -> bool:
        """Build the pipeline from the parameters; on failure log why and return False."""
        self.loaded = True
        try:
            self.pipeline = self._build({k: getattr(self, k) for k in PIPELINE})
            self.load_error = None
            return True
        except Exception as exc:  # whatever a model file does, the node stays up
            self.load_error = printable(exc, 300)
            self.get_logger().error(f'cannot start the FER pipeline: {self.load_error}')
            return False

    def unload(self) -> None:
        self.loaded = False
        pipeline, self.pipeline, self.load_error = self.pipeline, None, 'not configured'
        if pipeline is not None:
            self._retire(pipeline.detector)

    def _retire(self, detector) -> None:
        """Close a detector no longer in the pipeline: at once unless a frame is being
        processed, else once it is done, so that a hung frame blocks no caller."""
        if self._load_lock.acquire(timeout=0.5):
            try:
                detector.close()
            finally:
                self._load_lock.release()
        else:
            self._retired.append(detector)

    def open_outputs(self, create_publisher) -> None:
        """Publishers (made by ``create_publisher``: plain or lifecycle) and diagnostics."""
        self.emotions_pub = create_publisher(FaceEmotionArray, 'emotions', 10)
        self.annotated_pub = create_publisher(
            Image, 'image_annotated', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.markers_pub = create_publisher(MarkerArray, 'markers', 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics)
        self.hri_out = None
        if self.hri:
            try:
                self.hri_out = HriFaces(self, self.hri_id_prefix or rep155.run_prefix(),
                                        (self.hri_crop_size, self.hri_crop_size))
            except HriUnavailable as exc:
                self.get_logger().error(f'{exc}; the REP-155 outputs are off')

    def close_outputs(self, destroy_publisher) -> None:
        if self.hri_out is not None:
            self.hri_out.close()
            self.hri_out = None
        self.destroy_timer(self._diagnostics_timer)
        self.destroy_publisher(self.diagnostics_pub)
        for publisher in (self.emotions_pub, self.annotated_pub, self.markers_pub):
            destroy_publisher(publisher)

    def start_input(self) -> None:
        self._worker = LatestWorker(self._process, self.rate, name='fer_node-worker')
        self._worker_threads = 0  # a new thread: cpu_threads is applied again
        self._last_frame_in = time.monotonic()
        compressed = self.image_transport == 'compressed'
        image = self.resolve_topic_name('image')
        topic = image + ('/compressed' if compressed else '')
        self._subscription = self.create_subscription(
            CompressedImage if compressed else Image, topic, self._on_image,
            image_qos(self.image_reliability, self.image_depth),
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible))
        # beside the image topic, as image_transport's camera subscribers look for it
        self._info_subscription = self.create_subscription(
            CameraInfo, image.rsplit('/', 1)[0] + '/camera_info', self._on_camera_info,
            image_qos('best_effort', 1))
        where = f'listening on {topic} ({self.image_reliability}, depth {self.image_depth})'

        if self.pipeline is None:
            self.get_logger().warning(f'{where}, but no model is loaded: frames are not '
                                      'processed until model/device are fixed')
        else:
            self.get_logger().info(
                f'model {printable(self.model)} '
                f"({', '.join(self.pipeline.classifier.class_names)}) on "
                f'{self.pipeline.classifier.device} with {self.pipeline.classifier.backend}, '
                f'detector '
                f'{printable(self.detector_model)}; {where}')

    def stop_input(self) -> None:
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self.destroy_subscription(self._info_subscription)
            self._subscription = self._camera_info = None
        if self._worker is not None:
            if not self._worker.stop(STALLED):
                self.get_logger().warning(f'a frame has been processing for over {STALLED:g} s '
                                          '(the model or detector hangs): left behind')
            self._worker = None

    def _build(self, config: dict, old: FerPipeline | None = None) -> FerPipeline:
        """A pipeline for `config` (the PIPELINE values), reusing the parts of `old` whose
        values are those in effect; the detector is built first, as it is the cheapest to
        refuse. Nothing built here stays open when a part fails."""
        def changed(*names: str) -> bool:
            return old is None or any(config[n] != getattr(self, n) for n in names)

        detector = make_detector(config['detector_model'], config['detection_threshold'],
                                 config['max_faces'], config['detection_tile']) \
            if changed('detector_model', 'detection_threshold', 'max_faces', 'detection_tile') \
            else old.detector
        try:
            classifier = old.classifier if not changed('model', 'device', 'backend') else \
                ExpressionClassifier(config['model'], config['device'], self.tta_flip,
                                     config['backend'], self.align_faces)
            states = old.states if not changed('landmarks') else \
                FaceStates(FaceLandmarker(), self.camera_fov, self.looking_threshold) \
                if config['landmarks'] else None
        except Exception:
            if old is None or detector is not old.detector:
                detector.close()
            raise
        if classifier.device_warning and (old is None or classifier is not old.classifier):
            self.get_logger().warning(classifier.device_warning)
        return FerPipeline(detector, classifier, self.tracker, states)

    def _apply_settings(self) -> None:
        """Hand the parameters that apply at once to the parts that use them."""
        tracker = self.tracker
        tracker.smoothing, tracker.confirm_frames, tracker.max_missed = (
            self.smoothing, self.track_confirm_frames, self.track_max_missed)
        if self._worker is not None:
            self._worker.max_rate = self.rate
        if self.pipeline is not None:
            self.pipeline.classifier.tta_flip = self.tta_flip
            self.pipeline.classifier.align = self.align_faces
            if self.pipeline.states is not None:
                self.pipeline.states.horizontal_fov = self.camera_fov
                self.pipeline.states.looking_threshold = self.looking_threshold

    def _on_set_parameters(self, params) -> SetParametersResult:
        new = {p.name: p.value for p in params}
        if start_only := [n for n in START_ONLY if n in new]:
            return SetParametersResult(successful=False,
                                       reason=f'{", ".join(start_only)} apply at start only')
        for name, check in CHECKS.items():
            if name in new and (reason := check(new[name])):
                return SetParametersResult(successful=False, reason=f'{name}: {reason}')
        if self.loaded and any(new[k] != getattr(self, k) for k in PIPELINE if k in new):
            config = {k: new.get(k, getattr(self, k)) for k in PIPELINE}
            try:
                pipeline = self._build(config, self.pipeline)
            except Exception as exc:  # no value or file may take the node down
                return SetParametersResult(successful=False, reason=printable(exc, 300))
            old, self.pipeline, self.load_error = self.pipeline, pipeline, None
            for name, value in config.items():
                setattr(self, name, value)
            if old is not None and old.detector is not pipeline.detector:
                self._retire(old.detector)
            if old is None or old.classifier is not pipeline.classifier:
                self.get_logger().info(
                    f'now using model {printable(self.model)} on {pipeline.classifier.device} '
                    f'with {pipeline.classifier.backend}')
        for name in NOW:
            if name in new:
                setattr(self, name, new[name])
        for name in PIPELINE:
            if name in new and not self.loaded:  # applied when the models are loaded
                setattr(self, name, new[name])
        self._apply_settings()
        return SetParametersResult(successful=True)

    def diagnostics(self) -> DiagnosticStatus:
        """Health of the node: model state, input freshness and loss, throughput, latency."""
        now = time.perf_counter()
        recent = [t for t in list(self.timings) if now - t.done < 5.0]  # snapshot: worker appends
        totals = sorted(sum(t.stages_ms.values()) for t in recent)
        input_hz, loss = self.input.window(time.monotonic())
        device = str(self.pipeline.classifier.device) if self.pipeline else self.device
        worker = self._worker
        since = worker.busy_since if worker else None
        busy = time.monotonic() - since if since is not None else 0.0
        backend = self.pipeline.classifier.backend if self.pipeline else self.backend
        values = {'model': printable(self.model), 'device': device, 'backend': backend,
                  'frames received': self.input.received,
                  'frames lost before arrival': self.input.lost,
                  'loss counted from': ('publisher sequence numbers' if self.input.counted_exactly
                                        else 'header stamps (estimate)'),
                  'input rate (Hz, last 5 s)': f'{input_hz:.1f}',
                  'input loss (%, last 5 s)': f'{100 * loss:.1f}',
                  'frames processed': worker.processed if worker else 0,
                  'frames skipped (newer frame arrived)': worker.dropped if worker else 0,
                  'processing rate (Hz, last 5 s)': f'{len(recent) / 5.0:.1f}',
                  'latency median (ms, last 5 s)':
                      f'{totals[len(totals) // 2]:.1f}' if totals else 'n/a'}
        if self.pipeline is None:
            level, message = DiagnosticStatus.ERROR, f'no model loaded: {self.load_error}'
        elif self._subscription is None:
            level, message = DiagnosticStatus.OK, 'inactive: configured, not subscribed'
        elif busy > STALLED:
            level, message = DiagnosticStatus.ERROR, (
                f'one frame has been processing for {busy:.0f} s: the model or detector '
                'hangs; no output meanwhile')
        elif time.monotonic() - self._last_frame_in > 5.0:
            level, message = DiagnosticStatus.WARN, 'no image received for 5 s'
        elif loss > LOSS_WARN:
            level, message = DiagnosticStatus.WARN, (
                f'{100 * loss:.0f} % of input frames lost before arrival (last 5 s); see '
                "fer_ros' docs/transport.md")
        else:
            level, message = DiagnosticStatus.OK, 'processing'
        return DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: facial expression recognition',
            message=message, hardware_id=device,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray(status=[self.diagnostics()])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def _on_image(self, msg: Image | CompressedImage, info: MessageInfo) -> None:
        self._last_frame_in = time.monotonic()
        gid = info.get('publisher_gid')
        self.input.add(stamp_seconds(msg.header), self._last_frame_in,
                       gid['data'] if gid else None, info.get('publication_sequence_number'))
        self._worker.submit(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the newest plausible calibration (an uncalibrated camera sends K = 0)."""
        k = np.array(msg.k, np.float64).reshape(3, 3)
        if not k.any():
            return
        if problem := intrinsics_problem(k, msg.width, msg.height):
            self.get_logger().warning(
                f'camera_info refused ({problem}): the head pose keeps '
                + ('the last accepted calibration' if self._camera_info else 'camera_fov'),
                throttle_duration_sec=10.0)
            return
        self._camera_info = (k, (msg.width, msg.height))

    def _camera(self, width: int, height: int) -> np.ndarray | None:
        """The calibrated intrinsics for a frame of this size, if a camera_info fits it."""
        info = self._camera_info
        return scaled_camera(info[0], info[1], (width, height)) if info else None

    def _on_incompatible(self, event) -> None:
        self.get_logger().warning(
            f'an image publisher offers QoS this subscription cannot accept (policy '
            f'{event.last_policy_kind.name}); its frames are not received. A best-effort camera '
            'needs image_reliability best_effort', throttle_duration_sec=10.0)

    def _process(self, msg: Image) -> None:
        if self._worker_threads != self.cpu_threads:  # per-thread setting: apply it here
            torch.set_num_threads(self.cpu_threads)
            self._worker_threads = self.cpu_threads
        try:
            self.process_frame(msg)
        except ImageConversionError as exc:
            self.get_logger().warning(f'skipping image: {exc}', throttle_duration_sec=5.0)
        except Exception as exc:  # keep serving frames whatever one frame does
            if self.context.ok():  # at shutdown, publishing fails quietly
                self.get_logger().error(
                    f'frame failed: {type(exc).__name__}: {printable(exc, 300)}',
                    throttle_duration_sec=5.0)

    def process_frame(self, msg: Image | CompressedImage) -> None:
        """Process one image now, in the caller's thread (the worker calls this).
        Raises ImageConversionError for an image it cannot read."""
        watch = Stopwatch()
        image = (decode_compressed(msg.data, msg.format, self.compressed_max_pixels)
                 if isinstance(msg, CompressedImage) else image_to_bgr8(msg))
        watch.lap('convert')
        with self._load_lock:  # detectors replaced meanwhile are closed once it is released
            pipeline = self.pipeline
            try:
                if pipeline is None:
                    self.get_logger().error(f'no expression model loaded: {self.load_error}',
                                            throttle_duration_sec=10.0)
                    return
                result = pipeline.process(image, watch, stamp_seconds(msg.header),
                                          self._camera(image.shape[1], image.shape[0]))
            finally:
                while self._retired:
                    self._retired.pop().close()
        if result.problems:
            self.get_logger().warning(f'{printable(result.problems[0], 300)} (that face keeps '
                                      'its expression)', throttle_duration_sec=5.0)
        out = to_msg(result, msg.header, image.shape[1], image.shape[0],
                     pipeline.classifier.model.name)
        self.emotions_pub.publish(out)
        if (hri := self.hri_out) is not None:
            hri.publish(result, msg.header, image, {t.id for t in pipeline.tracker.tracks})
        if self.markers_pub.get_subscription_count() > 0:
            height, width = image.shape[:2]
            camera = self._camera(width, height)
            self.markers_pub.publish(face_markers(result, msg.header, camera_matrix(
                width, height, self.camera_fov) if camera is None else camera))
        watch.lap('publish')
        if self.publish_annotated and self.annotated_pub.get_subscription_count() > 0:
            annotated = annotate(image, result, self.draw_landmarks, self.draw_head_pose,
                                 self.draw_blinks)
            watch.lap('annotate')
            self.annotated_pub.publish(ndarray_to_image(annotated, 'bgr8', msg.header))
            watch.lap('publish')
        self.timings.append(FrameTiming(time.perf_counter(), len(result.faces), watch.timings_ms))

    def destroy_node(self) -> None:
        self.stop_input()
        self.unload()
        super().destroy_node()
