"""fer_hri_node: fer_ros's expression models as the expression recognizer of an existing
REP-155 (ROS4HRI) pipeline, such as hri_face_detect's.

Subscribes to /humans/faces/tracked and, for each listed face, /humans/faces/<id>/aligned (or
cropped: `input`); classifies the faces of one stamp in one batch and publishes
/humans/faces/<id>/expression (hri_msgs/Expression) with the crop's header. No detector runs
here. A face's subscription and publisher go when it leaves the tracked list.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from fer_ros.common.untrusted import printable
from fer_ros.models import DEFAULT_MODEL
from fer_ros.models.onnx_backend import check_backend
from fer_ros.nodes.hri import HRI_REQUIREMENT
from fer_ros.nodes.params import (accept_integers_for_doubles, declare, image_qos, one_of,
                                  refuse_run_time_changes)
from fer_ros.nodes.spin import run_node
from fer_ros.perception import rep155
from fer_ros.perception.affect import valence_arousal
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.detection import DETECTOR_FRAMING
from fer_ros.perception.image_conversion import ImageConversionError, image_to_bgr8
from fer_ros.perception.stamp_batches import StampBatches

MAX_CROP_PIXELS = 2048 * 2048  # a face crop larger than this is refused


class _Face:
    def __init__(self, subscription, publisher):
        self.subscription, self.publisher = subscription, publisher
        self.probabilities: np.ndarray | None = None  # smoothed, when smoothing > 0


class FerHriNode(Node):
    def __init__(self, **kwargs):
        super().__init__('fer_hri', **kwargs)
        accept_integers_for_doubles(self)
        model = declare(self, 'model', DEFAULT_MODEL, 'Expression model (registry name or '
                        'checkpoint path)')
        backend = declare(self, 'backend', 'auto', 'Model runtime: auto, torch, onnxruntime '
                          'or onnxruntime_int8', validate=check_backend)
        device = declare(self, 'device', 'cpu', 'Compute device of the torch backend')
        self.input = declare(self, 'input', 'aligned', 'Which REP-155 face image is classified',
                             validate=one_of('aligned', 'cropped'))
        framing = declare(self, 'detector_framing', 'short_range', 'The MediaPipe detector '
                          "whose boxes the crops are (hri_face_detect: short_range; fer_node's "
                          "hri: its detector_model), or 'none' for other detectors",
                          validate=one_of(*DETECTOR_FRAMING, 'none'))
        self.max_faces = declare(self, 'max_faces', 32, 'Faces followed at once (more ids in a '
                                 'tracked list are ignored)', bounds=(1, 256))
        self.smoothing = declare(self, 'smoothing', 0.0, "Weight of a face's previous "
                                 'probabilities (0: none)', bounds=(0.0, 0.99))
        max_wait = declare(self, 'max_wait', 0.2, 'Seconds a frame waits for the crops of all '
                           'its faces before those that came are classified', bounds=(0.0, 5.0))
        refuse_run_time_changes(self)
        self.framing = DETECTOR_FRAMING.get(framing)
        self.batches: StampBatches[Image] = StampBatches(max_wait)
        self._faces: dict[str, _Face] = {}
        self.classifier = None
        try:
            from hri_msgs.msg import Expression, IdsList
        except ImportError as exc:
            self.get_logger().error(f'fer_hri_node needs {HRI_REQUIREMENT} ({exc}); idle')
            return
        self._expression_type = Expression
        try:
            self.classifier = ExpressionClassifier(model, device, backend=backend, align=False)
        except Exception as exc:  # a bad model or device: say why, stay up
            self.get_logger().error(f'cannot load the expression model: {printable(exc, 300)}; '
                                    'idle')
            return
        self.create_subscription(IdsList, '/humans/faces/tracked', self._on_tracked, 10)
        self.create_timer(max(max_wait, 0.01) / 2.0, self._flush)
        self.get_logger().info(
            f'recognizing the expressions of /humans/faces/<id>/{self.input} with '
            f'{printable(model)} ({self.classifier.backend} on {self.classifier.device})')

    def _on_tracked(self, msg) -> None:
        ids = [i for i in dict.fromkeys(msg.ids) if i][:self.max_faces]
        if len(msg.ids) > len(ids):
            self.get_logger().warning(f'{len(msg.ids)} face ids in a tracked list: following '
                                      f'the first {len(ids)} (max_faces)',
                                      throttle_duration_sec=10.0)
        for gone in self._faces.keys() - set(ids):
            face = self._faces.pop(gone)
            self.destroy_subscription(face.subscription)
            self.destroy_publisher(face.publisher)
        for face_id in ids:
            if face_id not in self._faces:
                self._follow(face_id)
        ids = [i for i in ids if i in self._faces]
        self._classify(self.batches.expect(_stamp(msg.header), ids, time.monotonic()))

    def _follow(self, face_id: str) -> None:
        base = f'/humans/faces/{face_id}/'
        try:
            publisher = self.create_publisher(self._expression_type, base + 'expression', 10)
        except Exception as exc:  # an id that is no topic name
            self.get_logger().warning(f'face id {printable(face_id, 80)} refused: '
                                      f'{printable(exc, 200)}', throttle_duration_sec=10.0)
            return
        subscription = self.create_subscription(
            Image, base + self.input, lambda msg: self._on_crop(face_id, msg),
            image_qos('best_effort', 2))
        self._faces[face_id] = _Face(subscription, publisher)

    def _on_crop(self, face_id: str, msg: Image) -> None:
        if face_id in self._faces:
            self._classify(self.batches.add(_stamp(msg.header), face_id, msg, time.monotonic()))

    def _flush(self) -> None:
        self._classify(self.batches.flush(time.monotonic()))

    def _classify(self, batches) -> None:
        for _, crops in batches:
            faces, images = [], []
            for face_id, msg in crops.items():
                if face_id not in self._faces:
                    continue
                try:
                    if msg.width * msg.height > MAX_CROP_PIXELS:
                        raise ImageConversionError(f'{msg.width}x{msg.height} is over '
                                                   f'{MAX_CROP_PIXELS} pixels for a face')
                    images.append(image_to_bgr8(msg))
                    faces.append((face_id, msg.header))
                except ImageConversionError as exc:
                    self.get_logger().warning(f'face {printable(face_id, 80)}: skipping its '
                                              f'image: {exc}', throttle_duration_sec=5.0)
            if not images:
                continue
            try:
                probs = self.classifier.predict_crops(images, self.framing)
            except Exception as exc:  # one batch costs only its expressions
                self.get_logger().error(f'classification failed: {printable(exc, 300)}',
                                        throttle_duration_sec=5.0)
                continue
            self._publish(faces, probs)

    def _publish(self, faces, probs: np.ndarray) -> None:
        names = self.classifier.class_names
        for (face_id, header), p in zip(faces, probs):
            face = self._faces[face_id]
            if self.smoothing > 0 and face.probabilities is not None:
                p = self.smoothing * face.probabilities + (1.0 - self.smoothing) * p
            face.probabilities = p
            label = int(np.argmax(p))
            valence, arousal = valence_arousal(p[None], names)[0]
            face.publisher.publish(self._expression_type(
                header=header, expression=rep155.EXPRESSION.get(names[label], names[label]),
                valence=float(valence), arousal=float(arousal), confidence=float(p[label])))


def _stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def main(args: list[str] | None = None) -> None:
    run_node(FerHriNode, args)


if __name__ == '__main__':
    main()
