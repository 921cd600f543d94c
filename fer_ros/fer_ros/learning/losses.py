"""Losses for expression training: soft-label cross-entropy and center loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                       class_weights: torch.Tensor | None = None,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against target distributions (one-hot rows give ordinary CE).

    class_weights (K,) weight each sample by the target-weighted class weight,
    normalised like torch's weighted CE (divided by the total weight).
    label_smoothing mixes the targets with the uniform distribution.
    """
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / targets.shape[1]
    per_sample = -(targets * F.log_softmax(logits, dim=1)).sum(1)
    if class_weights is None:
        return per_sample.mean()
    weights = targets @ class_weights
    return (per_sample * weights).sum() / weights.sum()


def balanced_class_weights(targets: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights (K,), mean 1 over classes, from target distributions (N, K)."""
    counts = targets.sum(0).clamp_min(1.0)
    weights = counts.sum() / (len(counts) * counts)
    return weights / weights.mean()


class CenterLoss(nn.Module):
    """Center loss (Wen et al., 2016): pulls each embedding toward its class center.

    The centers are parameters; train them with their own optimizer / learning rate.
    Targets may be soft: each sample is pulled toward the target-weighted centers.
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, dim) * 0.01)

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        distances = torch.cdist(features, self.centers).pow(2)  # (N, K)
        return 0.5 * (targets * distances).sum(1).mean()
