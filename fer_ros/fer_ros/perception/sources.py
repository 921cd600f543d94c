"""Frame sources for the camera node: V4L2 devices, video files, images, folders and globs."""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fer_ros.perception.frame_source import FrameSource, SourceError, fit

# FFmpeg logs every undecodable frame (one line per read of a damaged file); a failed read is
# reported by the caller instead. Read once, at OpenCV's first capture; a user's setting wins.
os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.pgm', '.ppm'}
BUILTIN_IMAGES = ('astronaut', 'chelsea', 'coffee')  # photos shipped by scikit-image


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    """What identifies a file's content on disk (device, inode, size, mtime); None if gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class StillImage(FrameSource):
    """One frame, replayed."""

    def __init__(self, frame: np.ndarray, loop: bool):
        self._frame, self._loop = frame, loop

    def read(self) -> np.ndarray | None:
        if self.finished:
            return None
        self.finished = not self._loop
        return self._frame


class ImageSequence(FrameSource):
    """Image files replayed in order, each read when due. A file that cannot be read is skipped
    (the next one is delivered in its place), reported once to ``on_skip`` and not read again
    until it changes on disk. Raises SourceError only when none of the files is readable."""

    def __init__(self, files: list[Path], width: int, height: int, loop: bool,
                 on_skip: Callable[[str], None]):
        self._files, self._size, self._loop, self._on_skip = files, (width, height), loop, on_skip
        self._index = 0
        self._bad: dict[Path, tuple[int, int, int, int] | None] = {}  # file -> its stamp then

    def read(self) -> np.ndarray | None:
        frame, skipped = None, []
        for _ in self._files:  # each file at most once per read
            if self._index == len(self._files):
                if not self._loop:
                    self.finished = True
                    break
                self._index = 0
            frame = self._load(self._files[self._index], skipped)
            self._index += 1
            if frame is not None:
                break
        else:  # reported as one error, not one skip per file
            raise SourceError(f'none of its {len(self._files)} images is readable')
        for reason in skipped:
            self._on_skip(reason)
        return frame

    def _load(self, path: Path, skipped: list[str]) -> np.ndarray | None:
        stamp = _stamp(path)
        if path in self._bad and self._bad[path] == stamp:
            return None  # known bad, unchanged since
        frame = _read_image(path, *self._size) if stamp else None
        if frame is None:
            self._bad[path] = stamp
            skipped.append(f"skipping {path}: {'not a readable image' if stamp else 'it is gone'}"
                           ' (until it changes)')
        else:
            self._bad.pop(path, None)
        return frame


class VideoCapture(FrameSource):
    """A V4L2 device or a video file through OpenCV. A file deleted, replaced, truncated or
    rewritten while it plays is a SourceError (OpenCV would go on reading the old content)."""

    def __init__(self, target: int | str, is_device: bool, width: int, height: int, fps: float,
                 loop: bool):
        self._path = None if is_device else Path(target)
        self._stamp = None if is_device else _stamp(self._path)
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our error says it
        try:
            self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if is_device else cv2.CAP_ANY)
        finally:
            cv2.utils.logging.setLogLevel(level)
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
        if not is_device:
            self.frame_rate = max(float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0), 0.0)

    def read(self) -> np.ndarray | None:
        if self._path is not None:
            stamp = _stamp(self._path)
            if stamp != self._stamp:
                raise SourceError('the file changed on disk' if stamp else 'the file was deleted')
        ok, frame = self._cap.read()
        if not ok and not self._is_device:
            if not self._loop:
                self.finished = True
                return None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            raise SourceError('no frame delivered')
        return fit(frame, *self._size)

    def close(self) -> None:
        self._cap.release()


def _read_image(path: Path, width: int, height: int) -> np.ndarray | None:
    """The image fitted to width x height, or None when it is not a readable image."""
    try:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV allows
        return None
    return None if frame is None else fit(frame, width, height)


def open_source(spec: str, width: int = 0, height: int = 0, fps: float = 30.0,
                loop: bool = True,
                on_skip: Callable[[str], None] = lambda reason: None,
                bag_topic: str = '', bag_realtime: bool = True) -> FrameSource:
    """Open a source described by a string.

    '0', '/dev/video0'      V4L2 camera (index or device path)
    'builtin:astronaut'     a photo shipped by scikit-image, replayed as a stream
    'face.jpg'              one image; 'dir/' or 'shots/*.png' a sorted sequence
    'clip.mp4'              a video file
    'run.mcap'              a rosbag2 MCAP file: the images of bag_topic (perception/bag.py)
    on_skip receives why an image of a sequence is skipped. Raises SourceError naming the
    source and the reason.
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
            frame = fit(np.ascontiguousarray(rgb[:, :, ::-1]), width, height)
            return StillImage(frame, loop)
        path = Path(spec).expanduser()
        if any(c in spec for c in '*?['):
            files = sorted(Path(p) for p in glob.glob(str(path)))
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif not path.exists():
            raise SourceError('no such file, folder or device')
        elif path.suffix.lower() == '.mcap':
            from fer_ros.perception.bag import McapSource
            return McapSource(path, bag_topic, bag_realtime, width, height, loop, on_skip)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            frame = _read_image(path, width, height)
            if frame is None:
                raise SourceError(f'{path} is not a readable image')
            return StillImage(frame, loop)
        else:
            return VideoCapture(str(path), False, width, height, fps, loop)
        files = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise SourceError('no images match')
        return ImageSequence(files, width, height, loop, on_skip)
    except (SourceError, OSError) as exc:  # OSError: name too long, permission denied, ...
        reason = getattr(exc, 'strerror', None) or exc
        raise SourceError(f"cannot open source '{spec}': {reason}") from None
