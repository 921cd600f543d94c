"""Face detection with the MediaPipe Tasks face detector (BlazeFace models)."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import cv2
import numpy as np

from fer_ros.common.assets import asset_path
from fer_ros.common.untrusted import printable, quoted, read_regular_file, run_probe
from fer_ros.perception.native_log import native_stderr_silenced
from fer_ros.perception.preprocess import Framing

DETECTOR_MODELS = {
    'full_range': 'face_detection_full_range_sparse.tflite',  # faces up to ~5 m, group photos
    'short_range': 'face_detection_short_range.tflite',       # faces within ~2 m, faster
}
# Where the FER2013/FER+ frame (what the shipped models learnt from) lies around each
# detector's box: fer_evaluate --framing on FER2013 PublicTest (found 3095 and 3537 of 3589).
DETECTOR_FRAMING = {
    'full_range': Framing(scale=1.143, shift=-0.029),
    'short_range': Framing(scale=1.171, shift=-0.077),
}


@dataclass(frozen=True)
class Face:
    """A detected face: box (x, y, width, height) in pixels, clipped to the image."""

    x: int
    y: int
    width: int
    height: int
    score: float
    keypoints: tuple[tuple[float, float], ...] = ()  # eyes, nose, mouth, ears; pixels

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height


def _intersection(a: Face, b: Face) -> int:
    dx = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    dy = min(a.y + a.height, b.y + b.height) - max(a.y, b.y)
    return max(dx, 0) * max(dy, 0)


def merge_faces(faces: list[Face], iou: float = 0.3, containment: float = 0.6) -> list[Face]:
    """Greedy suppression, highest score first: a face is dropped when its IoU with a kept face
    exceeds `iou`, or when over `containment` of the smaller of the two lies in the other."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.score, reverse=True):
        area = face.width * face.height
        for other in kept:
            inter = _intersection(face, other)
            other_area = other.width * other.height
            # Two faces never nest: a box within another, whichever is bigger, is the same face.
            if (inter > iou * (area + other_area - inter)
                    or inter > containment * min(area, other_area)):
                break
        else:
            kept.append(face)
    return kept


# Frames whose longer side exceeds this are downscaled (area averaging) before detection and
# the boxes scaled back. BlazeFace sees 128-192 px, so nothing is lost; and the OpenCV inside
# MediaPipe aborts the process (no exception) on any side >= 32767 px.
DETECT_MAX_SIDE = 1920

MAX_DETECTOR_BYTES = 64 << 20  # the BlazeFace models are 0.2 and 0.7 MB
MAX_DETECTOR_MB = 256          # memory MediaPipe may take for a model (BlazeFace: about 90 MB)
PROBE_ADDRESS_SPACE_MB = 2048  # the probe's address space beyond its start (BlazeFace: 460)
PROBE_SECONDS = 30  # CPU seconds; a blocked probe is given up after twice that


class DetectorModelError(FileNotFoundError, ValueError):
    """A detector model that is no known name nor a readable .tflite file: one type and one
    message whatever the reason, so that errors tell nothing about arbitrary paths."""


def _read_tflite(model: str) -> bytes:
    try:
        content = read_regular_file(model, MAX_DETECTOR_BYTES)
    except (OSError, ValueError):
        content = b''
    if content[4:8] != b'TFL3':  # the FlatBuffer file identifier of TFLite models
        raise DetectorModelError(
            f'face detector model {quoted(str(model))} is neither '
            f"{' nor '.join(DETECTOR_MODELS)} nor a readable .tflite file (a TFLite model of "
            f'at most {MAX_DETECTOR_BYTES >> 20} MB)')
    return content


# Run by a child process (run_probe): MediaPipe loads the model from stdin and detects on a
# blank image; the last line printed is the peak memory growth in MB and MediaPipe's error.
_PROBE = '''
import numpy as np, mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision
model = sys.stdin.buffer.read()
limit_memory()
before, error = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ''
try:
    options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=model))
    with vision.FaceDetector.create_from_options(options) as detector:
        detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                 data=np.zeros((256, 256, 3), np.uint8)))
except Exception as exc:
    error = ' '.join(str(exc).split())
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10, error)
'''


def _probe_tflite(content: bytes, shown: str) -> None:
    """Refuse a TFLite model that MediaPipe cannot run as a face detector, that takes over
    MAX_DETECTOR_MB, or that kills the process: tried in a child process (1-2 s)."""
    outcome = run_probe(_PROBE, content, PROBE_SECONDS, PROBE_ADDRESS_SPACE_MB)
    if outcome is None:
        reason = f'MediaPipe took over {2 * PROBE_SECONDS} s to detect on a blank image'
    else:
        status, last = outcome
        peak, _, error = last.partition(' ')
        if status != 0 or not peak.isdigit():
            reason = (f'MediaPipe died on it (exit status {status}) within '
                      f'{PROBE_ADDRESS_SPACE_MB} MB more address space and {PROBE_SECONDS} '
                      'CPU seconds')
        elif int(peak) > MAX_DETECTOR_MB:
            reason = f'MediaPipe takes {peak} MB for it, over {MAX_DETECTOR_MB} MB'
        elif error:
            reason = printable(error, 300)
        else:
            return
    raise ValueError(f'{shown} is not a usable face detector: {reason}')


