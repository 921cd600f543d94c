"""fer_panel: the validation panel models are chosen on, one command.

Four sets, each a different kind of face: FER2013 PublicTest (web photos, hard labels), FER+
valid (the same pixels, majority of 10 votes), and the val people of KDEF and CFEE (posed studio
photos of people never trained on), the last two through the node's own chain: the detector
finds the face in the photo, the node's window cuts it, the classifier reads it; a photo where
no face is found counts as wrong. Models are ranked by SELECTION_RULE (rank).

With --record the numbers go into each checkpoint's metrics and model card, where
test_panel.py recomputes them.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_ros.learning.data import load_dataset
from fer_ros.learning.posed import posed_rows
from fer_ros.learning.scoring import member_probabilities, metrics
from fer_ros.models import Ensemble, list_ensembles, list_models, load_ensemble, record_metrics
from fer_ros.models.onnx_backend import PANEL_SETS, RUNTIMES

PANEL = PANEL_SETS
CROP_SETS = {'fer2013': 'fer2013/public_test.npz', 'ferplus': 'ferplus/valid.npz'}
POSED_SETS = tuple(s for s in PANEL if s not in CROP_SETS)  # posed-face folders of index.csv
SELECTION_RULE = ('the worst of the four sets: the models whose worst set is within '
                  'one point of the best worst set, by their mean over the four, then the rest '
                  'by their worst set')
TIE = 0.01  # about the sampling error of PublicTest (3,589 faces: ±0.8 points)


def rank(scores: dict[str, dict[str, float]]) -> list[str]:
    """Model names, best first, by SELECTION_RULE, from {model: {set: accuracy}}."""
    worst = {n: min(s.values()) for n, s in scores.items()}
    mean = {n: sum(s.values()) / len(s) for n, s in scores.items()}
    best = max(worst.values(), default=0.0)

    def key(name: str) -> tuple[bool, float]:
        tied = worst[name] >= best - TIE
        return not tied, -mean[name] if tied else -worst[name]
    return sorted(scores, key=key)


PREFIX = 'panel_'


@dataclass
class PosedFaces:
    """A posed val split as the node's detector saw it: per photo, the largest face found."""

    name: str
    images: list[np.ndarray]
    labels: list[str]
    faces: list[tuple | None]  # (box, keypoints) or None where no face was found


def detect_posed(root: Path, name: str, detector) -> PosedFaces:
    images, labels, faces = [], [], []
    for row in posed_rows(root / name, 'val'):
        image = cv2.imread(str(root / name / row['path']), cv2.IMREAD_COLOR)
        found = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        face = max(found, key=lambda f: f.width * f.height) if found else None
        images.append(image)
        labels.append(row['label'])
        faces.append((face.box, face.keypoints) if face else None)
    return PosedFaces(name, images, labels, faces)


def posed_probabilities(classifier, posed: PosedFaces, framing) -> np.ndarray:
    """(photos, classifier classes) probabilities of the largest face of each photo, as the
    node computes them; a zero row where no face was found."""
    probs = np.zeros((len(posed.images), len(classifier.class_names)), np.float32)
    for i, (image, face) in enumerate(zip(posed.images, posed.faces)):
        if face is not None:
            probs[i] = classifier.predict(image, [face[0]], [face[1]], framing)[0]
    return probs


def posed_report(model: Ensemble, member_probs: list[np.ndarray], posed: PosedFaces) -> dict:
    """Metrics over every photo of the split (a photo without a face counts as wrong)."""
    classes = model.class_names + tuple(sorted({c for c in posed.labels
                                                if c not in model.class_names}))
    truth = [classes.index(c) for c in posed.labels]
    probs = model.combine(member_probs, classes)
    for i, face in enumerate(posed.faces):
        if face is None:  # scored as the next class: wrong in accuracy, recall and confusion
            probs[i] = np.eye(len(classes))[(truth[i] + 1) % len(classes)]
    report = metrics(probs, np.eye(len(classes), dtype=np.float32)[truth], classes)
    report['no_face'] = sum(f is None for f in posed.faces)
    return report


