"""fer_train: train an expression model on FER2013 / FER+ style npz files.

Writes to --out: best.pt (a checkpoint the registry and fer_node load), last.pt
(full training state for --resume), log.csv (one row per epoch), card.md and
card.json (data, recipe, metrics, latency), confusion.png and curves.png.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import torch

from fer_ros.learning.config import TrainConfig
from fer_ros.learning.trainer import Trainer
from fer_ros.models import ModelError
from fer_ros.perception.classifier import DeviceError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    defaults = TrainConfig(train='')
    parser.add_argument('train', nargs='?', help='training npz (FER2013 or FER+ format)')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--resume', type=Path, help='continue from a last.pt state file')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--epochs-this-run', type=int, default=0,
                        help='stop after this many epochs; continue later with --resume')
    for f in fields(TrainConfig):
        if f.name == 'train':
            continue
        default = getattr(defaults, f.name)
        if f.name == 'arch_kwargs':
            parser.add_argument('--arch-kwargs', type=json.loads,
                                help='JSON, e.g. {"widths": [24, 48, 96, 192]}')
        elif isinstance(default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}",
                                type=lambda s: s.lower() in ('1', 'true', 'yes'),
                                help=f.metadata.get('help', '') + f' (true/false; default: '
                                f'{default})')
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default),
                                help=f.metadata.get('help', f'default: {default}'))
    args = parser.parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.name != 'train' and getattr(args, f.name) is not None}
    if args.resume:
        state = torch.load(args.resume, map_location='cpu', weights_only=True)
        cfg = TrainConfig(**{**state['config'], **given})
    elif args.train:
        cfg = TrainConfig(train=args.train, **given)
    else:
        parser.error('give a training npz, or --resume')
    try:
        trainer = Trainer(cfg, args.out, args.resume)
    except (ValueError, ModelError, DeviceError) as exc:
        parser.error(str(exc))
    if args.resume:
        print(f'resuming at epoch {trainer.epoch}, step {trainer.step}')
    best = trainer.fit(not args.no_progress, args.epochs_this_run)
    if best is None:
        print(f'stopped at epoch {trainer.epoch}; continue with --resume {args.out / "last.pt"}')
    else:
        print((args.out / 'card.md').read_text())


if __name__ == '__main__':
    main()
