"""fer_node's parameters: name, default, description, range, check, and when a change applies."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node

from fer_ros.models import DEFAULT_MODEL
from fer_ros.models.onnx_backend import check_backend
from fer_ros.nodes.params import (RELIABILITY, Validator, accept_integers_for_doubles, declare,
                                  one_of)
from fer_ros.perception.classifier import check_device_name
from fer_ros.perception.compressed import COMPRESSED_MAX_PIXELS
from fer_ros.perception.image_conversion import MAX_PIXELS
from fer_ros.perception.landmarks import check_landmarks
from fer_ros.perception.tiling import check_tile


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        os.cpu_count() or 1


@dataclass(frozen=True)
class FerParam:
    name: str
    default: Any
    description: str
    bounds: tuple[float, float] | None = None
    validate: Validator | None = None
    applies: str = 'now'  # now | pipeline (a change rebuilds the models) | start (refused later)


FER_PARAMETERS = (
    FerParam('model', DEFAULT_MODEL, "Expression model: registry name, checkpoint (.pt) path, "
             "or an ensemble of them written 'model_a+model_b'", applies='pipeline'),
    FerParam('device', 'auto', 'Compute device: auto (GPU if present), cpu, cuda or cuda:N',
             validate=check_device_name, applies='pipeline'),
    FerParam('backend', 'auto', 'Expression model runtime: auto (int8 ONNX on the CPU where the '
             "model's card shows it as accurate as float, else torch), torch (any device), "
             'onnxruntime or onnxruntime_int8 (CPU; the ONNX files fer_export_onnx writes '
             'beside each checkpoint)', validate=check_backend, applies='pipeline'),
    FerParam('detector_model', 'full_range', 'MediaPipe face detector: full_range (far and '
             'group shots), short_range (faster, within ~2 m) or a .tflite path',
             applies='pipeline'),
    FerParam('rate', 0.0, 'Maximum processing rate in Hz (0 = every frame)', (0.0, 1000.0)),
    FerParam('detection_threshold', 0.3, 'Minimum face detection confidence', (0.0, 1.0),
             applies='pipeline'),
    FerParam('max_faces', 0, 'Classify at most this many faces per frame (0 = all)', (0, 100),
             applies='pipeline'),
    FerParam('detection_tile', 0, 'Also detect in overlapping squares of this side (px) on '
             'frames whose longer side is at least 1.5 of them, for small faces in wide frames '
             '(640: faces down to ~40 px in 1080p and 4K; ~7x the detection time at 1080p); '
             '0 = whole frame only, else at least 384', (0, 1920), check_tile,
             applies='pipeline'),
    FerParam('align_faces', True, "Roll each face so its eyes are level (the detector's eye "
             'keypoints) before classifying: tilted heads and cameras'),
    FerParam('cpu_threads', 1, "CPU threads of the expression model (in the node's worker "
             'thread, one thread was measured fastest for these small models); at most the '
             'CPUs this process may run on: more only stalls the node (256 on 2 CPUs: 0.3 '
             'results/s instead of 15)', (1, usable_cpus())),
    FerParam('tta_flip', False, 'Also classify each mirrored face and average (about twice the '
             'classify time, slightly more accurate)'),
    FerParam('smoothing', 0.0, "Temporal smoothing of each tracked face's probabilities: weight "
             'of its previous value (0 = raw per-frame output)', (0.0, 0.95)),
    FerParam('track_confirm_frames', 3, 'Frames a face must be detected in before its track '
             'is confirmed (FaceEmotion.track_confirmed): at 30 Hz, 3 is 0.1 s and rejects '
             'one-frame false boxes', (1, 100)),
    FerParam('track_max_missed', 15, 'Frames a confirmed track is kept unseen, its box moving '
             'on at its last velocity, so its id survives occlusions and crossings (15: 0.5 s '
             'at 30 Hz)', (0, 300)),
    FerParam('landmarks', False, 'Run the 468-point face mesh on every face (about 2 ms per '
             'face on one core) for landmarks, eye openness, blinks, head pose and '
             'looking_at_camera; needs ai-edge-litert', validate=check_landmarks,
             applies='pipeline'),
    FerParam('camera_fov', 60.0, 'Horizontal field of view (degrees) for the head pose while '
             'no calibrated camera_info arrives beside the image topic', (10.0, 170.0)),
    FerParam('looking_threshold', 25.0, 'A face is looking_at_camera while it points at the '
             'camera within this many degrees', (0.0, 90.0)),
    FerParam('publish_annotated', True, 'Publish image_annotated with boxes and labels'),
    FerParam('draw_landmarks', True, 'Draw the face mesh on image_annotated'),
    FerParam('draw_head_pose', True, 'Draw head-pose axes on image_annotated'),
    FerParam('draw_blinks', True, 'Write blink counts on image_annotated'),
    FerParam('image_reliability', 'best_effort', 'QoS reliability of the image subscription (at '
             'start): best_effort accepts every publisher; reliable only reliable ones, and has '
             'lost fragments resent', validate=one_of(*RELIABILITY), applies='start'),
    FerParam('image_depth', 5, 'QoS history depth of the image subscription (at start); only '
             'the newest frame is processed whatever the depth', (1, 100), applies='start'),
    FerParam('image_transport', 'raw', 'Input (at start): raw (sensor_msgs/Image on image) or '
             'compressed (sensor_msgs/CompressedImage jpeg/png on image/compressed, as '
             "image_transport's compressed plugin publishes)",
             validate=one_of('raw', 'compressed'), applies='start'),
    FerParam('hri', False, 'Also publish the faces as REP-155 (ROS4HRI) has them (at start): '
             '/humans/faces/tracked and, per confirmed track, /humans/faces/<id>/roi, cropped, '
             'aligned, landmarks and expression, and face_<id>/gaze_<id> on /tf; needs '
             'hri_msgs and tf2_msgs', applies='start'),
    FerParam('hri_id_prefix', '', "Prefix of this node's REP-155 face ids (at start), e.g. "
             "'left_' for a second camera; empty: four random letters per run, so that no two "
             'nodes or runs share an id', applies='start'),
    FerParam('hri_crop_size', 128, 'Side (px) of the REP-155 cropped and aligned face images '
             '(at start; REP-155 /humans/faces/width and height)', (16, 1024), applies='start'),
    FerParam('compressed_max_pixels', COMPRESSED_MAX_PIXELS, 'With image_transport compressed: '
             'refuse (and log) a frame whose header claims more pixels than this, before '
             'decoding it; 16-bit PNGs count twice (default: DCI 4K, 4096x2160). A 1 MB JPEG or '
             'PNG can claim 64 MP, which costs about 1 GB and 3 s to decode',
             (1, MAX_PIXELS)),
)
START_ONLY = tuple(p.name for p in FER_PARAMETERS if p.applies == 'start')
PIPELINE = tuple(p.name for p in FER_PARAMETERS if p.applies == 'pipeline')
NOW = tuple(p.name for p in FER_PARAMETERS if p.applies == 'now')
# Run-time values checked before anything is loaded; each check gives the reason or None.
CHECKS = {p.name: p.validate for p in FER_PARAMETERS if p.validate and p.applies != 'start'}


def declare_fer_parameters(node: Node) -> None:
    """Declare every parameter and set it as an attribute of the node, by name."""
    accept_integers_for_doubles(node)
    for p in FER_PARAMETERS:
        setattr(node, p.name, declare(node, p.name, p.default, p.description, bounds=p.bounds,
                                      validate=p.validate))
