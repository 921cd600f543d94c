"""Face-mesh geometry as expression features, and its ablation beside and with the CNN.

`mesh_features` turns the 468-point mesh fer_node computes (`landmarks: true`) into 16 brow,
eye, mouth and lip-corner measures in units of the eye distance, in the face's own frame
(eyes level). `python -m fer_ros.learning.geometry` fits small logistic-regression heads on
the posed faces of KDEF's and CFEE's train people and scores their val people: geometry
alone, a CNN alone, and the CNN's log-probabilities fused with the geometry.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from fer_ros.learning.data import FaceDataset
from fer_ros.learning.posed import load_posed, posed_rows, row_face
from fer_ros.learning.scoring import ensemble_probabilities
from fer_ros.models import load_ensemble
from fer_ros.perception.landmarks import FaceLandmarker

# Mesh indices; "right" is the person's right (the left of a frontal photo).
EYE_OUTER = (33, 263)
RIGHT_EYE_LIDS, LEFT_EYE_LIDS = (159, 145), (386, 374)
RIGHT_BROW, LEFT_BROW = (70, 105, 107), (300, 334, 336)  # outer, middle, inner
MOUTH_CORNERS, INNER_LIPS, OUTER_LIPS = (61, 291), (13, 14), (0, 17)
NOSE_TIP, CHIN = 1, 152
FEATURES = ('right brow outer raise', 'right brow middle raise', 'right brow inner raise',
            'left brow outer raise', 'left brow middle raise', 'left brow inner raise',
            'brow gap', 'right eye opening', 'left eye opening', 'mouth width',
            'mouth opening (inner lips)', 'mouth height (outer lips)',
            'right lip corner lift', 'left lip corner lift', 'nose to upper lip',
            'nose to chin')


def mesh_features(points: np.ndarray) -> np.ndarray:
    """(len(FEATURES),) measures of a (468, 2+) mesh in eye distances, eyes levelled."""
    p = np.asarray(points, np.float64)[:, :2]
    right, left = p[EYE_OUTER[0]], p[EYE_OUTER[1]]
    axis = left - right
    scale = float(np.hypot(*axis))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError('degenerate mesh: the outer eye corners coincide')
    c, s = axis / scale
    q = (p - (right + left) / 2) @ np.array([[c, -s], [s, c]]) / scale  # x: eye line, y down

    def dist(a: int, b: int) -> float:
        return float(np.hypot(*(q[a] - q[b])))

    def raise_(brow: int, lids: tuple[int, int]) -> float:
        return float(q[lids[0], 1] - q[brow, 1])

    lip_centre = (q[INNER_LIPS[0], 1] + q[INNER_LIPS[1], 1]) / 2
    return np.array([
        *(raise_(b, RIGHT_EYE_LIDS) for b in RIGHT_BROW),
        *(raise_(b, LEFT_EYE_LIDS) for b in LEFT_BROW),
        dist(RIGHT_BROW[2], LEFT_BROW[2]), dist(*RIGHT_EYE_LIDS), dist(*LEFT_EYE_LIDS),
        dist(*MOUTH_CORNERS), dist(*INNER_LIPS), dist(*OUTER_LIPS),
        lip_centre - q[MOUTH_CORNERS[0], 1], lip_centre - q[MOUTH_CORNERS[1], 1],
        dist(NOSE_TIP, OUTER_LIPS[0]), dist(NOSE_TIP, CHIN)])


def posed_features(folder: Path, split: str, landmarker: FaceLandmarker) -> np.ndarray:
    """mesh_features of every face of a posed split, the mesh run on the detector box of
    its index row as fer_node runs it; rows in load_posed's order."""
    out = []
    for row in posed_rows(folder, split):
        image = cv2.imread(str(folder / row['path']), cv2.IMREAD_COLOR)
        out.append(mesh_features(landmarker.mesh(image, row_face(row)).points))
    return np.stack(out)


def fit_head(x: np.ndarray, y: np.ndarray, classes: int,
             l2: float = 1e-3) -> Callable[[np.ndarray], np.ndarray]:
    """Multinomial logistic regression on standardised features (L-BFGS); a predict function."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y)
    layer = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=500, line_search_fn='strong_wolfe')

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(xt), yt) + l2 * layer.weight.square().sum()
        loss.backward()
        return loss
    optimizer.step(closure)

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return layer(torch.tensor((z - mean) / std, dtype=torch.float32)).argmax(1).numpy()
    return predict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('posed', help="posed folders, 'a+b' (../shared/data/kdef+...)")
    parser.add_argument('--models', default='fer_cnn_fer2013_cap,fer_cnn_posed',
                        help='CNNs to score alone and fused, comma-separated')
    args = parser.parse_args(argv)
    folders = [Path(p) for p in args.posed.split('+')]
    landmarker = FaceLandmarker()
    data: dict[str, dict[str, tuple[FaceDataset, np.ndarray]]] = {}
    for folder in folders:
        data[folder.name] = {s: (load_posed(folder, s), posed_features(folder, s, landmarker))
                             for s in ('train', 'val')}
    train_y = np.concatenate([d['train'][0].targets.argmax(1) for d in data.values()])
    classes = next(iter(data.values()))['train'][0].class_names

    def row(name: str, train_x: np.ndarray, val_x: dict[str, np.ndarray]) -> None:
        predict = fit_head(train_x, train_y, len(classes))
        scores = [100 * float((predict(val_x[k]) == data[k]['val'][0].targets.argmax(1)).mean())
                  for k in data]
        print(f"| {name} | " + ' | '.join(f'{v:.1f}' for v in scores) + ' |', flush=True)

    print('| head (fit on the train people) | ' + ' | '.join(f'{k} val' for k in data) + ' |')
    print('|---|' + '---|' * len(data))
    geometry = {k: d['val'][1] for k, d in data.items()}
    row('geometry alone', np.concatenate([d['train'][1] for d in data.values()]), geometry)
    for model_name in args.models.split(','):
        model = load_ensemble(model_name)
        logp = {k: {s: np.log(ensemble_probabilities(model, d[s][0]) + 1e-6)
                    for s in ('train', 'val')} for k, d in data.items()}
        alone = [100 * float((logp[k]['val'].argmax(1) == d['val'][0].targets.argmax(1)).mean())
                 for k, d in data.items()]
        print(f'| `{model_name}` alone (no head) | ' + ' | '.join(f'{v:.1f}' for v in alone)
              + ' |')
        row(f'`{model_name}` log-probabilities, refit', np.concatenate(
            [logp[k]['train'] for k in data]), {k: logp[k]['val'] for k in data})
        row(f'`{model_name}` + geometry', np.concatenate(
            [np.hstack([logp[k]['train'], d['train'][1]]) for k, d in data.items()]),
            {k: np.hstack([logp[k]['val'], d['val'][1]]) for k, d in data.items()})


if __name__ == '__main__':
    main()
