"""fer_record: save the tracked faces of a video, an image folder, a rosbag2 MCAP file or a
camera as a dataset to label and fine-tune on.

For every face the node's pipeline finds, it writes the crop the classifier sees (crops/: the
model's input size and channels, framed and rolled as fer_node frames them) and a context crop
(context/: twice that window, 128 px, colour), and appends a line to index.jsonl: both files,
source, frame, time, track id, detector score, box, model and its prediction. A crop that
differs from its track's last saved one by less than --min-change (mean absolute difference of
the pixels, 0..1) is skipped, so an hour of a face that hardly moves does not become 100k
near-identical crops. An ensemble's crops are those of its first member.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from fer_ros.learning.recorded import INDEX
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.preprocess import crop_window, face_window

CONTEXT_SIZE = 128


@dataclass
class RecordStats:
    frames: int = 0
    faces: int = 0
    saved: int = 0
    duplicates: int = 0
    tracks: collections.Counter = field(default_factory=collections.Counter)
    labels: collections.Counter = field(default_factory=collections.Counter)

    def summary(self) -> str:
        labels = ', '.join(f'{k} {v}' for k, v in self.labels.most_common())
        return (f'{self.frames} frames, {self.faces} faces: saved {self.saved} crops of '
                f'{len(self.tracks)} tracks, skipped {self.duplicates} near-duplicates; '
                f'predicted: {labels or "none"}')


class RecordError(RuntimeError):
    """The dataset folder cannot be written (unusable path, full disk); the index still ends
    on a complete line."""


def open_index(out: Path) -> int:
    """Make the dataset folder (crops/, context/) and open its index.jsonl for appending; a
    torn last line (a full disk, a kill) is cut off first, so every line stays a row."""
    if not str(out).strip():
        raise RecordError('no dataset folder given')
    try:
        for folder in ('crops', 'context'):
            (out / folder).mkdir(parents=True, exist_ok=True)
        fd = os.open(out / INDEX, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RecordError(f'cannot record into {str(out)[:200]!r}: '
                          f'{exc.strerror or exc}') from None
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 16), size - min(size, 1 << 16))
    if tail and not tail.endswith(b'\n'):
        cut = tail.rfind(b'\n') + 1  # 0: the whole tail is one torn line
        os.ftruncate(fd, size - len(tail) + cut)
    return fd


class FaceRecorder:
    """Append the faces of frames to a dataset folder (crops/, context/, index.jsonl): each
    frame's rows in one write of whole lines, taken back if the disk cannot hold them."""

    def __init__(self, out: Path, pipeline: FerPipeline, source: str, min_change: float = 0.05):
        self.out, self.pipeline, self.source, self.min_change = out, pipeline, source, min_change
        self._index = open_index(out)
        self.run = time.strftime('%Y%m%d-%H%M%S-') + f'{time.time_ns() // 1000 % 10**6:06d}'
        self.stats = RecordStats()
        self._last: dict[int, np.ndarray] = {}  # track id -> its last saved crop

    def add(self, frame: np.ndarray, index: int, stamp: float | None) -> None:
        """Process one BGR frame and save its faces; stamp in seconds, if known."""
        result = self.pipeline.process(frame, stamp=stamp)
        spec = self.pipeline.classifier.model.members[0].spec.input
        self.stats.frames += 1
        live = {t.id for t in self.pipeline.tracker.tracks}
        self._last = {k: v for k, v in self._last.items() if k in live}
        saved = []  # (row, crop, context) of this frame
        for fe in result.faces:
            self.stats.faces += 1
            face = fe.face
            window = face_window(face.box, spec.crop_margin, face.keypoints,
                                 self.pipeline.detector.framing, self.pipeline.classifier.align)
            crop = crop_window(frame, window, spec.size)
            if spec.channels == 1:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            last = self._last.get(fe.id)
            if last is not None and np.abs(crop.astype(np.float32) - last).mean() / 255.0 \
                    < self.min_change:
                self.stats.duplicates += 1
                continue
            self._last[fe.id] = crop.astype(np.float32)
            name = f'{self.run}_{index:06d}_{fe.id}'
            context = crop_window(frame, replace(window, side=window.side * 2), CONTEXT_SIZE)
            label = result.class_names[fe.label_index]
            row = {'crop': f'crops/{name}.png', 'context': f'context/{name}.jpg',
                   'source': self.source, 'frame': index,
                   'time': None if stamp is None else round(stamp, 4), 'track': fe.id,
                   'detector_score': round(face.score, 4), 'box': list(face.box),
                   'model': self.pipeline.classifier.model.name, 'prediction': label,
                   'probabilities': {n: round(float(p), 4)
                                     for n, p in zip(result.class_names, fe.probabilities)}}
            saved.append((row, crop, context))
        if saved:
            self._write(saved)

    def _write(self, saved: list) -> None:
        """The frame's images, then its rows in one write; on failure none of them stay."""
        files: list[Path] = []
        try:
            for row, crop, context in saved:
                for rel, image in ((row['crop'], crop), (row['context'], context)):
                    files.append(self.out / rel)
                    files[-1].write_bytes(cv2.imencode(files[-1].suffix, image)[1].tobytes())
            blob = ''.join(json.dumps(row) + '\n' for row, _, _ in saved).encode()
            start = os.lseek(self._index, 0, os.SEEK_END)
            try:
                if os.write(self._index, blob) != len(blob):
                    raise OSError(28, 'No space left on device')
            except OSError:
                os.ftruncate(self._index, start)
                raise
        except OSError as exc:
            for path in files:
                path.unlink(missing_ok=True)
            raise RecordError(f'cannot write into {str(self.out)[:200]!r}: '
                              f'{exc.strerror or exc}; {self.stats.saved} faces saved before '
                              'are kept') from None
        for row, _, _ in saved:
            self.stats.saved += 1
            self.stats.tracks[row['track']] += 1
            self.stats.labels[row['prediction']] += 1

    def close(self) -> None:
        os.close(self._index)


