"""Ensembles: expression models whose probabilities are averaged class by class, by name.

Each member keeps its own input spec (size, crop margin, normalisation), so every
member sees faces exactly as it was trained. Members may have different class sets
(FER2013's 7, FER+'s 8): each class is averaged over the members that predict it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from fer_ros.common.untrusted import quoted

from .checkpoint_check import MAX_PARAMETERS
from .registry import EXPRESSIONS, LoadedModel, ModelError, get_spec, load_model, note_ensemble

MAX_MEMBERS = 16  # the registered ensembles have up to 5


def average_by_name(member_probs: Sequence[np.ndarray], member_classes: Sequence[Sequence[str]],
                    class_names: Sequence[str]) -> np.ndarray:
    """Average (N, K_i) probabilities of several models into (N, len(class_names)).

    Each output class is the mean over the members that have it (0 if none does);
    member classes outside class_names are dropped; rows are renormalised to sum to 1.
    """
    n = len(member_probs[0])
    total = np.zeros((n, len(class_names)), np.float32)
    count = np.zeros(len(class_names), np.float32)
    for probs, classes in zip(member_probs, member_classes):
        for j, name in enumerate(class_names):
            if name in classes:
                total[:, j] += probs[:, list(classes).index(name)]
                count[j] += 1
    out = total / np.maximum(count, 1)
    return out / np.clip(out.sum(1, keepdims=True), 1e-12, None)


@dataclass(frozen=True)
class EnsembleSpec:
    """A registered ensemble: member registry names and what was measured for the whole
    (its CPU latencies are the members' recorded ones, summed at registration)."""

    name: str
    members: tuple[str, ...]
    description: str
    metrics: dict = field(default_factory=dict)


@dataclass
class Ensemble:
    """One or more loaded models; a single model is an ensemble of one."""

    name: str
    members: list[LoadedModel]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The first member's classes, then classes only later members have (canonical order)."""
        first = self.members[0].spec.class_names
        extra = {c for m in self.members[1:] for c in m.spec.class_names} - set(first)
        return first + tuple(c for c in EXPRESSIONS if c in extra)

    def combine(self, member_probs: Sequence[np.ndarray],
                class_names: Sequence[str] | None = None) -> np.ndarray:
        """Average the members' probabilities (in member order) into class_names
        (default: the ensemble's own classes)."""
        return average_by_name(member_probs, [m.spec.class_names for m in self.members],
                               self.class_names if class_names is None else class_names)


_ENSEMBLES: dict[str, EnsembleSpec] = {}


LATENCY_KEYS = ('cpu_ms_per_face_b1', 'cpu_ms_per_face_b8')


def register_ensemble(spec: EnsembleSpec) -> None:
    members = [get_spec(m).metrics for m in spec.members]  # raises for an unregistered member
    latency = {key: round(sum(m[key] for m in members), 3) for key in LATENCY_KEYS
               if all(key in m for m in members)}
    if spec.name not in _ENSEMBLES:
        note_ensemble(spec.name)
    _ENSEMBLES[spec.name] = replace(spec, metrics={**spec.metrics, **latency})


def list_ensembles() -> list[EnsembleSpec]:
    return list(_ENSEMBLES.values())


def load_ensemble(name: str) -> Ensemble:
    """Load one model, a registered ensemble, or 'a+b' of model names, checkpoint paths and
    registered ensembles (an ensemble adds all its members).

    At most MAX_MEMBERS members with MAX_PARAMETERS parameters together.
    """
    if '+' in name:  # a checkpoint file may have a '+' in its name
        try:
            return Ensemble(name, [load_model(name)])
        except ModelError:
            pass  # fail below as if no such file existed: errors tell nothing about paths
    parts = tuple(p.strip() for p in name.split('+')) if '+' in name else (name,)
    if not all(parts):
        raise ModelError(f"bad ensemble {quoted(name)}: write members as 'model_a+model_b'")
    members = [m for part in parts
               for m in (_ENSEMBLES[part].members if part in _ENSEMBLES else (part,))]
    if len(members) > MAX_MEMBERS:
        raise ModelError(f'ensemble {quoted(name)} has {len(members)} members; at most '
                         f'{MAX_MEMBERS}')
    loaded, parameters = [], 0
    for member in members:
        loaded.append(load_model(member))
        parameters += sum(t.numel() for t in loaded[-1].module.state_dict().values())
        if parameters > MAX_PARAMETERS:
            raise ModelError(f'ensemble {quoted(name)} has over {MAX_PARAMETERS:,} parameters')
    return Ensemble(name, loaded)