def run_panel(models: list[str], root: Path, tta_flip: bool = False,
              backend: str = 'torch') -> dict[str, dict[str, dict]]:
    """{model: {set: report}} over the panel. Detection runs once per photo, and each member
    of the models and ensembles asked for is run once per set."""
    from fer_ros.perception.classifier import ExpressionClassifier
    from fer_ros.perception.detection import FaceDetector

    crops = {name: load_dataset(root / path) for name, path in CROP_SETS.items()}
    with FaceDetector('full_range', 0.3) as detector:
        posed = {name: detect_posed(root, name, detector) for name in POSED_SETS}
        framing = detector.framing
    cache: dict[tuple, np.ndarray] = {}

    def member(m, set_name: str) -> np.ndarray:
        key = (m.spec.name, str(m.path), set_name)
        if key not in cache:
            if set_name in crops:
                cache[key] = member_probabilities(m, crops[set_name], tta_flip, backend)
            else:
                single = ExpressionClassifier(str(m.path or m.spec.name), 'cpu', tta_flip,
                                              backend)
                cache[key] = posed_probabilities(single, posed[set_name], framing)
        return cache[key]

    results = {}
    for name in models:
        model = load_ensemble(name)
        reports = {s: metrics(model.combine([member(m, s) for m in model.members],
                                            d.class_names), d.targets, d.class_names)
                   for s, d in crops.items()}
        reports.update({s: posed_report(model, [member(m, s) for m in model.members], p)
                        for s, p in posed.items()})
        results[name] = reports
    return results


def latency_metrics(model: Ensemble) -> dict[str, float]:
    """CPU ms per face at batch 1 and 8 on one thread, torch and (where it exists) int8 ONNX."""
    import torch

    from fer_ros.learning.scoring import lowest_median_ms, measure_latency
    from fer_ros.models import ModelError
    from fer_ros.models.onnx_backend import load_onnx

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {f'cpu_ms_per_face_b{b}': round(sum(measure_latency(m.module, m.spec.input, b)
                                                  for m in model.members), 3) for b in (1, 8)}
    finally:
        torch.set_num_threads(threads)
    try:
        graphs = [(load_onnx(m, int8=True), m.spec.input) for m in model.members]
    except ModelError:
        return out
    for b in (1, 8):
        out[f'cpu_ms_per_face_b{b}_onnxruntime_int8'] = round(sum(lowest_median_ms(
            lambda g=g, x=np.zeros((b, i.channels, i.size, i.size), np.float32): g(x)) / b
            for g, i in graphs), 3)
    return out


def panel_metrics(reports: dict[str, dict], suffix: str = '') -> dict[str, float]:
    """The numbers a card records: per set accuracy, macro-F1 and per-class recall, and the
    worst set's accuracy."""
    out = {}
    for set_name, r in reports.items():
        key = f'{PREFIX}{set_name}{suffix}'
        out[f'{key}_acc'] = round(r['accuracy'], 4)
        out[f'{key}_macro_f1'] = round(r['macro_f1'], 4)
        for cls, recall in r['per_class_recall'].items():
            out[f'{key}_recall_{cls}'] = round(recall, 4)
    out[f'{PREFIX}worst{suffix}_acc'] = min(out[f'{PREFIX}{s}{suffix}_acc'] for s in reports)
    return out


