"""The model card fer_train writes beside best.pt: card.json, card.md and the plots."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from fer_ros.learning.scoring import markdown, save_confusion_png


def write_card(out: Path, card: dict, report: dict) -> None:
    """card.json, card.md, confusion.png and curves.png (from log.csv) in out."""
    save_confusion_png(report, out / 'confusion.png')
    save_curves_png(out / 'log.csv', out / 'curves.png')
    (out / 'card.json').write_text(json.dumps(card, indent=1))
    (out / 'card.md').write_text(_card_markdown(card, report))


def write_before_after(out: Path, before: dict, after: dict) -> None:
    """before_after.md and confusion_before.png: the starting model and the trained one on the
    same held-out faces, overall and per class."""
    save_confusion_png(before, out / 'confusion_before.png')
    lines = [f"# {before['model']} before and after fine-tuning\n",
             f"Held-out faces: {after['data']} ({sum(map(sum, after['confusion']))}).\n",
             '| | before | after |', '|---|---|---|',
             f"| accuracy | {before['accuracy']:.3f} | {after['accuracy']:.3f} |",
             f"| macro-F1 | {before['macro_f1']:.3f} | {after['macro_f1']:.3f} |"]
    for name, recall in after['per_class_recall'].items():
        lines.append(f"| {name} recall | {before['per_class_recall'].get(name, 0.0):.3f} | "
                     f'{recall:.3f} |')
    lines += ['', '![before](confusion_before.png) ![after](confusion.png)', '']
    (out / 'before_after.md').write_text('\n'.join(lines))


def save_curves_png(log_csv: Path, path: Path) -> None:
    """Loss and accuracy per epoch, from log.csv."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    with log_csv.open() as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r['epoch']) for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (('train_loss', 'train'), ('val_loss', 'val')):
        loss_ax.plot(epochs, [float(r[key]) for r in rows], label=label)
    for key, label in (('train_acc', 'train'), ('val_acc', 'val')):
        acc_ax.plot(epochs, [float(r[key]) for r in rows], label=label)
    loss_ax.set(xlabel='epoch', ylabel='loss')
    acc_ax.set(xlabel='epoch', ylabel='accuracy')
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _card_markdown(card: dict, report: dict) -> str:
    m = card['metrics']
    recipe = ', '.join(f'{k}={v}' for k, v in card['recipe'].items() if k not in ('train', 'val'))
    return (f"# Model card: {card['name']}\n\n"
            f"- architecture: {card['architecture']} ({card['parameters']:,} parameters)\n"
            f"- input: {card['input']}\n- classes: {', '.join(card['class_names'])}\n"
            f"- training data: {card['train_data']} ({card['train_samples']} images)\n"
            f"- recipe: {recipe}\n- epochs run: {card['epochs_run']}\n"
            f"- validation: {m['val_data']}: accuracy {m['val_acc']:.4f} "
            f"(flip TTA {m['val_acc_flip_tta']:.4f}), macro-F1 {m['val_macro_f1']:.4f}\n"
            f"- CPU latency per face at the end of training: "
            f"{m['cpu_ms_per_face_b1']:.2f} ms at batch 1, "
            f"{m['cpu_ms_per_face_b8']:.2f} ms at batch 8 ({m['torch_threads']} threads)\n\n"
            + markdown(report).split('\n', 2)[2] +
            '\n![confusion](confusion.png)\n\n![training curves](curves.png)\n')
