"""Where a trained model's weights start (another model's, matched by class name) and what
is shipped (optionally their exponential moving average)."""
from __future__ import annotations

import copy
import json

import torch
from torch import nn

from fer_ros.models import LoadedModel


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
