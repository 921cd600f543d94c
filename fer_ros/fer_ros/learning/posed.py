"""Posed-face datasets (KDEF, CFEE as ../shared lays them out): face crops with their detector
box and keypoints in index.csv, cut into model inputs exactly as fer_node cuts live faces.

A folder holds `index.csv` (path, label, identity, split, face_x/y/w/h, keypoints) and the
crops. Each face is cut by the node's window (detector framing, eyes levelled by the keypoints)
and shrunk to the model's side in gray. Compound expressions (CFEE's `angrily_disgusted` …)
become soft targets split evenly between their two components.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fer_ros.learning.data import FaceDataset, canonical_class
from fer_ros.perception.detection import DETECTOR_FRAMING, Face
from fer_ros.perception.preprocess import crop_window, face_window

# CFEE's two-component compounds (Du, Tao & Martinez 2014); appalled, hatred and awed name no
# pair of basic classes and are left out.
COMPOUNDS = {
    'happily_surprised': ('happy', 'surprise'), 'happily_disgusted': ('happy', 'disgust'),
    'sadly_fearful': ('sad', 'fear'), 'sadly_angry': ('sad', 'angry'),
    'sadly_surprised': ('sad', 'surprise'), 'sadly_disgusted': ('sad', 'disgust'),
    'fearfully_angry': ('fear', 'angry'), 'fearfully_surprised': ('fear', 'surprise'),
    'fearfully_disgusted': ('fear', 'disgust'), 'angrily_surprised': ('angry', 'surprise'),
    'angrily_disgusted': ('angry', 'disgust'), 'disgustedly_surprised': ('disgust', 'surprise')}

SPLITS = ('train', 'val', 'all')


def is_posed_folder(path: str | Path) -> bool:
    return (Path(path) / 'index.csv').is_file()


def posed_rows(folder: Path, split: str = 'all', compound: bool = False) -> list[dict]:
    """index.csv rows of one split: basic expressions, and with `compound` the compounds."""
    if split not in SPLITS:
        raise ValueError(f'split {split!r}: expected one of {", ".join(SPLITS)}')
    with (folder / 'index.csv').open(newline='') as f:
        rows = list(csv.DictReader(f))
    wanted = []
    for row in rows:
        if split != 'all' and row.get('split') != split:
            continue
        if canonical_class(row['label']) or (compound and row['label'] in COMPOUNDS):
            wanted.append(row)
    return wanted


def _keypoints(text: str) -> list[tuple[float, float]]:
    return [tuple(float(v) for v in pair.split(',')) for pair in text.split()]


def row_face(row: dict) -> Face:
    """The detected face an index row records: box, score, keypoints."""
    box = (int(round(float(row[k]))) for k in ('face_x', 'face_y', 'face_w', 'face_h'))
    return Face(*box, float(row['score']), tuple(_keypoints(row['keypoints'])))


def node_crop(image_bgr: np.ndarray, row: dict, size: int,
              detector: str = 'full_range') -> np.ndarray:
    """The face of one index row as fer_node crops it: gray, `size` px square."""
    box = tuple(float(row[k]) for k in ('face_x', 'face_y', 'face_w', 'face_h'))
    window = face_window(box, 0.0, _keypoints(row['keypoints']), DETECTOR_FRAMING[detector])
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return crop_window(gray, window, size)


def load_posed(folder: str | Path, split: str = 'all', size: int = 48, compound: bool = False,
               class_names: tuple[str, ...] = ('angry', 'disgust', 'fear', 'happy', 'neutral',
                                               'sad', 'surprise')) -> FaceDataset:
    """One split of a posed folder as node-cut crops, grouped by identity."""
    folder = Path(folder)
    rows = posed_rows(folder, split, compound)
    if not rows:
        raise ValueError(f'{folder}: no faces in split {split!r}')
    images, targets = [], np.zeros((len(rows), len(class_names)), np.float32)
    for i, row in enumerate(rows):
        image = cv2.imread(str(folder / row['path']), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{folder}: cannot read {row['path']}")
        images.append(node_crop(image, row, size))
        parts = COMPOUNDS.get(row['label']) or (canonical_class(row['label']),)
        for part in parts:
            targets[i, class_names.index(part)] = 1.0 / len(parts)
    groups = np.array([f"{folder.name}/{r['identity']}" for r in rows])
    return FaceDataset(np.stack(images), targets, class_names, f'{folder}[{split}]', groups)
