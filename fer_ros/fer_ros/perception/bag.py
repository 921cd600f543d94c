"""rosbag2 MCAP files as a frame source: the images of one topic, with their recorded stamps.

Reads sensor_msgs/Image and sensor_msgs/CompressedImage with the maintained `mcap` and
`mcap-ros2-support` packages (CDR decoded from the schemas the bag carries, so no ROS
message package is needed to read it). A bag is untrusted input: the topic's schema is
checked when the source opens; chunks are read one by one through the bag's chunk index, each
refused when it would decompress to over MAX_MESSAGE_BYTES, and a chunk or message that
cannot be read or decoded is skipped and counted (reported through `on_skip`), so damage costs
only what it touches. A gap in the log times is replayed as MAX_GAP seconds.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from fer_ros.common.untrusted import printable
from fer_ros.perception.compressed import decode_compressed
from fer_ros.perception.frame_source import FrameSource, SourceError, fit
from fer_ros.perception.image_conversion import ImageConversionError, image_to_bgr8

# The fields the source reads of each image type
IMAGE_FIELDS = {'sensor_msgs/msg/Image': {'header', 'height', 'width', 'encoding', 'step', 'data'},
                'sensor_msgs/msg/CompressedImage': {'header', 'format', 'data'}}
IMAGE_TYPES = tuple(IMAGE_FIELDS)
MCAP_REQUIREMENT = 'mcap==1.6.0 mcap-ros2-support==0.6.0'
MAX_MESSAGE_BYTES = 128 << 20  # a chunk or message of more is refused (8K bgr8: 100 MB)
MAX_GAP = 5.0                  # seconds: longer pauses of the log times are cut to this
REPORT_EVERY = 5.0             # seconds between reports of skipped data


def image_topics(path: Path):
    """({topic: message type} of the image topics of a bag, its summary)."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    with path.open('rb') as f:
        try:
            summary = make_reader(f).get_summary()
        except (McapError, EOFError, ValueError) as exc:
            raise SourceError(f'not a readable MCAP file ({exc})') from None
    if summary is None:
        raise SourceError('the bag has no summary (unfinished recording?)')
    schemas = summary.schemas
    return {c.topic: schemas[c.schema_id].name for c in summary.channels.values()
            if c.schema_id in schemas and schemas[c.schema_id].name in IMAGE_TYPES}, summary


def schema_decoder(schema) -> Callable[[bytes], object]:
    """The CDR decoder of an image schema; SourceError when its text does not parse or lacks
    a field the source reads."""
    from mcap_ros2.decoder import DecoderFactory
    text = schema.data.decode('utf-8', 'replace')
    main = re.split(r'^={3,}\s*$', text, maxsplit=1, flags=re.M)[0]  # the type's own fields
    fields = {parts[1] for line in main.splitlines()
              if len(parts := line.split('#', 1)[0].split()) >= 2}
    if missing := IMAGE_FIELDS[schema.name] - fields:
        raise SourceError(f'the bag\'s {schema.name} schema lacks {", ".join(sorted(missing))}')
    try:
        decoder = DecoderFactory().decoder_for('cdr', schema)
    except Exception as exc:  # the schema parser raises many types on text it cannot read
        raise SourceError(f"the bag's {schema.name} schema cannot be parsed "
                          f'({printable(exc, 120)})') from None
    if decoder is None:
        raise SourceError(f"the bag's {schema.name} messages are not CDR with a ros2msg schema")
    return decoder


def _decompress(compression: str, data: bytes, size: int) -> bytes:
    """A chunk's records, never more than `size` bytes (what the chunk says it holds)."""
    if compression == '':
        return data
    if compression == 'lz4':
        import lz4.frame
        out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=size)
    elif compression == 'zstd':
        import zstandard
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    else:
        raise ValueError(f'unknown compression {compression!r}')
    if len(out) != size:
        raise ValueError(f'chunk holds {len(out)} bytes, not the {size} it says')
    return out