def panel_markdown(name: str, reports: dict[str, dict]) -> str:
    classes = sorted({c for r in reports.values() for c in r['per_class_recall']})
    lines = [f'| set ({name}) | accuracy | macro-F1 | ' + ' | '.join(classes) + ' |',
             '|---|---|---|' + '---|' * len(classes)]
    for set_name, r in reports.items():
        recall = [f"{r['per_class_recall'][c]:.2f}" if c in r['per_class_recall'] else '–'
                  for c in classes]
        lines.append(f"| {set_name} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                     + ' | '.join(recall) + ' |')
    worst = min(r['accuracy'] for r in reports.values())
    lines.append(f'| **worst** | **{worst:.4f}** | | ' + ' | '.join([''] * len(classes)) + ' |')
    return '\n'.join(lines) + '\n'


PANEL_HEADING = 'Validation panel'


def update_card_panel(card: Path, table: str, backend: str = 'torch') -> None:
    """Put (or replace) the panel table of a backend into a model card, before its
    recorded-metrics section."""
    from fer_ros.learning.scoring import RECORDED_HEADING
    heading = PANEL_HEADING + ('' if backend == 'torch' else f' ({backend})')  # after '## '
    text = card.read_text()
    head, sep, tail = text.partition(f'\n{RECORDED_HEADING}\n')
    sections = head.rstrip('\n').split('\n## ')
    kept = [x.rstrip('\n') for x in sections[:1] + [
        x for x in sections[1:] if not x.startswith(heading + '\n')]]
    section = (f'## {heading}\n\n`fer_panel{"" if backend == "torch" else " --backend " + backend}`'
               " (KDEF and CFEE: val people, through the node's detector and crop; a photo "
               'without a face counts as wrong); models are ranked by their worst set, near '
               'ties by their mean (fer_ros.learning.panel.rank).'
               f'\n\n{table}')
    card.write_text('\n\n## '.join(kept) + '\n\n' + section + (f'{sep}{tail}' if sep else ''))


def record(name: str, numbers: dict, table: str, backend: str, tta_flip: bool) -> None:
    """Into the checkpoint and its card; a registered model or ensemble without a checkpoint
    of its own into PANEL_RECORDS, which the registry reads."""
    from fer_ros.models import PANEL_RECORDS
    model = load_ensemble(name)
    path = model.members[0].path if len(model.members) == 1 else None
    if path is not None:
        record_metrics(path, numbers)
        if path.with_suffix('.md').is_file() and not tta_flip:
            update_card_panel(path.with_suffix('.md'), table, backend)
        return
    if not any(s.name == name for s in [*list_models(), *list_ensembles()]):
        raise ValueError(f'--record: {name} is neither a checkpoint nor a registered model')
    records = json.loads(PANEL_RECORDS.read_text()) if PANEL_RECORDS.is_file() else {}
    records[name] = {**records.get(name, {}), **numbers}
    PANEL_RECORDS.write_text(json.dumps(records, indent=1, sort_keys=True) + '\n')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('models', nargs='+', help='registry names, checkpoints or ensembles')
    parser.add_argument('--data', type=Path, default=Path('../shared/data'),
                        help='folder holding fer2013/, ferplus/, kdef/ and cfee/')
    parser.add_argument('--tta-flip', action='store_true')
    parser.add_argument('--backend', default='torch', choices=RUNTIMES)
    parser.add_argument('--record', action='store_true',
                        help='store the numbers in each checkpoint and its model card')
    parser.add_argument('--latency', action='store_true',
                        help='also measure CPU ms per face (one thread; torch and int8 ONNX)')
    parser.add_argument('--json', type=Path, help='write all reports here')
    args = parser.parse_args(argv)
    missing = [p for p in (*CROP_SETS.values(), *POSED_SETS) if not (args.data / p).exists()]
    if missing:
        parser.error(f"{args.data}: missing {', '.join(missing)}")
    results = run_panel(args.models, args.data, args.tta_flip, args.backend)
    suffix = ('_flip' if args.tta_flip else '') + (
        '' if args.backend == 'torch' else f'_{args.backend}')
    for name, reports in results.items():
        print(panel_markdown(name, reports))
        numbers = panel_metrics(reports, suffix)
        if args.latency:
            numbers.update(latency_metrics(load_ensemble(name)))
            print(', '.join(f'{k} {v}' for k, v in numbers.items() if k.startswith('cpu_')))
        if args.record:
            record(name, numbers, panel_markdown(name, reports), args.backend, args.tta_flip)
    scores = {n: {s: r['accuracy'] for s, r in rs.items()} for n, rs in results.items()}
    print(f'ranked by {SELECTION_RULE}: ' + ', '.join(
        f'{n} (worst {min(scores[n].values()):.4f}, mean '
        f'{sum(scores[n].values()) / len(scores[n]):.4f})' for n in rank(scores)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
