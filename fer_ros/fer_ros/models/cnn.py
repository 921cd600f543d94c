"""Expression networks for small (48-64 px) face crops, trained from scratch by fer_train."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class _PooledNet(nn.Module):
    """A convolutional body, global average pooling, dropout and a linear classifier."""

    def __init__(self, body: nn.Sequential, num_features: int, num_classes: int,
                 dropout: float):
        super().__init__()
        self.body = body
        self.num_features = num_features
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_classes)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the pooled embedding (for center loss)."""
        features = self.body(x).mean(dim=(2, 3))
        return self.classifier(self.dropout(features)), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


class FerCNN(_PooledNet):
    """Compact VGG-style CNN: stages of two 3x3 conv-BN-ReLU and a 2x2 max-pool. Fast on CPU."""

    def __init__(self, num_classes: int = 7, in_channels: int = 1,
                 widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.3):
        layers, cin = [], in_channels
        for width in widths:
            layers += _conv_bn(cin, width) + _conv_bn(width, width) + [nn.MaxPool2d(2)]
            cin = width
        super().__init__(nn.Sequential(*layers), cin, num_classes, dropout)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, stride),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetSmall(_PooledNet):
    """ResNet-18 layout (2-2-2-2 basic blocks) for small inputs: a 3x3 stride-1 stem and no
    stem max-pool, so a 48 px face keeps 6x6 resolution in the last stage."""

    def __init__(self, num_classes: int = 7, in_channels: int = 1,
                 widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2,
                 dropout: float = 0.2):
        layers, cin = _conv_bn(in_channels, widths[0]), widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks):
                layers.append(_BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        super().__init__(nn.Sequential(*layers), cin, num_classes, dropout)
