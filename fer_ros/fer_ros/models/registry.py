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

from fer_ros.common.input_spec import InputSpec
from fer_ros.common.untrusted import quoted

from .checkpoint_check import (MAX_CHECKPOINT_BYTES, check_arch_kwargs, check_spec, check_weights,
                               read_torch_zip)
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
WEIGHTS = Path(__file__).resolve().parent.parent / 'weights'  # the shipped checkpoints


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
    path: Path | None = None  # the checkpoint file, if the model came from one


_REGISTRY: dict[str, tuple[ModelSpec, Callable[[], nn.Module]]] = {}
_CHECKPOINTS: dict[str, Path] = {}  # registered name -> its checkpoint file
_ENSEMBLE_NAMES: list[str] = []


def register_model(spec: ModelSpec, build: Callable[[], nn.Module]) -> None:
    """Register ``build`` (returns the module with its weights loaded) under ``spec.name``."""
    _REGISTRY[spec.name] = (spec, build)


def list_models() -> list[ModelSpec]:
    return [spec for spec, _ in _REGISTRY.values()]


def note_ensemble(name: str) -> None:
    """An ensemble's name, for the error that lists what can be loaded (ensemble.py)."""
    _ENSEMBLE_NAMES.append(name)


def _unknown_model(name: str) -> ModelError:
    return ModelError(
        f'unknown model {quoted(name)}: not a registered model nor a readable fer_ros '
        f'checkpoint (a torch zip file of at most {MAX_CHECKPOINT_BYTES >> 20} MB written by '
        f"fer_train); models: {', '.join(_REGISTRY)}; "
        f"ensembles: {', '.join(_ENSEMBLE_NAMES)}")


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise _unknown_model(name)
    return _REGISTRY[name][0]


def _bad_checkpoint(path: Path, reason: Exception) -> ModelError:
    return ModelError(f'{quoted(str(path))}: bad fer_ros checkpoint: {reason}')


def _spec_from_dict(data: object, path: Path) -> ModelSpec:
    try:
        spec = ModelSpec(**check_spec(data, path.stem))
        check_arch_kwargs(ARCHITECTURES[spec.architecture], spec.arch_kwargs)
    except (ValueError, ModelError) as exc:
        raise _bad_checkpoint(path, exc) from None
    return spec


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
    """The dict of a fer_ros checkpoint file. Whatever makes a file unusable (missing, a
    folder or device, unreadable, too big, not a fer_ros checkpoint), the error is the same:
    it tells nothing about arbitrary paths."""
    try:
        data = read_torch_zip(str(path))
    except Exception:  # torch raises many kinds for a hostile file
        data = None
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        raise _unknown_model(str(path))
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
        spec = _spec_from_dict(_read_checkpoint(path).get('spec'), path)
        register_model(spec, lambda path=path: load_checkpoint(path).module)
        _CHECKPOINTS[spec.name] = path


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Load a checkpoint file (CPU, eval mode); everything in it is checked first, and its
    parameters are counted on the meta device before any weight is allocated."""
    path = Path(path)
    data = _read_checkpoint(path)
    spec = _spec_from_dict(data.get('spec'), path)
    build = ARCHITECTURES[spec.architecture]
    kwargs = dict(num_classes=len(spec.class_names), in_channels=spec.input.channels,
                  **spec.arch_kwargs)
    with torch.device('meta'):
        expected = build(**kwargs).state_dict()
    try:
        check_weights(data.get('state_dict'), expected)
        module = build(**kwargs)
        module.load_state_dict(data['state_dict'])
    except (ValueError, RuntimeError) as exc:
        raise _bad_checkpoint(path, exc) from None
    return LoadedModel(spec, module.eval(), path)


def load_model(name_or_path: str) -> LoadedModel:
    """Create a model by registry name, or load a checkpoint file (CPU, eval mode)."""
    if name_or_path in _REGISTRY:
        spec, build = _REGISTRY[name_or_path]
        return LoadedModel(spec, build().eval(), _CHECKPOINTS.get(name_or_path))
    return load_checkpoint(name_or_path)