_WARM_UP_SHAPES = ((64, 64), (384, 384), (480, 640), (720, 1280), (256, 256), (360, 640))
_MAX_WARM_UP = 96
_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_alignment_notice_logged = False


@_LOG_CALLBACK
def _watch_log(severity: int, message: bytes, user_data: int) -> None:
    global _alignment_notice_logged
    if b'memory is not aligned' in message:
        _alignment_notice_logged = True


def _warm_up(detector) -> None:
    """Run frames through a new detector until LiteRT has logged its alignment notice.

    LiteRT logs it once per process, at the first input tensor that MediaPipe's allocator
    left misaligned, which varies from call to call; it would otherwise reach stderr at some
    later frame. Call while stderr is silenced. MediaPipe's log sink tells when it came.
    """
    import mediapipe as mp
    from mediapipe.tasks.python.core.mediapipe_c_bindings import load_raw_library

    library = load_raw_library()
    library.MpSetLoggingCallback.argtypes = [_LOG_CALLBACK, ctypes.c_void_p]
    library.MpSetLoggingCallback(_watch_log, None)
    try:
        for count in range(_MAX_WARM_UP):
            if count >= len(_WARM_UP_SHAPES) and _alignment_notice_logged:
                return
            h, w = _WARM_UP_SHAPES[count % len(_WARM_UP_SHAPES)]
            data = np.zeros((h, w, 3), np.uint8)
            detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=data))
    finally:
        library.MpRemoveLoggingCallback()


class FaceDetector:
    """Detect faces in RGB images of any size.

    model: 'full_range', 'short_range' or a .tflite path.
    min_confidence: detections scoring below it are dropped.
    max_faces: keep at most this many (highest scores first); 0 keeps all.
    """

    def __init__(self, model: str = 'full_range', min_confidence: float = 0.3,
                 max_faces: int = 0, min_suppression: float = 0.3):
        from mediapipe.tasks.python import BaseOptions, vision

        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f'min_confidence must be in [0, 1], got {min_confidence}')
        if max_faces < 0:
            raise ValueError(f'max_faces must be >= 0, got {max_faces}')
        if model in DETECTOR_MODELS:
            content = asset_path(DETECTOR_MODELS[model]).read_bytes()
        else:
            content = _read_tflite(model)
            _probe_tflite(content, quoted(str(model)))
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=content),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_confidence,
            min_suppression_threshold=min_suppression)
        with native_stderr_silenced():  # ~55 lines of load-time notes; warm up while silent
            self._detector = vision.FaceDetector.create_from_options(options)
            _warm_up(self._detector)
        self.model = model
        self.min_confidence = min_confidence
        self.max_faces = max_faces
        self.framing = DETECTOR_FRAMING.get(model)  # None for a custom model: crop margins

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces of an (H, W, 3) uint8 RGB image, highest score first."""
        import mediapipe as mp

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}')
        height, width = rgb.shape[:2]
        if height == 0 or width == 0:
            return []
        scale = min(DETECT_MAX_SIDE / max(height, width), 1.0)
        if scale < 1.0:
            size = (max(round(width * scale), 1), max(round(height * scale), 1))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        sx, sy = width / rgb.shape[1], height / rgb.shape[0]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        faces = []
        for det in self._detector.detect(image).detections:
            score = float(det.categories[0].score) if det.categories else 0.0
            if score < self.min_confidence:
                continue
            b = det.bounding_box
            x0, y0 = max(round(b.origin_x * sx), 0), max(round(b.origin_y * sy), 0)
            x1 = min(round((b.origin_x + b.width) * sx), width)
            y1 = min(round((b.origin_y + b.height) * sy), height)
            if x1 <= x0 or y1 <= y0:
                continue
            keypoints = tuple((k.x * width, k.y * height) for k in det.keypoints or ())
            faces.append(Face(x0, y0, x1 - x0, y1 - y0, score, keypoints))
        faces = merge_faces(faces)  # MediaPipe's own suppression keeps some nested boxes
        return faces[:self.max_faces] if self.max_faces else faces

    def close(self) -> None:
        if self._detector is not None:
            with native_stderr_silenced():
                self._detector.close()
            self._detector = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