class McapSource(FrameSource):
    """The images of `topic` ('' = the bag's only image topic) at the recorded rate, or as fast
    as they are read when not `realtime`. `stamp` is the last frame's header stamp
    (sec, nanosec) as recorded; `skipped` counts the chunks and messages that were damaged."""

    def __init__(self, path: Path, topic: str, realtime: bool, width: int, height: int,
                 loop: bool, on_skip: Callable[[str], None] = lambda reason: None):
        import importlib.util
        if importlib.util.find_spec('mcap_ros2') is None:
            raise SourceError(f'reading MCAP bags needs: pip install {MCAP_REQUIREMENT}')
        topics, summary = image_topics(path)
        if not topic and len(topics) != 1:
            raise SourceError(f"name one of its image topics {sorted(topics)} (bag_topic)"
                              if topics else 'the bag has no sensor_msgs image topic')
        topic = topic or next(iter(topics))
        if topic not in topics:
            raise SourceError(f'no image topic {topic!r} in the bag (it has {sorted(topics)})')
        channels = [c for c in summary.channels.values() if c.topic == topic]
        self._channels = {c.id for c in channels}
        self._decode = schema_decoder(summary.schemas[channels[0].schema_id])
        self._chunks = sorted(summary.chunk_indexes, key=lambda c: c.message_start_time)
        if not self._chunks:
            raise SourceError('the bag has no chunk index (an unchunked MCAP file)')
        self.topic, self._path, self._realtime, self._loop = topic, path, realtime, loop
        self._size, self._on_skip = (width, height), on_skip
        self.skipped, self._unreported, self._reported_at = 0, [], 0.0
        self._file = None
        self._open()

    def _open(self) -> None:
        self._file = self._path.open('rb')
        self._messages = self._read_messages()
        self._pending: tuple[int, object] | None = None
        self._previous: int | None = None  # log time (ns) of the last frame delivered
        self._due = 0.0  # time.monotonic() the pending message is due at

    def _skip(self, what: str) -> None:
        self.skipped += 1
        self._unreported.append(what)
        if time.monotonic() - self._reported_at >= REPORT_EVERY:
            first, more = self._unreported[0], len(self._unreported) - 1
            self._on_skip(f"bag {self._path.name}: skipped {first}"
                          + (f' and {more} more' if more else ''))
            self._unreported, self._reported_at = [], time.monotonic()

    def _read_messages(self) -> Iterator[tuple[int, object]]:
        """(log time, decoded message) of the topic, chunk by chunk in log-time order."""
        from mcap.data_stream import ReadDataStream
        from mcap.records import Chunk, Message
        from mcap.stream_reader import breakup_chunk
        for index in self._chunks:
            where = f'the chunk at byte {index.chunk_start_offset}'
            if index.uncompressed_size > MAX_MESSAGE_BYTES:
                self._skip(f'{where}: {index.uncompressed_size >> 20} MB, over the '
                           f'{MAX_MESSAGE_BYTES >> 20} MB limit')
                continue
            try:
                self._file.seek(index.chunk_start_offset + 9)  # past opcode and length
                chunk = Chunk.read(ReadDataStream(self._file))
                data = _decompress(chunk.compression, chunk.data, chunk.uncompressed_size)
                records = breakup_chunk(Chunk(compression='', data=data,
                                              message_start_time=0, message_end_time=0,
                                              uncompressed_crc=chunk.uncompressed_crc,
                                              uncompressed_size=len(data)), validate_crc=True)
            except Exception as exc:  # lz4, zstd, CRC and record parsing raise many types
                self._skip(f'{where} ({printable(exc, 100)})')
                continue
            messages = sorted((r for r in records if isinstance(r, Message)
                               and r.channel_id in self._channels), key=lambda m: m.log_time)
            for message in messages:
                try:
                    yield message.log_time, self._decode(message.data)
                except Exception as exc:  # the CDR decoder raises many types on bad data
                    self._skip(f'a message logged at {message.log_time} ns '
                               f'({printable(exc, 100)})')

    def read(self) -> np.ndarray | None:
        if self._pending is None:
            self._pending = next(self._messages, None)
            if self._pending is None:
                if not self._loop:
                    self.finished = True
                    return None
                self.close()
                self._open()
                return None
            log_time = self._pending[0]
            if self._previous is None:
                self._due = time.monotonic()
            else:
                gap = (log_time - self._previous) * 1e-9
                if gap > MAX_GAP:
                    self._on_skip(f'bag {self._path.name}: log times jump by {gap:.0f} s; '
                                  f'replayed as {MAX_GAP:g} s')
                self._due += min(max(gap, 0.0), MAX_GAP)
        if self._realtime and time.monotonic() < self._due:
            return None  # not due yet
        (self._previous, image), self._pending = self._pending, None
        try:
            frame = decode_compressed(bytes(image.data), image.format) \
                if hasattr(image, 'format') else image_to_bgr8(image)
            stamp = (int(image.header.stamp.sec), int(image.header.stamp.nanosec))
        except (ImageConversionError, ValueError, AttributeError, TypeError) as exc:
            self._skip(f'an undecodable image ({printable(exc, 100)})')
            return None
        self.stamp = stamp
        return fit(frame, *self._size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
