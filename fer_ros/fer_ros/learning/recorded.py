"""The files of a fer_record dataset folder, read and written by fer_record, fer_label and
fer_train: index.jsonl (a line per saved face, crops named <run>_<frame>_<track>) and
labels.json (crop -> class name or REJECT)."""
from __future__ import annotations

import json
from pathlib import Path

INDEX, LABELS = 'index.jsonl', 'labels.json'
REJECT = 'reject'  # not a face, too blurry: kept out of training


def read_index(folder: Path) -> list[dict]:
    """The rows of a folder's index.jsonl; FileNotFoundError without one."""
    path = folder / INDEX
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: record a dataset with fer_record first')
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def read_labels(folder: Path) -> dict[str, str]:
    """A folder's labels.json; empty when nothing is labelled yet."""
    path = folder / LABELS
    return json.loads(path.read_text()) if path.is_file() else {}


def run_of(row: dict) -> str:
    """The recording run (session) a row's face comes from."""
    return Path(row['crop']).name.split('_')[0]
