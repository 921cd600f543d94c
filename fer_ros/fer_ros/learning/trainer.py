"""The training loop behind fer_train: data, optimiser, schedule, distillation, checkpoints."""
from __future__ import annotations

import contextlib
import csv
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_ros.common.input_spec import InputSpec
from fer_ros.learning.augment import Augment
from fer_ros.learning.card import write_before_after, write_card
from fer_ros.learning.config import TrainConfig, data_name
from fer_ros.learning.data import FaceDataset
from fer_ros.learning.losses import CenterLoss, balanced_class_weights, soft_cross_entropy
from fer_ros.learning.model_weights import WeightEMA, init_from
from fer_ros.learning.progress import Progress
from fer_ros.learning.scoring import (dataset_tensor, ensemble_probabilities, measure_latency,
                                      metrics, predict)
from fer_ros.learning.splits import aligned, mixed, train_val_splits
from fer_ros.models import (ARCHITECTURES, ModelSpec, average_by_name, load_ensemble, load_model,
                            save_checkpoint)
from fer_ros.perception.classifier import resolve_device

STATE_FORMAT = 'fer_ros.train_state/1'
LOG_FIELDS = ('epoch', 'step', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc',
              'val_macro_f1', 'val_worst_acc', 'seconds')


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
        self.train_set, self.val_sets = train_val_splits(cfg.train, cfg.val, cfg.val_fraction,
                                                         cfg.seed)
        if cfg.align_faces:  # faces with groups (tracks, people) are node crops already
            self.train_set, *self.val_sets = [d if d.groups is not None else aligned(d)
                                              for d in [self.train_set, *self.val_sets]]
        self.n_primary = len(self.train_set)  # the faces a teacher labels; posed ones follow
        if cfg.posed:
            self.train_set = mixed(self.train_set, cfg.posed, cfg.posed_repeat, cfg.input_size,
                                   cfg.compound)
        names = self.train_set.class_names
        self.spec = ModelSpec(
            name=cfg.name, architecture=cfg.arch,
            input=InputSpec(cfg.input_size, 1, 0.5, 0.5, cfg.crop_margin),
            class_names=names, weights=f'trained by fer_train on {data_name(cfg.train)}'
            + (f' and the posed faces of {data_name(cfg.posed)}' if cfg.posed else '')
            + (f', starting from {data_name(cfg.init)}' if cfg.init else '')
            + (f', distilled from {data_name(cfg.teacher)}' if cfg.teacher else ''),
            license='research use only, no redistribution (the terms of the posed sets)'
            if cfg.posed else 'see the training data licence', arch_kwargs=cfg.arch_kwargs)
        self.x_train = dataset_tensor(self.train_set, self.spec.input).to(self.device)
        self.t_train = torch.from_numpy(self.train_set.targets).to(self.device)
        self.x_vals = [dataset_tensor(v, self.spec.input).to(self.device) for v in self.val_sets]
        self.model = ARCHITECTURES[cfg.arch](num_classes=len(names), in_channels=1,
                                             **cfg.arch_kwargs)
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        head = {id(p) for p in self.model.classifier.parameters()}
        self.backbone = [p for p in self.model.parameters() if id(p) not in head]
        params = [{'params': list(self.model.classifier.parameters()), 'lr': cfg.lr},
                  {'params': self.backbone, 'lr': cfg.lr * cfg.backbone_lr_scale}]
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
    def val_set(self) -> FaceDataset:
        """The first validation set: the card's main report."""
        return self.val_sets[0]

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated, checkpointed and shipped."""
        return self.ema.module if self.ema else self.model

    def _distilled(self, targets: torch.Tensor) -> torch.Tensor:
        """Mix the teacher's probabilities (flip TTA, cached in the output folder) into the
        primary set's targets, class by name; a class the teacher lacks keeps only the label's
        share."""
        if not 0 < self.cfg.distill_weight <= 1:
            raise ValueError(f'distill_weight must be in (0, 1], not {self.cfg.distill_weight}')
        cache = self.out / 'teacher.npz'  # a resumed run's teacher saw the same images
        n, k = self.n_primary, len(self.train_set.class_names)
        probs = None
        if cache.is_file():
            with np.load(cache) as saved:
                if str(saved['teacher']) == self.cfg.teacher and saved['probs'].shape == (n, k):
                    probs = saved['probs']
        if probs is None:
            probs = ensemble_probabilities(load_ensemble(self.cfg.teacher),
                                           self.train_set.subset(slice(0, n)), tta_flip=True)
            self.out.mkdir(parents=True, exist_ok=True)
            np.savez(cache, probs=probs, teacher=self.cfg.teacher)
        w = self.cfg.distill_weight
        targets = targets.clone()  # posed faces keep their labels: the teacher never saw them
        targets[:n] = (1 - w) * targets[:n] + w * torch.from_numpy(probs).to(self.device)
        return targets

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
        frozen = self.epoch < cfg.freeze_epochs
        for p in self.backbone:
            p.requires_grad_(not frozen)
        if frozen:  # the backbone's batch-norm statistics stay too
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        # sums stay on the device: reading them every step would stall a GPU
        total_loss = correct = torch.zeros((), device=self.device)
        seen = 0
        bar = Progress(self.steps_per_epoch, f'epoch {self.epoch + 1}/{cfg.epochs}', progress)
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
        """The first validation set's report, with every set's accuracy (`sets`) and the worst
        of them (`worst_accuracy`), which picks the best epoch."""
        reports = [metrics(predict(self.eval_model, x, tta_flip=tta_flip), v.targets,
                           v.class_names) for x, v in zip(self.x_vals, self.val_sets)]
        report = reports[0]
        report['sets'] = {data_name(v.source): r['accuracy']
                          for v, r in zip(self.val_sets, reports)}
        report['worst_accuracy'] = min(r['accuracy'] for r in reports)
        return report

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
                   report['worst_accuracy'], time.time() - start]
            with log_path.open('a', newline='') as f:
                csv.writer(f).writerow([f'{v:.6g}' if isinstance(v, float) else v for v in row])
            if report['worst_accuracy'] > self.best_acc:
                self.best_acc, self.stale = report['worst_accuracy'], 0
                save_checkpoint(self.out / 'best.pt', self.eval_model, self.spec)
            else:
                self.stale += 1
            self.save_state(self.out / 'last.pt')
            sets = ''.join(f'{k} {v:.4f} | ' for k, v in report['sets'].items()) \
                if len(self.val_sets) > 1 else ''
            print(f"epoch {self.epoch}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                  f"val loss {report['cross_entropy']:.4f} acc {report['accuracy']:.4f} "
                  f"macro-F1 {report['macro_f1']:.4f} | {sets}best {self.best_acc:.4f}",
                  flush=True)
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
                  'teacher': data_name(self.cfg.teacher), 'posed': data_name(self.cfg.posed)}
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
        write_card(self.out, {
            'name': self.cfg.name, 'architecture': self.cfg.arch,
            'parameters': sum(p.numel() for p in model.parameters()),
            'input': asdict(self.spec.input), 'class_names': list(self.spec.class_names),
            'validation_sets': report['sets'],
            'train_data': recipe['train'] + (
                f" + {recipe['posed']} (train people, each face x{self.cfg.posed_repeat})"
                if self.cfg.posed else ''),
            'train_samples': len(self.train_set),
            'recipe': recipe, 'epochs_run': self.epoch, 'metrics': measured,
            'validation': report}, report)
        if self.cfg.init:
            write_before_after(self.out, self._starting_report(measured['val_data']), report)
        return self.out / 'best.pt'

    def _starting_report(self, data: str) -> dict:
        """The --init model on the same held-out faces, in their class order."""
        start = load_model(self.cfg.init)
        probs = predict(start.module, dataset_tensor(self.val_set, start.spec.input))
        probs = average_by_name([probs], [start.spec.class_names], self.val_set.class_names)
        report = metrics(probs, self.val_set.targets, self.val_set.class_names)
        report.update(model=data_name(self.cfg.init), data=data, tta_flip=False,
                      missing_classes=[])
        return report
