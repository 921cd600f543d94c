"""fer_evaluate: accuracy, macro-F1, per-class recall and confusion matrix of an expression
model on an npz split of face crops, mapping model classes to dataset classes by name; with
--pipeline, of the whole chain (detector, crop, classifier) on full-size labelled images."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_ros.learning.data import load_dataset
from fer_ros.learning.scoring import (evaluate, markdown, measure_latency, save_confusion_png,
                                      update_card)
from fer_ros.models import load_ensemble, record_metrics
from fer_ros.models.onnx_backend import RUNTIMES


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
