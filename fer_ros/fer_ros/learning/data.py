"""Expression datasets: the npz formats of FER2013 (hard labels) and FER+ (annotator votes),
and folders that fer_record wrote and fer_label labelled.

All load into ``FaceDataset``: uint8 face images and per-image target
distributions over canonical class names (one-hot for hard labels, vote shares
for FER+). Class names are mapped explicitly, never by index.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_ros.common.untrusted import quoted
from fer_ros.learning.recorded import REJECT, read_index, read_labels, run_of
from fer_ros.models.registry import EXPRESSIONS

# Other spellings datasets use for the canonical classes (fer_ros.models.EXPRESSIONS).
CLASS_ALIASES = {
    'happiness': 'happy', 'joy': 'happy', 'smile': 'happy',
    'sadness': 'sad', 'surprised': 'surprise', 'anger': 'angry', 'disgusted': 'disgust',
    'fearful': 'fear', 'afraid': 'fear', 'scared': 'fear', 'contemptuous': 'contempt',
    'neutrality': 'neutral', 'calm': 'neutral'}


def canonical_class(name: str) -> str | None:
    """'Happiness' -> 'happy'; None for a name that is no expression class."""
    key = name.strip().lower()
    return key if key in EXPRESSIONS else CLASS_ALIASES.get(key)


def canonical_classes(names: list[str] | tuple[str, ...], source: str) -> tuple[str, ...]:
    """Map a dataset's class names by name, refusing any it cannot map: a wrongly mapped
    class would silently make every accuracy wrong."""
    mapped = tuple(canonical_class(n) for n in names)
    unknown = [n for n, m in zip(names, mapped) if m is None]
    if unknown:
        raise ValueError(
            f"{source}: cannot map class names {', '.join(quoted(n) for n in unknown)}; "
            f"expected {', '.join(EXPRESSIONS)} or one of {', '.join(sorted(CLASS_ALIASES))}")
    if len(set(mapped)) != len(mapped):
        raise ValueError(f'{source}: class names {list(names)} name a class twice')
    return mapped


# FER+ vote columns -> canonical names; 'unknown' and 'NF' (not a face) are not emotions.
FERPLUS_COLUMNS = {'neutral': 'neutral', 'happiness': 'happy', 'surprise': 'surprise',
                   'sadness': 'sad', 'anger': 'angry', 'disgust': 'disgust', 'fear': 'fear',
                   'contempt': 'contempt'}
FERPLUS_NON_EMOTIONS = ('unknown', 'NF')


@dataclass
class FaceDataset:
    images: np.ndarray       # (N, H, W) uint8 grayscale
    targets: np.ndarray      # (N, K) float32, rows sum to 1
    class_names: tuple[str, ...]
    source: str
    groups: np.ndarray | None = None  # (N,) str: faces of one group (a track) stay together

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        """Hard (majority) labels; ties go to the first class in class_names order."""
        return self.targets.argmax(1)

    def subset(self, index: np.ndarray | slice) -> FaceDataset:
        return FaceDataset(self.images[index], self.targets[index], self.class_names,
                           self.source, None if self.groups is None else self.groups[index])


def split_by_group(data: FaceDataset, fraction: float,
                   seed: int = 0) -> tuple[FaceDataset, FaceDataset]:
    """(rest, held out): whole groups, in random order, held out until `fraction` of the
    faces are; never faces of one group on both sides."""
    order = np.random.default_rng(seed).permutation(np.unique(data.groups))
    held, count = [], 0
    for group in order[:-1]:  # at least one group stays for training
        if count >= fraction * len(data):
            break
        held.append(group)
        count += int((data.groups == group).sum())
    out = np.isin(data.groups, held)
    return data.subset(np.flatnonzero(~out)), data.subset(np.flatnonzero(out))


def load_dataset(path: str | Path) -> FaceDataset:
    """Load an npz in FER2013 format (images, labels, classes) or FER+ format (images, votes,
    vote_columns). FER+ images whose majority vote is unknown/NF, or with no emotion votes,
    are dropped, as in the usual protocol."""
    path = Path(path)
    if path.is_dir():
        return load_recorded(path)
    if not path.is_file():
        raise FileNotFoundError(f'dataset {path} does not exist')
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        images = data['images']
        if {'votes', 'vote_columns'} <= keys:
            return _ferplus(images, data['votes'], [str(c) for c in data['vote_columns']],
                            str(path))
        if {'labels', 'classes'} <= keys:
            classes = canonical_classes([str(c) for c in data['classes']], str(path))
            targets = np.eye(len(classes), dtype=np.float32)[data['labels']]
            return FaceDataset(images, targets, classes, str(path))
    raise ValueError(f'{path}: expected keys images + labels + classes (FER2013 format) or '
                     f'images + votes + vote_columns (FER+ format), found {sorted(keys)}')


def load_recorded(folder: Path) -> FaceDataset:
    """The labelled faces of a fer_record folder (index.jsonl, labels.json from fer_label;
    rejected and unlabelled faces left out), in the recording model's classes, grouped by
    recording run and track."""
    problems: list[str] = []
    rows, labels = read_index(folder, problems), read_labels(folder)
    if problems:
        print(f'{folder}: skipped {len(problems)} lines, e.g. {problems[0]}', file=sys.stderr)
    classes = canonical_classes(list(rows[0]['probabilities']), str(folder)) if rows else ()
    kept = [(r, canonical_class(labels[r['crop']])) for r in rows
            if labels.get(r['crop']) not in (None, REJECT)]
    if not kept:
        raise ValueError(f'{folder}: no labelled faces yet (label them with fer_label)')
    images = []
    for row, _ in kept:
        image = cv2.imread(str(folder / row['crop']), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"{folder}: cannot read {row['crop']}")
        size = images[0].shape[::-1] if images else image.shape[::-1]
        images.append(image if image.shape[::-1] == size else cv2.resize(image, size))
    targets = np.eye(len(classes), dtype=np.float32)[[classes.index(c) for _, c in kept]]
    groups = np.array([f"{run_of(r)}/{r['track']}" for r, _ in kept])
    return FaceDataset(np.stack(images), targets, classes, str(folder), groups)


def _ferplus(images: np.ndarray, votes: np.ndarray, columns: list[str],
             source: str) -> FaceDataset:
    missing = [c for c in FERPLUS_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f'{source}: FER+ vote columns {missing} missing from {columns}')
    emotion_cols = [columns.index(c) for c in FERPLUS_COLUMNS]
    other_cols = [columns.index(c) for c in FERPLUS_NON_EMOTIONS if c in columns]
    votes = votes.astype(np.float32)
    emotion = votes[:, emotion_cols]
    best_other = votes[:, other_cols].max(1) if other_cols else np.zeros(len(votes))
    keep = (emotion.sum(1) > 0) & (emotion.max(1) > best_other)
    targets = emotion[keep] / emotion[keep].sum(1, keepdims=True)
    return FaceDataset(images[keep], targets, tuple(FERPLUS_COLUMNS.values()), source)
