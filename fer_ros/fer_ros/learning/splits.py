"""The training and validation sets fer_train uses."""
from __future__ import annotations

import numpy as np

from fer_ros.learning.data import FaceDataset, load_dataset, split_by_group
from fer_ros.models import average_by_name


def class_aligned(val: FaceDataset, names: tuple[str, ...]) -> FaceDataset:
    """A validation set in the training set's class order."""
    extra = [c for c in val.class_names if c not in names]
    if extra:
        raise ValueError(f'validation classes {extra} are not among the training classes {names}')
    targets = average_by_name([val.targets], [val.class_names], names)
    return FaceDataset(val.images, targets, names, val.source)


def train_val_splits(train_path: str, val_path: str, val_fraction: float,
                     seed: int) -> tuple[FaceDataset, FaceDataset]:
    """The training and validation sets: val_path's, else val_fraction of train_path held out
    (whole tracks of a fer_record folder, random images otherwise)."""
    train = load_dataset(train_path)
    if val_path:
        return train, class_aligned(load_dataset(val_path), train.class_names)
    if train.groups is not None:
        return split_by_group(train, val_fraction, seed)
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(int(len(train) * val_fraction), 1)
    return train.subset(order[n_val:]), train.subset(order[:n_val])


def aligned(data: FaceDataset) -> FaceDataset:
    """The faces cropped as fer_node crops them (see framing.aligned_faces)."""
    from fer_ros.learning.framing import aligned_faces
    from fer_ros.perception.detection import FaceDetector
    with FaceDetector() as detector:
        return FaceDataset(aligned_faces(data.images, detector), data.targets,
                           data.class_names, data.source)
