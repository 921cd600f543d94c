"""fer_train: train an expression model on FER2013 / FER+ style npz files.

Writes to --out: best.pt (a checkpoint the registry and fer_node load), last.pt
(full training state for --resume), log.csv (one row per epoch), card.md and
card.json (data, recipe, metrics, latency), confusion.png and curves.png.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import json
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_ros.augment import Augment
from fer_ros.classifier import DeviceError, resolve_device
from fer_ros.data import FaceDataset, load_dataset
from fer_ros.evaluate import (dataset_tensor, ensemble_probabilities, markdown,
                              measure_latency, metrics, predict, save_confusion_png)
from fer_ros.losses import CenterLoss, balanced_class_weights, soft_cross_entropy
from fer_ros.models import (ARCHITECTURES, LoadedModel, ModelError, ModelSpec, average_by_name,
                            load_ensemble, load_model, save_checkpoint)
from fer_ros.preprocess import InputSpec

STATE_FORMAT = 'fer_ros.train_state/1'
LOG_FIELDS = ('epoch', 'step', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc',
              'val_macro_f1', 'seconds')


@dataclass
class TrainConfig:
    train: str
    val: str = ''                    # empty: hold out val_fraction of train
    val_fraction: float = 0.1
    name: str = 'fer_model'
    arch: str = 'fer_cnn'
    arch_kwargs: dict = field(default_factory=dict)
    init: str = field(default='', metadata={'help': 'fine-tune from this registry name or '
                      'checkpoint; classifier rows are matched to the classes by name'})
    teacher: str = field(default='', metadata={'help': "distil from this model, ensemble "
                         "('a+b') or checkpoint: its flip-averaged probabilities on the "
                         'training images are mixed into the targets'})
    distill_weight: float = 0.5      # with teacher: the teacher's share of each target
    input_size: int = 48
    crop_margin: float = 0.1
    epochs: int = 40
    batch_size: int = 64
    optimizer: str = 'sgd'           # sgd | adamw
    lr: float = 0.05
    weight_decay: float = 5e-4
    schedule: str = 'cosine'         # cosine | plateau
    warmup_epochs: float = 1.0
    loss: str = 'auto'               # auto | ce | soft_ce  (auto: soft_ce for vote data)
    class_weights: str = 'none'      # none | balanced
    label_smoothing: float = 0.0
    center_loss_weight: float = 0.0  # 0 disables center loss
    center_lr: float = 0.5
    ema_decay: float = field(default=0.0, metadata={'help': 'validate and keep an exponential '
                             'moving average of the weights with this decay per step, e.g. '
                             '0.999 (0 disables)'})
    align_faces: bool = field(default=False, metadata={'help': "crop every training and "
                              "validation face as fer_node does (the detector's box, framing "
                              'and eye roll on the face upscaled 4x): a few minutes per split'})
    augment: bool = True
    capture_augment: bool = field(default=False, metadata={'help': 'augment as a robot camera '
                                  'captures faces: wider crop jitter, low light and contrast, '
                                  'blur, low resolution, JPEG, noise (fer_ros/degrade.py)'})
    patience: int = 10               # early stopping, epochs without val improvement
    seed: int = 0
    threads: int = 0                 # 0: torch default
    device: str = field(default='cpu', metadata={'help': 'cpu, cuda, cuda:N or auto; on a GPU '
                        'the data stay on the device and training runs in bfloat16 autocast'})
    max_batches: int = 0             # per epoch; 0 = all (for smoke tests)


def data_name(path: str) -> str:
    """'…/fer2013/train.npz' -> 'fer2013/train.npz': what cards record, without machine paths;
    each member of an 'a+b' ensemble (a --teacher) is shortened the same way."""
    return '+'.join('/'.join(Path(p).parts[-2:]) for p in path.split('+')) if path else ''


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _class_aligned(val: FaceDataset, names: tuple[str, ...]) -> FaceDataset:
    extra = [c for c in val.class_names if c not in names]
    if extra:
        raise ValueError(f'validation classes {extra} are not among the training classes {names}')
    targets = average_by_name([val.targets], [val.class_names], names)
    return FaceDataset(val.images, targets, names, val.source)


def _splits(cfg: TrainConfig) -> tuple[FaceDataset, FaceDataset]:
    train = load_dataset(cfg.train)
    if cfg.val:
        return train, _class_aligned(load_dataset(cfg.val), train.class_names)
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    n_val = max(int(len(train) * cfg.val_fraction), 1)
    return train.subset(order[n_val:]), train.subset(order[:n_val])


def _aligned(data: FaceDataset) -> FaceDataset:
    from fer_ros.detection import FaceDetector
    from fer_ros.framing import aligned_faces
    with FaceDetector() as detector:
        return FaceDataset(aligned_faces(data.images, detector), data.targets,
                           data.class_names, data.source)


def init_from(model: nn.Module, source: LoadedModel, arch: str, arch_kwargs: dict,
              class_names: tuple[str, ...]) -> None:
    """Start from another model's weights: the body as it is, the classifier's rows matched
    to class_names by name (a class the source lacks keeps its fresh initialisation)."""
    kwargs = json.loads(json.dumps(source.spec.arch_kwargs))  # tuples -> lists, like the CLI
    if (source.spec.architecture, kwargs) != (arch, json.loads(json.dumps(arch_kwargs))):
        raise ValueError(f"--init {source.spec.name} is {source.spec.architecture} {kwargs}; "
                         f"train with --arch {source.spec.architecture} "
                         f"--arch-kwargs '{json.dumps(kwargs)}'")
    state = model.state_dict()
    for key, value in source.module.state_dict().items():
        if key.startswith('classifier.'):
            for i, name in enumerate(class_names):
                if name in source.spec.class_names:
                    state[key][i] = value[source.spec.class_names.index(name)]
        else:
            state[key] = value
    model.load_state_dict(state)


class WeightEMA:
    """An exponential moving average of a model's weights and batch-norm statistics, as timm's
    ModelEma; the decay warms up as min(decay, (1 + n) / (10 + n)) over the first updates."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f'ema_decay must be in (0, 1), not {decay}')
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema, new in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.is_floating_point():
                ema.lerp_(new, 1 - decay)
            else:
                ema.copy_(new)


