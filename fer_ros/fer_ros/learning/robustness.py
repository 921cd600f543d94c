"""Accuracy under controlled perturbations of the face crop, as a detector and a real camera
give it: the proxy for "works on real faces" (fer_evaluate --robustness).

Each perturbation has fixed variants (both signs of a shift, scale or rotation); the report
gives the accuracy of each variant, and per perturbation the mean and the worst drop from the
unperturbed accuracy. Geometric changes repeat the border pixels, as the node's crop does.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from fer_ros.learning.data import FaceDataset
from fer_ros.learning.scoring import ensemble_probabilities, metrics
from fer_ros.models import Ensemble

Perturb = Callable[[np.ndarray], np.ndarray]  # (H, W) uint8 -> (H, W) uint8


def affine(image: np.ndarray, shift: tuple[float, float] = (0.0, 0.0), scale: float = 1.0,
           degrees: float = 0.0) -> np.ndarray:
    """Move the crop window as a detector's error would: shift by a fraction of the side,
    a window `scale` times as large (the face looks smaller), rotated by `degrees`."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), degrees, 1.0 / scale)
    m[:, 2] -= (shift[0] * w, shift[1] * h)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def down_up(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def tone(image: np.ndarray, gain: float = 1.0, contrast: float = 1.0) -> np.ndarray:
    """Low light (gain < 1: darker, as an under-exposed camera) or low contrast (around the
    image's mean)."""
    x = image.astype(np.float32)
    x = (x - x.mean()) * contrast + x.mean()
    return np.clip(x * gain, 0, 255).astype(np.uint8)


PERTURBATIONS: dict[str, dict[str, Perturb]] = {
    'none': {'': lambda im: im},
    'shift 10%': {f'{dx:+.0%} x, {dy:+.0%} y': (lambda im, d=(dx, dy): affine(im, shift=d))
                  for dx, dy in ((0.1, 0), (-0.1, 0), (0, 0.1), (0, -0.1))},
    'scale 15%': {f'x{s}': (lambda im, s=s: affine(im, scale=s)) for s in (0.85, 1.15)},
    'rotation 20°': {f'{a:+d}°': (lambda im, a=a: affine(im, degrees=a)) for a in (-20, 20)},
    'blur': {'gaussian sigma 1 px': lambda im: cv2.GaussianBlur(im, (0, 0), 1.0)},
    'low light': {'gain 0.35': lambda im: tone(im, gain=0.35)},
    'low contrast': {'contrast 0.4': lambda im: tone(im, contrast=0.4)},
    'jpeg 30': {'quality 30': lambda im: jpeg(im, 30)},
    'downscale 24 px': {'24 px and back': lambda im: down_up(im, 24)},
}


def perturbed(dataset: FaceDataset, perturb: Perturb) -> FaceDataset:
    return FaceDataset(np.stack([perturb(im) for im in dataset.images]), dataset.targets,
                       dataset.class_names, dataset.source)


def robustness(model: Ensemble, dataset: FaceDataset, tta_flip: bool = False,
               backend: str = 'torch') -> dict:
    """{'base': accuracy, 'rows': [{perturbation, variants: {name: acc}, mean_drop,
    worst_drop}]} in PERTURBATIONS order (without 'none')."""
    def accuracy(data: FaceDataset) -> float:
        probs = ensemble_probabilities(model, data, tta_flip, backend)
        return metrics(probs, data.targets, data.class_names)['accuracy']

    base = accuracy(dataset)
    rows = []
    for name, variants in PERTURBATIONS.items():
        if name == 'none':
            continue
        accs = {v: accuracy(perturbed(dataset, f)) for v, f in variants.items()}
        drops = [base - a for a in accs.values()]
        rows.append({'perturbation': name, 'variants': accs,
                     'mean_drop': float(np.mean(drops)), 'worst_drop': float(max(drops))})
    return {'model': model.name, 'data': dataset.source, 'samples': len(dataset),
            'tta_flip': tta_flip, 'backend': backend, 'base': base, 'rows': rows}


def robustness_markdown(report: dict) -> str:
    lines = [f"# Robustness of {report['model']} ({report['samples']} faces, accuracy "
             f"{report['base']:.4f} unperturbed)", '',
             '| perturbation | variants: accuracy | mean drop | worst drop |', '|---|---|---|---|']
    for row in report['rows']:
        variants = ', '.join(f'{v} {a:.3f}' if v else f'{a:.3f}' for v, a in row['variants'].items())
        lines.append(f"| {row['perturbation']} | {variants} | {row['mean_drop'] * 100:+.1f} "
                     f"| {row['worst_drop'] * 100:+.1f} |")
    return '\n'.join(lines) + '\n'


def save_robustness_png(report: dict, path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = [r['perturbation'] for r in report['rows']]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    y = np.arange(len(names))
    ax.barh(y, [r['worst_drop'] * 100 for r in report['rows']], color='#d62728',
            label='worst variant')
    ax.barh(y, [r['mean_drop'] * 100 for r in report['rows']], color='#1f77b4', height=0.5,
            label='mean of variants')
    ax.axvline(2, color='gray', linestyle='--', linewidth=1)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel('accuracy drop (points)')
    ax.set_title(f"{report['model']}: {report['base']:.3f} unperturbed", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
