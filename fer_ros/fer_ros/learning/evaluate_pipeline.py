"""The whole chain on full-size labelled images, as users see it: the node's own detector,
crop and classifier (FerPipeline), with detection misses counted.

Labelled images come from a folder (label = the name of the image's folder, e.g. happy/1.jpg,
else the one class name in the file name, e.g. faceapi_disgusted.jpg), a CSV (columns path,label; paths relative to it)
or an npz of full images (images (N, H, W) gray or (N, H, W, 3) RGB, labels, classes).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from fer_ros.learning.data import canonical_class, canonical_classes
from fer_ros.learning.scoring import metrics
from fer_ros.models import EXPRESSIONS, average_by_name
from fer_ros.perception.pipeline import FerPipeline, Stopwatch
from fer_ros.perception.sources import IMAGE_SUFFIXES


@dataclass(frozen=True)
class LabelledImage:
    name: str
    label: str                        # canonical class name
    load: Callable[[], np.ndarray | None]  # BGR uint8, None if unreadable


def _label_of(path: Path) -> str | None:
    if label := canonical_class(path.parent.name):
        return label
    found = {c for token in re.split(r'[^A-Za-z]+', path.stem) if (c := canonical_class(token))}
    return found.pop() if len(found) == 1 else None


def _from_folder(root: Path) -> list[LabelledImage]:
    files = sorted(p for p in root.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
    items = [LabelledImage(str(p.relative_to(root)), _label_of(p) or '',
                           lambda p=p: cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in files]
    unlabelled = [i.name for i in items if not i.label]
    if unlabelled:
        raise ValueError(
            f'{root}: no class name in the sub-folder or file name of {len(unlabelled)} '
            f"image(s), e.g. {', '.join(unlabelled[:3])}; expected one of {', '.join(EXPRESSIONS)}"
            ' (or a common alias) as a sub-folder or in the file name')
    return items


def _from_csv(path: Path) -> list[LabelledImage]:
    with path.open(newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows or not {'path', 'label'} <= set(rows[0]):
        raise ValueError(f'{path}: expected a CSV with columns path,label')
    names = sorted({r['label'] for r in rows})
    mapped = dict(zip(names, canonical_classes(names, str(path))))
    return [LabelledImage(r['path'], mapped[r['label']],
                          lambda p=path.parent / r['path']: cv2.imread(str(p), cv2.IMREAD_COLOR))
            for r in rows]


def _from_npz(path: Path) -> list[LabelledImage]:
    with np.load(path, allow_pickle=False) as data:
        if not {'images', 'labels', 'classes'} <= set(data.files):
            raise ValueError(f'{path}: expected keys images, labels, classes')
        images, labels = data['images'], data['labels']
        classes = canonical_classes([str(c) for c in data['classes']], str(path))

    def bgr(i: int) -> np.ndarray:
        image = images[i]
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
    return [LabelledImage(f'{path.name}[{i}]', classes[int(k)], lambda i=i: bgr(i))
            for i, k in enumerate(labels)]


def labelled_images(source: Path) -> list[LabelledImage]:
    """Labelled full-size images of a folder, a CSV or an npz; unknown class names refused."""
    if source.is_dir():
        items = _from_folder(source)
    elif source.suffix.lower() == '.csv':
        items = _from_csv(source)
    elif source.suffix.lower() == '.npz':
        items = _from_npz(source)
    else:
        raise ValueError(f'{source}: expected a folder of images, a .csv or an .npz')
    if not items:
        raise ValueError(f'{source}: no images')
    return items


def _runs(pipeline: FerPipeline, items: list[LabelledImage]) -> Iterator[tuple]:
    for item in items:
        image = item.load()
        if image is None:
            yield item, None, {}
            continue
        watch = Stopwatch()
        yield item, pipeline.process(image, watch), watch.timings_ms


def evaluate_pipeline(pipeline: FerPipeline, items: list[LabelledImage]) -> dict:
    """Metrics over the images where a face was found (the largest face is the labelled
    one) and detection counts; `accuracy_all` counts an image without a face as wrong.

    Predictions range over the model's classes, as the node publishes them; labels the model
    cannot predict are listed in `missing_classes`."""
    model_classes = pipeline.classifier.class_names
    labels = {i.label for i in items}
    class_names = model_classes + tuple(c for c in EXPRESSIONS
                                        if c in labels and c not in model_classes)
    pipeline.classifier.predict(np.zeros((64, 64, 3), np.uint8), [(0, 0, 64, 64)])  # warm-up
    probs, targets, per_image, timings = [], [], [], []
    unreadable = no_face = several = 0
    for item, result, timing in _runs(pipeline, items):
        row = {'image': item.name, 'label': item.label}
        if result is None:
            unreadable += 1
        elif not result.faces:
            no_face += 1
        else:
            several += len(result.faces) > 1
            face = max(result.faces, key=lambda f: f.face.width * f.face.height)
            p = average_by_name([face.probabilities[None]], [model_classes], class_names)[0]
            probs.append(p)
            targets.append(np.eye(len(class_names), dtype=np.float32)[
                class_names.index(item.label)])
            timings.append(timing)
            row.update(predicted=class_names[int(p.argmax())],
                       probability=round(float(p.max()), 4), faces=len(result.faces))
        per_image.append(row)
    found = len(probs)
    report = (metrics(np.array(probs), np.array(targets), class_names) if found
              else {'samples': 0, 'accuracy': 0.0, 'macro_f1': 0.0, 'class_names': class_names})
    readable = len(items) - unreadable
    report.update(
        images=len(items), unreadable=unreadable, no_face=no_face, several_faces=several,
        detection_rate=found / readable if readable else 0.0,
        accuracy_all=report['accuracy'] * found / readable if readable else 0.0,
        missing_classes=[c for c in sorted(labels) if c not in model_classes],
        ms_per_image={s: round(float(np.median([t.get(s, 0.0) for t in timings])), 2)
                      for s in ('detect', 'classify')} if timings else {},
        per_image=per_image)
    return report


def pipeline_markdown(report: dict) -> str:
    lines = [f"# {report['model']} through the pipeline on {Path(report['data']).name}", '',
             f"- images: {report['images']} (unreadable {report['unreadable']}), no face found: "
             f"{report['no_face']}, several faces: {report['several_faces']}, detection rate: "
             f"{report['detection_rate']:.4f}",
             f"- accuracy where a face was found: {report['accuracy']:.4f} "
             f"({report['samples']} images), over all images: {report['accuracy_all']:.4f}",
             f"- macro-F1: {report['macro_f1']:.4f}",
             f"- ms per image: {report['ms_per_image']}"]
    if report['missing_classes']:
        lines.append(f"- labels the model cannot predict: {', '.join(report['missing_classes'])}")
    if report.get('per_class_recall'):
        lines += ['', '| class | recall |', '|---|---|']
        lines += [f'| {c} | {r:.3f} |' for c, r in report['per_class_recall'].items()]
    return '\n'.join(lines) + '\n'
