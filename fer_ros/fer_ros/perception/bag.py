"""rosbag2 MCAP files as a frame source: the images of one topic, with their recorded stamps.

Reads sensor_msgs/Image and sensor_msgs/CompressedImage with the maintained `mcap` and
`mcap-ros2-support` packages (CDR decoded from the schemas the bag carries, so no ROS
message package is needed to read it).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fer_ros.perception.compressed import decode_compressed
from fer_ros.perception.image_conversion import ImageConversionError, image_to_bgr8
from fer_ros.perception.sources import FrameSource, SourceError, fit

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
MCAP_REQUIREMENT = 'mcap==1.6.0 mcap-ros2-support==0.6.0'


def image_topics(path: Path) -> dict[str, str]:
    """{topic: message type} of the image topics of a bag."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    with path.open('rb') as f:
        try:
            summary = make_reader(f).get_summary()
        except (McapError, EOFError, ValueError) as exc:
            raise SourceError(f'not a readable MCAP file ({exc})') from None
    if summary is None:
        raise SourceError('the bag has no summary (unfinished recording?)')
    return {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()
            if summary.schemas[c.schema_id].name in IMAGE_TYPES}


class McapSource(FrameSource):
    """The images of `topic` ('' = the bag's only image topic) at the recorded rate, or as fast
    as they are read when not `realtime`. `stamp` is the last frame's header stamp
    (sec, nanosec) as recorded."""

    def __init__(self, path: Path, topic: str, realtime: bool, width: int, height: int,
                 loop: bool):
        import importlib.util
        if importlib.util.find_spec('mcap_ros2') is None:
            raise SourceError(f'reading MCAP bags needs: pip install {MCAP_REQUIREMENT}')
        topics = image_topics(path)
        if not topic and len(topics) != 1:
            raise SourceError(f"name one of its image topics {sorted(topics)} (bag_topic)"
                              if topics else 'the bag has no sensor_msgs image topic')
        topic = topic or next(iter(topics))
        if topic not in topics:
            raise SourceError(f'no image topic {topic!r} in the bag (it has {sorted(topics)})')
        self.topic, self._path, self._realtime, self._loop = topic, path, realtime, loop
        self._size = (width, height)
        self.skipped = 0
        self._open()

    def _open(self) -> None:
        from mcap.reader import make_reader
        from mcap_ros2.decoder import DecoderFactory
        self._file = self._path.open('rb')
        reader = make_reader(self._file, decoder_factories=[DecoderFactory()])
        self._messages = reader.iter_decoded_messages(topics=[self.topic], log_time_order=True)
        self._pending = None
        self._start: tuple[float, int] | None = None  # (monotonic s, log time ns) of the first

    def read(self) -> np.ndarray | None:
        from mcap.exceptions import McapError
        if self._pending is None:
            try:
                self._pending = next(self._messages, None)
            except (McapError, EOFError, ValueError) as exc:  # truncated or damaged
                raise SourceError(f'cannot read the bag further ({exc})') from None
            if self._pending is None:
                if not self._loop:
                    self.finished = True
                    return None
                self.close()
                self._open()
                return None
        _, _, message, image = self._pending
        if self._realtime:
            if self._start is None:
                self._start = (time.monotonic(), message.log_time)
            if time.monotonic() < self._start[0] + (message.log_time - self._start[1]) * 1e-9:
                return None  # not due yet
        self._pending = None
        try:
            frame = decode_compressed(bytes(image.data), image.format) \
                if hasattr(image, 'format') else image_to_bgr8(image)
        except (ImageConversionError, ValueError):
            self.skipped += 1  # a damaged message: the next one may be fine
            return None
        self.stamp = (image.header.stamp.sec, image.header.stamp.nanosec)
        return fit(frame, *self._size)

    def close(self) -> None:
        self._file.close()
