"""fer_evaluate: accuracy, macro-F1, per-class recall and confusion matrix of an expression
model on an npz split of face crops, mapping model classes to dataset classes by name; with
--pipeline, of the whole chain (detector, crop, classifier) on full-size labelled images."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fer_ros.learning.data import FaceDataset, load_dataset
from fer_ros.models import Ensemble, LoadedModel, load_ensemble, record_metrics
from fer_ros.models.onnx_backend import RUNTIMES, load_onnx, onnx_probabilities
from fer_ros.perception.classifier import probabilities
from fer_ros.perception.preprocess import InputSpec, normalize, resize_to_input


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help="registry name, checkpoint path or ensemble 'a+b'")
    parser.add_argument('data', type=Path,
                        help='npz split (FER2013 or FER+ format); with --pipeline a folder of '
                             'images (label: sub-folder or class name in the file name), a CSV '
                             '(path,label) or an npz of full images (images, labels, classes)')
    parser.add_argument('--pipeline', action='store_true',
                        help="run the node's detector and crop on full-size images first")
    parser.add_argument('--detector', default='full_range',
                        help='with --pipeline or --framing: full_range, short_range or a .tflite '
                             'path')
    parser.add_argument('--detection-threshold', type=float, default=0.3,
                        help='with --pipeline: minimum face detection confidence')
    parser.add_argument('--no-align', action='store_true',
                        help="with --pipeline: do not roll faces to level the eyes (fer_node's "
                             'align_faces false)')
    parser.add_argument('--detection-tile', type=int, default=0,
                        help="with --pipeline: fer_node's detection_tile (0 = whole frame only)")
    parser.add_argument('--robustness', action='store_true',
                        help='accuracy under shifted, scaled, rotated, blurred, dark, '
                             'low-contrast, JPEG-30 and 24-px crops: a table and a plot')
    parser.add_argument('--framing', action='store_true',
                        help="measure how --detector frames the split's faces (the crop "
                             'geometry fer_node applies for it); the model is not used')
    parser.add_argument('--tta-flip', action='store_true', help='average with the mirrored face')
    parser.add_argument('--backend', choices=RUNTIMES, default='torch',
                        help="runtime of the model, as fer_node's backend parameter")
    parser.add_argument('--out', type=Path, help='folder for report.json, report.md, confusion.png')
    parser.add_argument('--latency', action='store_true',
                        help='also measure CPU ms per face at batch 1 and 8')
    parser.add_argument('--record', action='store_true',
                        help='store the numbers in the checkpoint (what the registry shows)')
    args = parser.parse_args(argv)
    if args.data.is_dir() and not args.pipeline:
        parser.error(f'{args.data} is a folder: use --pipeline for full-size images')
    if args.framing:
        return _framing(args)
    if args.robustness:
        if args.pipeline or args.record:
            parser.error('--robustness perturbs face crops: not with --pipeline or --record')
        return _robustness(args)
    try:
        report, text = (_pipeline_report(args) if args.pipeline else _crop_report(args))
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    print(text)
    prefix = (f'{args.data.parent.name}_{args.data.stem}' + ('_pipeline' if args.pipeline else '')
              + ('_flip' if args.tta_flip else '')
              + ('' if args.backend == 'torch' else f'_{args.backend}'))
    numbers = {f'{prefix}_acc': round(report['accuracy'], 4),
               f'{prefix}_macro_f1': round(report['macro_f1'], 4)}
    if args.pipeline:
        numbers[f'{prefix}_detection_rate'] = round(report['detection_rate'], 4)
    if args.latency:
        model = load_ensemble(args.model)
        numbers.update({f'cpu_ms_per_face_b{b}': round(sum(
            measure_latency(m.module, m.spec.input, b) for m in model.members), 3)
            for b in (1, 8)})
    print(json.dumps(numbers))
    if args.record:
        if not Path(args.model).is_file():
            parser.error('--record needs a checkpoint path; '
                         'registered ensembles keep their numbers in fer_ros/models/__init__.py')
        recorded = record_metrics(args.model, numbers)
        card = Path(args.model).with_suffix('.md')
        if card.is_file():
            update_card(card, recorded)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / 'report.json').write_text(json.dumps(report, indent=1))
        (args.out / 'report.md').write_text(text)
        if report['samples']:
            save_confusion_png(report, args.out / 'confusion.png')
        print(f'report written to {args.out}')


def _framing(args: argparse.Namespace) -> None:
    from fer_ros.learning.framing import measure_framing
    from fer_ros.perception.detection import FaceDetector

    images = load_dataset(args.data).images
    with FaceDetector(args.detector, args.detection_threshold) as detector:
        framing, found = measure_framing(images, detector)
    print(f'{args.detector} on {args.data.name}: {framing} ({found} of {len(images)} faces found)')


def _robustness(args: argparse.Namespace) -> None:
    from fer_ros.learning.robustness import robustness, robustness_markdown, save_robustness_png

    report = robustness(load_ensemble(args.model), load_dataset(args.data), args.tta_flip,
                        args.backend)
    text = robustness_markdown(report)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / 'robustness.json').write_text(json.dumps(report, indent=1))
        (args.out / 'robustness.md').write_text(text)
        save_robustness_png(report, args.out / 'robustness.png')
        print(f'report written to {args.out}')


def _crop_report(args: argparse.Namespace) -> tuple[dict, str]:
    dataset = load_dataset(args.data)
    report = evaluate(load_ensemble(args.model), dataset, args.tta_flip, args.backend)
    return report, markdown(report)


def _pipeline_report(args: argparse.Namespace) -> tuple[dict, str]:
    from fer_ros.learning.evaluate_pipeline import (evaluate_pipeline, labelled_images,
                                                    pipeline_markdown)
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.pipeline import FerPipeline
    from fer_ros.perception.tiling import make_detector

    items = labelled_images(args.data)  # refuses unknown labels before loading any model
    with make_detector(args.detector, args.detection_threshold, 0,
                       args.detection_tile) as detector:
        pipeline = FerPipeline(detector, ExpressionClassifier(
            args.model, 'cpu', args.tta_flip, args.backend, align=not args.no_align))
        report = evaluate_pipeline(pipeline, items)
    report.update(model=args.model, data=str(args.data), tta_flip=args.tta_flip,
                  backend=args.backend)
    return report, pipeline_markdown(report)


if __name__ == '__main__':
    main()
