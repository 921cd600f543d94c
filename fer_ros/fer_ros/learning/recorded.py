"""The files of a fer_record dataset folder, read and written by fer_record, fer_label and
fer_train: index.jsonl (a line per saved face, crops named <run>_<frame>_<track>) and
labels.json (crop -> class name or REJECT)."""
from __future__ import annotations

import json
from pathlib import Path

INDEX, LABELS = 'index.jsonl', 'labels.json'
REJECT = 'reject'  # not a face, too blurry: kept out of training
ROW_FIELDS = {'crop': str, 'context': str, 'track': int, 'frame': int, 'prediction': str,
              'probabilities': dict}  # what the readers use of a row


def _row_problem(row: object, root: Path) -> str | None:
    """Why a parsed line is no usable row: a field missing or of another type, or a file
    outside the folder (absolute, '..', a symlink out), or None."""
    if not isinstance(row, dict):
        return 'not a JSON object'
    for name, kind in ROW_FIELDS.items():
        if not isinstance(row.get(name), kind) or isinstance(row.get(name), bool):
            return f'{name!r} missing or not a {kind.__name__}'
    for name in ('crop', 'context'):
        target = (root / row[name]).resolve()
        if not target.is_relative_to(root) or target == root:
            return f'{name} {row[name][:100]!r} lies outside the dataset folder'
    return None


def read_index(folder: Path, problems: list[str] | None = None) -> list[dict]:
    """The rows of a folder's index.jsonl; FileNotFoundError without one. A line that is no
    usable row (a torn last line after a full disk, a path out of the folder) is skipped and,
    with `problems`, reported by its file line."""
    path = folder / INDEX
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: record a dataset with fer_record first')
    root, rows = folder.resolve(), []
    with path.open('rb') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                problem = 'not a complete JSON line (a write cut short?)'
            else:
                problem = _row_problem(row, root)
            if problem is None:
                rows.append(row)
            elif problems is not None:
                problems.append(f'{path.name} line {number}: {problem}')
    return rows


def read_labels(folder: Path) -> dict[str, str]:
    """A folder's labels.json (its string entries); empty when nothing is labelled yet.
    ValueError when it is no JSON object."""
    path = folder / LABELS
    labels = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(labels, dict):
        raise ValueError(f'{path} is not a JSON object of crop: label')
    return {k: v for k, v in labels.items() if isinstance(v, str)}


def run_of(row: dict) -> str:
    """The recording run (session) a row's face comes from."""
    return Path(row['crop']).name.split('_')[0]
