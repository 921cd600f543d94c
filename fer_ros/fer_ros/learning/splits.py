"""The training and validation sets fer_train uses."""
from __future__ import annotations

import numpy as np

from fer_ros.learning.data import FaceDataset, load_dataset, split_by_group
from fer_ros.learning.posed import is_posed_folder, load_posed
from fer_ros.models import average_by_name
from fer_ros.perception.preprocess import resize_square


def class_aligned(val: FaceDataset, names: tuple[str, ...]) -> FaceDataset:
    """A validation set in the training set's class order."""
    extra = [c for c in val.class_names if c not in names]
    if extra:
        raise ValueError(f'validation classes {extra} are not among the training classes {names}')
    targets = average_by_name([val.targets], [val.class_names], names)
    return FaceDataset(val.images, targets, names, val.source)


def train_val_splits(train_path: str, val_path: str, val_fraction: float,
                     seed: int) -> tuple[FaceDataset, list[FaceDataset]]:
    """The training set and the validation sets: those of val_path ('a+b': several; a posed
    folder gives its val split), else val_fraction of train_path held out (whole tracks of a
    fer_record folder, random images otherwise)."""
    train = load_dataset(train_path)
    if val_path:
        return train, [validation_set(p, train.class_names) for p in val_path.split('+')]
    if train.groups is not None:
        rest, held = split_by_group(train, val_fraction, seed)
        return rest, [held]
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(int(len(train) * val_fraction), 1)
    return train.subset(order[n_val:]), [train.subset(order[:n_val])]


def validation_set(path: str, names: tuple[str, ...], size: int = 48) -> FaceDataset:
    """A validation split in the class order `names`: an npz or recorded folder as it is, a
    posed folder's val split cut as the node cuts faces."""
    if is_posed_folder(path):
        return load_posed(path, 'val', size, class_names=names)
    return class_aligned(load_dataset(path), names)


def mixed(primary: FaceDataset, posed: str, repeat: int, size: int,
          compound: bool) -> FaceDataset:
    """The primary training set followed by the train splits of the posed folders ('a+b'),
    each repeated `repeat` times so that every batch holds some posed faces."""
    parts = [load_posed(p, 'train', size, compound, primary.class_names)
             for p in posed.split('+')]
    first = primary.images
    if first.shape[1:] != (size, size):  # e.g. 48 px FER2013 for a 64 px model, as it is served
        first = np.stack([resize_square(im, size) for im in first])
    images = [first] + [np.tile(p.images, (repeat, 1, 1)) for p in parts]
    targets = [primary.targets] + [np.tile(p.targets, (repeat, 1)) for p in parts]
    return FaceDataset(np.concatenate(images), np.concatenate(targets), primary.class_names,
                       f"{primary.source}+{posed}")


def aligned(data: FaceDataset) -> FaceDataset:
    """The faces cropped as fer_node crops them (see framing.aligned_faces)."""
    from fer_ros.learning.framing import aligned_faces
    from fer_ros.perception.detection import FaceDetector
    with FaceDetector() as detector:
        return FaceDataset(aligned_faces(data.images, detector), data.targets,
                           data.class_names, data.source)
