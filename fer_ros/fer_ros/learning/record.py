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


class FaceRecorder:
    """Append the faces of frames to a dataset folder (crops/, context/, index.jsonl)."""

    def __init__(self, out: Path, pipeline: FerPipeline, source: str, min_change: float = 0.05):
        self.out, self.pipeline, self.source, self.min_change = out, pipeline, source, min_change
        for folder in ('crops', 'context'):
            (out / folder).mkdir(parents=True, exist_ok=True)
        self.run = time.strftime('%Y%m%d-%H%M%S-') + f'{time.time_ns() // 1000 % 10**6:06d}'
        self.stats = RecordStats()
        self._last: dict[int, np.ndarray] = {}  # track id -> its last saved crop
        self._index = (out / INDEX).open('a')

    def add(self, frame: np.ndarray, index: int, stamp: float | None) -> None:
        """Process one BGR frame and save its faces; stamp in seconds, if known."""
        result = self.pipeline.process(frame, stamp=stamp)
        spec = self.pipeline.classifier.model.members[0].spec.input
        self.stats.frames += 1
        live = {t.id for t in self.pipeline.tracker.tracks}
        self._last = {k: v for k, v in self._last.items() if k in live}
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
            cv2.imwrite(str(self.out / 'crops' / f'{name}.png'), crop)
            cv2.imwrite(str(self.out / 'context' / f'{name}.jpg'), context)
            label = result.class_names[fe.label_index]
            self._index.write(json.dumps({
                'crop': f'crops/{name}.png', 'context': f'context/{name}.jpg',
                'source': self.source, 'frame': index,
                'time': None if stamp is None else round(stamp, 4), 'track': fe.id,
                'detector_score': round(face.score, 4), 'box': list(face.box),
                'model': self.pipeline.classifier.model.name, 'prediction': label,
                'probabilities': {n: round(float(p), 4)
                                  for n, p in zip(result.class_names, fe.probabilities)},
            }) + '\n')
            self.stats.saved += 1
            self.stats.tracks[fe.id] += 1
            self.stats.labels[label] += 1
        self._index.flush()

    def close(self) -> None:
        self._index.close()


def record(source_spec: str, out: Path, pipeline: FerPipeline, min_change: float = 0.05,
           max_frames: int = 0, progress: bool = True, bag_topic: str = '') -> RecordStats:
    """Record every frame of a source (until it ends, or max_frames) into out; an .mcap
    bag's frames as fast as they are read, at their recorded stamps."""
    from fer_ros.perception.sources import open_source

    source = open_source(source_spec, loop=False, bag_topic=bag_topic, bag_realtime=False)
    recorder = FaceRecorder(out, pipeline, source_spec, min_change)
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
    parser.add_argument('--out', type=Path, required=True, help='dataset folder (appended to)')
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
    classifier = ExpressionClassifier(args.model, 'cpu')
    with make_detector(args.detector, args.detection_threshold, 0, 0) as detector:
        try:
            stats = record(args.source, args.out, FerPipeline(detector, classifier),
                           args.min_change, args.max_frames, not args.no_progress,
                           args.bag_topic)
        except SourceError as exc:
            sys.exit(str(exc))
    print(stats.summary())


if __name__ == '__main__':
    main()
