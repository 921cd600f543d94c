"""Frame sources for the camera node: V4L2 devices, video files, images, folders and globs."""
from __future__ import annotations

import glob
import re
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm'}
BUILTIN_IMAGES = ('astronaut', 'chelsea', 'coffee')  # photos shipped by scikit-image


class SourceError(RuntimeError):
    """A source cannot be opened or read."""


class FrameSource:
    """Yields BGR frames. ``read`` returns None when no frame is available right now;
    ``finished`` turns true once a non-looping file source has delivered its last frame."""

    finished = False

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to width x height when both are set (0 keeps the native size)."""
    if width > 0 and height > 0 and (frame.shape[1], frame.shape[0]) != (width, height):
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return frame


class ImageSequence(FrameSource):
    """A list of images replayed in order; files are read when due (a single one once)."""

    def __init__(self, frames: list[Callable[[], np.ndarray]], loop: bool):
        self._frames, self._loop, self._index = frames, loop, 0
        if len(frames) == 1:
            first = frames[0]()
            self._frames = [lambda: first]

    def read(self) -> np.ndarray | None:
        if self._index >= len(self._frames):
            if not self._loop:
                self.finished = True
                return None
            self._index = 0
        frame = self._frames[self._index]()
        self._index += 1
        return frame


class VideoCapture(FrameSource):
    """A V4L2 device or a video file through OpenCV."""

    def __init__(self, target: int | str, is_device: bool, width: int, height: int, fps: float,
                 loop: bool):
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if is_device else cv2.CAP_ANY)
        if not self._cap.isOpened():
            reason = ('no such device or it is busy' if is_device
                      else 'OpenCV cannot decode it (codec or container not supported)')
            raise SourceError(f'{reason}')
        if is_device:
            if width > 0 and height > 0:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self._is_device, self._loop = is_device, loop
        self._size = (width, height)

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok and not self._is_device:
            if not self._loop:
                self.finished = True
                return None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            raise SourceError('no frame delivered')
        return _fit(frame, *self._size)

    def close(self) -> None:
        self._cap.release()


def _read_image(path: Path, width: int, height: int) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise SourceError(f'{path} is not a readable image')
    return _fit(frame, width, height)


def open_source(spec: str, width: int = 0, height: int = 0, fps: float = 30.0,
                loop: bool = True) -> FrameSource:
    """Open a source described by a string.

    '0', '/dev/video0'      V4L2 camera (index or device path)
    'builtin:astronaut'     a photo shipped by scikit-image, replayed as a stream
    'face.jpg'              one image; 'dir/' or 'shots/*.png' a sorted sequence
    'clip.mp4'              a video file
    Raises SourceError naming the source and the reason.
    """
    try:
        spec = spec.strip()
        if not spec:
            raise SourceError('empty source')
        if re.fullmatch(r'\d+', spec) or spec.startswith('/dev/video'):
            target = int(spec) if spec.isdigit() else spec
            return VideoCapture(target, True, width, height, fps, loop)
        if spec.startswith('builtin:'):
            name = spec.split(':', 1)[1]
            if name not in BUILTIN_IMAGES:
                raise SourceError(
                    f"unknown built-in image (choose from {', '.join(BUILTIN_IMAGES)})")
            import skimage.data
            rgb = getattr(skimage.data, name)()
            frame = _fit(np.ascontiguousarray(rgb[:, :, ::-1]), width, height)
            return ImageSequence([lambda: frame], loop)
        path = Path(spec).expanduser()
        if any(c in spec for c in '*?['):
            files = sorted(Path(p) for p in glob.glob(str(path)))
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif not path.exists():
            raise SourceError('no such file, folder or device')
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            files = [path]
        else:
            return VideoCapture(str(path), False, width, height, fps, loop)
        files = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise SourceError('no images match')
        return ImageSequence([partial(_read_image, f, width, height) for f in files], loop)
    except SourceError as exc:
        raise SourceError(f"cannot open source '{spec}': {exc}") from None
