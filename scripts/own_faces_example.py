"""The own-faces loop of docs/own_faces.md on real labels: a robot's users are KDEF's 14
val people; it records their session-A photos, they are labelled, the default model is
fine-tuned on them and compared before and after on their session-B photos (another day).

    .venv/bin/python scripts/own_faces_example.py [--work DIR]      # needs ../shared

Prints the before/after table that fer_train writes (before_after.md).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KDEF = ROOT.parent / 'shared' / 'data' / 'kdef'


def photos_of(session: str, out: Path) -> list[str]:
    """The val people's photos of one session, copied into out; their labels in file order."""
    out.mkdir(parents=True)
    with (KDEF / 'index.csv').open(newline='') as f:
        rows = [r for r in csv.DictReader(f) if r['split'] == 'val' and r['session'] == session]
    for i, row in enumerate(rows):
        shutil.copy(KDEF / row['path'], out / f'{i:04d}_{row["identity"]}_{row["label"]}.jpg')
    return [r['label'] for r in rows]


def run(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / args[0]), *args[1:]], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work', type=Path, help='working folder (default: a temporary one)')
    args = parser.parse_args()
    if not (KDEF / 'index.csv').is_file():
        sys.exit(f'{KDEF}: not found (this example needs ../shared)')
    from fer_ros.learning.label import LabelStore
    from fer_ros.learning.recorded import read_index

    work = args.work or Path(tempfile.mkdtemp(prefix='own_faces_'))
    for session, folder in (('A', 'day1'), ('B', 'day2')):
        labels = photos_of(session, work / f'photos_{folder}')
        run('fer_record', str(work / f'photos_{folder}'), '--out', str(work / folder),
            '--min-change', '0', '--no-progress')
        by_label: dict[str, list[str]] = {}  # each face labelled, as on fer_label's page
        for row in read_index(work / folder):
            by_label.setdefault(labels[row['frame']], []).append(row['crop'])
        store = LabelStore(work / folder)
        for label, crops in by_label.items():
            store.label(crops, label)
    run('fer_train', str(work / 'day1'), '--val', str(work / 'day2'), '--init', 'fer_cnn_posed',
        '--crop-margin', '0.05', '--freeze-epochs', '3', '--backbone-lr-scale', '0.1',
        '--epochs', '15', '--lr', '0.01', '--batch-size', '32', '--threads', '1',
        '--no-progress', '--out', str(work / 'my_model'))
    print((work / 'my_model' / 'before_after.md').read_text())


if __name__ == '__main__':
    main()
