"""Scoring expression models on face crops: predictions, accuracy, macro-F1, per-class
recall, confusion matrices, latency, and the model card's numbers. Used by fer_evaluate,
fer_panel, fer_train, fer_export_onnx and the robustness and pipeline reports."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fer_ros.common.input_spec import InputSpec
from fer_ros.learning.data import FaceDataset
from fer_ros.models import Ensemble, LoadedModel
from fer_ros.models.onnx_backend import load_onnx, onnx_probabilities
from fer_ros.perception.classifier import probabilities
from fer_ros.perception.preprocess import normalize, resize_to_input


def dataset_tensor(dataset: FaceDataset, spec: InputSpec) -> torch.Tensor:
    """All images of a dataset, resized and normalised exactly as the node does."""
    resized = np.stack([resize_to_input(img, spec) for img in dataset.images])
    return torch.from_numpy(normalize(resized, spec))


@torch.inference_mode()
def predict(module: nn.Module, x: torch.Tensor, batch_size: int = 256,
            tta_flip: bool = False) -> np.ndarray:
    """Probabilities for a stack of faces, batch by batch, channels-last as fer_node runs
    (2-3x faster on CPU than the default layout)."""
    module = module.eval().to(memory_format=torch.channels_last)
    return torch.cat([probabilities(
        module, x[i:i + batch_size].contiguous(memory_format=torch.channels_last), tta_flip)
        for i in range(0, len(x), batch_size)]).cpu().numpy()


def metrics(probs: np.ndarray, targets: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Metrics of probabilities against target distributions, both (N, K) in class_names order.

    accuracy uses the majority (argmax) target; soft_accuracy is the mean target mass on the
    predicted class (agreement with annotators); cross_entropy is against the targets.
    """
    k = len(class_names)
    truth, pred = targets.argmax(1), probs.argmax(1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    support = confusion.sum(1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(k), where=support > 0)
    predicted = confusion.sum(0)
    precision = np.divide(np.diag(confusion), predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                   where=(precision + recall) > 0)
    present = support > 0
    return {
        'samples': int(len(truth)),
        'accuracy': float((truth == pred).mean()),
        'macro_f1': float(f1[present].mean()),
        'soft_accuracy': float(targets[np.arange(len(pred)), pred].mean()),
        'cross_entropy': float(-(targets * np.log(np.clip(probs, 1e-7, 1))).sum(1).mean()),
        'per_class_recall': {c: float(r) for c, r, p in zip(class_names, recall, present) if p},
        'class_names': list(class_names),
        'confusion': confusion.tolist(),
    }


def member_probabilities(member: LoadedModel, dataset: FaceDataset, tta_flip: bool = False,
                         backend: str = 'torch') -> np.ndarray:
    """(N, member classes) probabilities of one model for every image, by `backend`."""
    x = dataset_tensor(dataset, member.spec.input)
    if backend == 'torch':
        return predict(member.module, x, tta_flip=tta_flip)
    onnx, x = load_onnx(member, backend == 'onnxruntime_int8'), x.numpy()
    return np.concatenate([onnx_probabilities(onnx, x[i:i + 256], tta_flip)
                           for i in range(0, len(x), 256)])


def ensemble_probabilities(model: Ensemble, dataset: FaceDataset, tta_flip: bool = False,
                           backend: str = 'torch') -> np.ndarray:
    """(N, K) probabilities for every image, in the dataset's class order, computed by the
    backend fer_node would use."""
    return model.combine([member_probabilities(m, dataset, tta_flip, backend)
                          for m in model.members], dataset.class_names)


def evaluate(model: Ensemble, dataset: FaceDataset, tta_flip: bool = False,
             backend: str = 'torch') -> dict:
    probs = ensemble_probabilities(model, dataset, tta_flip, backend)
    report = metrics(probs, dataset.targets, dataset.class_names)
    report['missing_classes'] = [c for c in dataset.class_names if c not in model.class_names]
    report.update(model=model.name, data=dataset.source, tta_flip=tta_flip, backend=backend)
    return report


def save_confusion_png(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    confusion = np.array(report['confusion'], float)
    rows = confusion / np.clip(confusion.sum(1, keepdims=True), 1, None)
    names = report['class_names']
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(names), 1 + 0.7 * len(names)))
    ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f'{rows[i, j]:.2f}\n{int(confusion[i, j])}', ha='center', va='center',
                    fontsize=7, color='white' if rows[i, j] > 0.5 else 'black')
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true (majority)')
    ax.set_title(f"{report['model']}: accuracy {report['accuracy']:.3f}, "
                 f"macro-F1 {report['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def lowest_median_ms(run: Callable[[], object], repeats: int = 50, rounds: int = 3) -> float:
    """Milliseconds per call of run() after 5 warm-up calls: the lowest of `rounds` medians
    of `repeats` calls, so other load on a shared CPU counts least."""
    for _ in range(5):
        run()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        medians.append(float(np.median(times)))
    return min(medians)


def measure_latency(module: nn.Module, spec: InputSpec, batch: int, repeats: int = 50,
                    rounds: int = 3) -> float:
    """CPU milliseconds per face of a forward pass at the given batch size."""
    module = module.to('cpu', memory_format=torch.channels_last).eval()
    x = torch.zeros(batch, spec.channels, spec.size, spec.size).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode():
        return lowest_median_ms(lambda: module(x), repeats, rounds) / batch


def markdown(report: dict) -> str:
    backend = report.get('backend', 'torch')
    lines = [f"# {report['model']} on {Path(report['data']).name}", '',
             f"- samples: {report['samples']}, flip TTA: {report['tta_flip']}"
             + ('' if backend == 'torch' else f', backend: {backend}'),
             f"- accuracy (majority): {report['accuracy']:.4f}",
             f"- macro-F1: {report['macro_f1']:.4f}",
             f"- soft accuracy: {report['soft_accuracy']:.4f}, "
             f"cross-entropy: {report['cross_entropy']:.4f}"]
    if report['missing_classes']:
        lines.append(f"- classes the model cannot predict: {', '.join(report['missing_classes'])}")
    lines += ['', '| class | recall |', '|---|---|']
    lines += [f'| {c} | {r:.3f} |' for c, r in report['per_class_recall'].items()]
    return '\n'.join(lines) + '\n'


RECORDED_HEADING = '## Recorded metrics'


def update_card(card: Path, metrics: dict) -> None:
    """Rewrite the card's recorded-metrics section: the numbers the registry shows."""
    text = card.read_text().split(f'\n{RECORDED_HEADING}\n')[0].rstrip('\n')
    rows = '\n'.join(f'| {k} | {v:.4g} |' for k, v in sorted(metrics.items())
                     if not isinstance(v, str))
    card.write_text(f'{text}\n\n{RECORDED_HEADING}\n\n'
                    'What the registry shows, as written by `fer_evaluate --record`.\n\n'
                    '| metric | value |\n|---|---|\n' + rows + '\n')