def record(source_spec: str, out: Path, pipeline: FerPipeline, min_change: float = 0.05,
           max_frames: int = 0, progress: bool = True, bag_topic: str = '') -> RecordStats:
    """Record every frame of a source (until it ends, or max_frames) into out; an .mcap
    bag's frames as fast as they are read, at their recorded stamps."""
    from fer_ros.perception.sources import open_source

    recorder = FaceRecorder(out, pipeline, source_spec, min_change)
    try:
        source = open_source(source_spec, loop=False, bag_topic=bag_topic, bag_realtime=False)
    except BaseException:
        recorder.close()
        raise
    start, index = time.monotonic(), 0
    try:
        while not source.finished and (not max_frames or index < max_frames):
            frame = source.read()
            if frame is None:
                continue
            stamp = (source.stamp[0] + source.stamp[1] * 1e-9 if source.stamp else
                     index / source.frame_rate if source.frame_rate else None)
            recorder.add(frame, index, stamp)
            index += 1
            if progress and index % 25 == 0:
                print(f'\r{index} frames, {recorder.stats.saved} crops saved, '
                      f'{index / (time.monotonic() - start):.1f} frames/s', end='', flush=True)
    finally:
        recorder.close()
        source.close()
    if progress:
        print(flush=True)
    return recorder.stats


def main(argv: list[str] | None = None) -> None:
    from fer_ros.models import DEFAULT_MODEL
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.sources import SourceError
    from fer_ros.perception.tiling import make_detector

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source', help='video file, image, folder or glob of images, a rosbag2 '
                                       '.mcap file, or a V4L2 camera (index or /dev/videoN)')
    parser.add_argument('--bag-topic', default='',
                        help="image topic of an .mcap source ('' = its only one)")
    parser.add_argument('--out', required=True, help='dataset folder (appended to)')
    parser.add_argument('--model', default=DEFAULT_MODEL)
    parser.add_argument('--detector', default='full_range')
    parser.add_argument('--detection-threshold', type=float, default=0.3)
    parser.add_argument('--min-change', type=float, default=0.05,
                        help='skip a crop this close to its track\'s last saved one (0..1)')
    parser.add_argument('--max-frames', type=int, default=0, help='0: the whole source')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if not 0.0 <= args.min_change <= 1.0:
        parser.error('--min-change must be in [0, 1]')
    if not args.out.strip():
        parser.error('--out: give a dataset folder')
    classifier = ExpressionClassifier(args.model, 'cpu')
    with make_detector(args.detector, args.detection_threshold, 0, 0) as detector:
        try:
            stats = record(args.source, Path(args.out), FerPipeline(detector, classifier),
                           args.min_change, args.max_frames, not args.no_progress,
                           args.bag_topic)
        except (SourceError, RecordError) as exc:
            sys.exit(f'fer_record: {exc}')
    print(stats.summary())


if __name__ == '__main__':
    main()