class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, resume: Path | None = None):
        """With resume, continue from that last.pt; otherwise start from cfg.init if set."""
        self.cfg, self.out = cfg, out
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device, warning = resolve_device(cfg.device)
        if warning:
            print(warning, flush=True)
        if self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
        _seed_everything(cfg.seed)
        self.train_set, self.val_set = _splits(cfg)
        if cfg.align_faces:
            self.train_set, self.val_set = _aligned(self.train_set), _aligned(self.val_set)
        names = self.train_set.class_names
        self.spec = ModelSpec(
            name=cfg.name, architecture=cfg.arch,
            input=InputSpec(cfg.input_size, 1, 0.5, 0.5, cfg.crop_margin),
            class_names=names, weights=f'trained by fer_train on {data_name(cfg.train)}'
            + (f', starting from {data_name(cfg.init)}' if cfg.init else '')
            + (f', distilled from {data_name(cfg.teacher)}' if cfg.teacher else ''),
            license='see the training data licence', arch_kwargs=cfg.arch_kwargs)
        self.x_train = dataset_tensor(self.train_set, self.spec.input).to(self.device)
        self.t_train = torch.from_numpy(self.train_set.targets).to(self.device)
        self.x_val = dataset_tensor(self.val_set, self.spec.input).to(self.device)
        self.model = ARCHITECTURES[cfg.arch](num_classes=len(names), in_channels=1,
                                             **cfg.arch_kwargs)
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == 'sgd':
            self.optimizer = torch.optim.SGD(params, cfg.lr, momentum=0.9, nesterov=True,
                                             weight_decay=cfg.weight_decay)
        elif cfg.optimizer == 'adamw':
            self.optimizer = torch.optim.AdamW(params, cfg.lr, weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f'unknown optimizer {cfg.optimizer!r} (sgd, adamw)')
        self.steps_per_epoch = -(-len(self.x_train) // cfg.batch_size)
        if cfg.max_batches:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_batches)
        self.scheduler = self._scheduler()
        self.center = self.center_optimizer = None
        if cfg.center_loss_weight > 0:
            self.center = CenterLoss(len(names), self.model.num_features).to(self.device)
            self.center_optimizer = torch.optim.SGD(self.center.parameters(), cfg.center_lr)
        soft = cfg.loss == 'soft_ce' or (cfg.loss == 'auto' and
                                         not np.isin(self.train_set.targets, (0, 1)).all())
        if cfg.loss not in ('auto', 'ce', 'soft_ce'):
            raise ValueError(f'unknown loss {cfg.loss!r} (auto, ce, soft_ce)')
        self.fit_targets = self.t_train if soft else \
            nn.functional.one_hot(self.t_train.argmax(1), len(names)).float()
        if cfg.teacher:
            self.fit_targets = self._distilled(self.fit_targets)
        self.class_weights = balanced_class_weights(self.t_train) \
            if cfg.class_weights == 'balanced' else None
        self.augment = (Augment.capture() if cfg.capture_augment else Augment()) \
            if cfg.augment else None
        self.epoch, self.step, self.best_acc, self.stale = 0, 0, -1.0, 0
        if cfg.init and not resume:
            init_from(self.model, load_model(cfg.init), cfg.arch, cfg.arch_kwargs, names)
        self.ema = WeightEMA(self.model, cfg.ema_decay) if cfg.ema_decay else None
        if resume:
            self.load_state(resume)

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated, checkpointed and shipped."""
        return self.ema.module if self.ema else self.model

    def _distilled(self, targets: torch.Tensor) -> torch.Tensor:
        """Mix the teacher's probabilities (flip TTA) into the targets, class by name; a class
        the teacher lacks keeps only the label's share."""
        if not 0 < self.cfg.distill_weight <= 1:
            raise ValueError(f'distill_weight must be in (0, 1], not {self.cfg.distill_weight}')
        teacher = torch.from_numpy(ensemble_probabilities(
            load_ensemble(self.cfg.teacher), self.train_set, tta_flip=True)).to(self.device)
        w = self.cfg.distill_weight
        return (1 - w) * targets + w * teacher

    def _scheduler(self):
        cfg = self.cfg
        if cfg.schedule == 'plateau':
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, 'max', 0.5, 3)
        if cfg.schedule != 'cosine':
            raise ValueError(f'unknown schedule {cfg.schedule!r} (cosine, plateau)')
        total = cfg.epochs * self.steps_per_epoch
        warmup = max(int(cfg.warmup_epochs * self.steps_per_epoch), 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1)
            return float(0.5 * (1 + np.cos(np.pi * progress)))
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    # --- state -------------------------------------------------------------------------
    def save_state(self, path: Path) -> None:
        torch.save({
            'format': STATE_FORMAT, 'config': asdict(self.cfg), 'epoch': self.epoch,
            'step': self.step, 'best_acc': self.best_acc, 'stale': self.stale,
            'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'center': self.center.state_dict() if self.center else None,
            'center_optimizer': self.center_optimizer.state_dict() if self.center else None,
            'ema': self.ema.module.state_dict() if self.ema else None,
            'ema_updates': self.ema.updates if self.ema else 0,
        }, path)

    def load_state(self, path: Path) -> None:
        state = torch.load(path, map_location='cpu', weights_only=True)
        if state.get('format') != STATE_FORMAT:
            raise ValueError(f'{path} is not a fer_train state file')
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        if self.center:
            self.center.load_state_dict(state['center'])
            self.center_optimizer.load_state_dict(state['center_optimizer'])
        if self.ema:
            if state.get('ema') is None:
                raise ValueError(f'{path} was trained without ema_decay; resume without it')
            self.ema.module.load_state_dict(state['ema'])
            self.ema.updates = state['ema_updates']
        self.epoch, self.step = state['epoch'], state['step']
        self.best_acc, self.stale = state['best_acc'], state['stale']

    # --- loop --------------------------------------------------------------------------
    def _train_epoch(self, progress: bool) -> tuple[float, float]:
        cfg = self.cfg
        _seed_everything(cfg.seed * 1000 + self.epoch)  # same epoch, same batches and noise
        generator = torch.Generator().manual_seed(cfg.seed * 1000 + self.epoch)
        order = torch.from_numpy(np.random.default_rng(cfg.seed * 1000 + self.epoch)
                                 .permutation(len(self.x_train))).to(self.device)
        self.model.train()
        # sums stay on the device: reading them every step would stall a GPU
        total_loss = correct = torch.zeros((), device=self.device)
        seen = 0
        bar = _progress(self.steps_per_epoch, f'epoch {self.epoch + 1}/{cfg.epochs}', progress)
        for b in range(self.steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x, t, target = self.x_train[idx], self.t_train[idx], self.fit_targets[idx]
            if self.augment:
                x = self.augment(x, generator)
            x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits, features = self.model.forward_with_features(x)
            logits, features = logits.float(), features.float()
            loss = soft_cross_entropy(logits, target, self.class_weights, cfg.label_smoothing)
            if self.center:
                loss = loss + cfg.center_loss_weight * self.center(features, target)
                self.center_optimizer.zero_grad()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.center:
                # undo the loss weight on the centers' gradient, as in Wen et al.
                for p in self.center.parameters():
                    p.grad /= cfg.center_loss_weight
                self.center_optimizer.step()
            if self.ema:
                self.ema.update(self.model)
            if cfg.schedule == 'cosine':
                self.scheduler.step()
            self.step += 1
            total_loss = total_loss + loss.detach() * len(idx)
            correct = correct + (logits.argmax(1) == t.argmax(1)).sum()
            seen += len(idx)
            bar.update(loss=total_loss / seen, acc=correct / seen)
        bar.close()
        return float(total_loss) / seen, float(correct) / seen

    def _autocast(self):
        """bfloat16 autocast on a GPU; full precision on the CPU, where it would be slower."""
        if self.device.type == 'cuda':
            return torch.autocast('cuda', torch.bfloat16)
        return contextlib.nullcontext()

    def validate(self, tta_flip: bool = False) -> dict:
        probs = predict(self.eval_model, self.x_val, tta_flip=tta_flip)
        return metrics(probs, self.val_set.targets, self.val_set.class_names)

    def fit(self, progress: bool = True, epochs_this_run: int = 0) -> Path | None:
        """Train until cfg.epochs or early stopping; returns best.pt with its model card.
        With epochs_this_run, stop after that many epochs (resume later); returns None then."""
        self.out.mkdir(parents=True, exist_ok=True)
        stop_at = self.epoch + epochs_this_run if epochs_this_run else self.cfg.epochs
        log_path = self.out / 'log.csv'
        if self.epoch == 0 or not log_path.exists():
            with log_path.open('w', newline='') as f:
                csv.writer(f).writerow(LOG_FIELDS)
        while self.epoch < min(stop_at, self.cfg.epochs) and self.stale < self.cfg.patience:
            start = time.time()
            train_loss, train_acc = self._train_epoch(progress)
            report = self.validate()
            if self.cfg.schedule == 'plateau':
                self.scheduler.step(report['accuracy'])
            self.epoch += 1
            row = [self.epoch, self.step, self.optimizer.param_groups[0]['lr'], train_loss,
                   train_acc, report['cross_entropy'], report['accuracy'], report['macro_f1'],
                   time.time() - start]
            with log_path.open('a', newline='') as f:
                csv.writer(f).writerow([f'{v:.6g}' if isinstance(v, float) else v for v in row])
            if report['accuracy'] > self.best_acc:
                self.best_acc, self.stale = report['accuracy'], 0
                save_checkpoint(self.out / 'best.pt', self.eval_model, self.spec)
            else:
                self.stale += 1
            self.save_state(self.out / 'last.pt')
            print(f"epoch {self.epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                  f"val loss {report['cross_entropy']:.4f} acc {report['accuracy']:.4f} "
                  f"macro-F1 {report['macro_f1']:.4f} | best {self.best_acc:.4f}", flush=True)
        if self.epoch < self.cfg.epochs and self.stale < self.cfg.patience:
            return None
        return self.finish()

    def finish(self) -> Path:
        """Reload the best weights, measure them and write the model card."""
        best = torch.load(self.out / 'best.pt', map_location='cpu', weights_only=True)
        model = self.eval_model
        model.load_state_dict(best['state_dict'])
        model.eval()
        report = self.validate()
        report_tta = self.validate(tta_flip=True)
        latency = {f'cpu_ms_per_face_b{b}': measure_latency(model, self.spec.input, b)
                   for b in (1, 8)}
        recipe = {**asdict(self.cfg), 'train': data_name(self.cfg.train),
                  'val': data_name(self.cfg.val), 'init': data_name(self.cfg.init),
                  'teacher': data_name(self.cfg.teacher)}
        measured = {'val_data': recipe['val'] or
                    f"{self.cfg.val_fraction:.0%} held out of {recipe['train']}",
                    'val_acc': report['accuracy'], 'val_macro_f1': report['macro_f1'],
                    'val_acc_flip_tta': report_tta['accuracy'], **latency,
                    'torch_threads': torch.get_num_threads()}
        spec = replace(self.spec, metrics=measured)
        save_checkpoint(self.out / 'best.pt', model, spec, card={
            'config': recipe, 'epochs_run': self.epoch})
        report.update(model=self.cfg.name, data=measured['val_data'], tta_flip=False,
                      missing_classes=[])
        save_confusion_png(report, self.out / 'confusion.png')
        save_curves_png(self.out / 'log.csv', self.out / 'curves.png')
        card = {'name': self.cfg.name, 'architecture': self.cfg.arch,
                'parameters': sum(p.numel() for p in model.parameters()),
                'input': asdict(self.spec.input), 'class_names': list(self.spec.class_names),
                'train_data': recipe['train'], 'train_samples': len(self.train_set),
                'recipe': recipe, 'epochs_run': self.epoch, 'metrics': measured,
                'validation': report}
        (self.out / 'card.json').write_text(json.dumps(card, indent=1))
        (self.out / 'card.md').write_text(_card_markdown(card, report))
        return self.out / 'best.pt'


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


class _progress:
    """A one-line progress bar with loss, accuracy and ETA (no dependency)."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.done, self.start, self.last = 0, time.time(), 0.0

    def update(self, **values: float | torch.Tensor) -> None:
        self.done += 1
        now = time.time()
        if not self.enabled or (now - self.last < 0.5 and self.done < self.total):
            return
        self.last = now
        eta = (now - self.start) / self.done * (self.total - self.done)
        stats = ' '.join(f'{k} {v:.4f}' for k, v in values.items())
        bar = '#' * int(20 * self.done / self.total)
        print(f'\r{self.label} [{bar:20s}] {self.done}/{self.total} {stats} ETA {eta:5.0f}s',
              end='', flush=True)

    def close(self) -> None:
        if self.enabled:
            print(flush=True)


def main(argv: list[str] | None = None) -> Path | None:
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
    return best


if __name__ == '__main__':
    main()
