"""mini-Xception (Arriaga et al., 2017) in PyTorch, with a loader for the Keras weights.

The Keras original uses TensorFlow "same" padding, which pads max-pooling
asymmetrically (extra row/column at the bottom/right); ``_SamePool`` matches it
so the port reproduces Keras outputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_BN_EPS = 1e-3  # Keras default


class _SamePool(nn.Module):
    """3x3 / stride-2 max pooling with TensorFlow 'same' padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float('-inf')), 3, 2)


class _SeparableConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False))


class _Block(nn.Module):
    """Residual block: two separable convs + pool, plus a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False),
                                      nn.BatchNorm2d(cout, eps=_BN_EPS))
        self.body = nn.Sequential(
            _SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=_BN_EPS), nn.ReLU(inplace=True),
            _SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=_BN_EPS), _SamePool())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """mini-Xception: 2 plain convs, 4 residual separable blocks, conv classifier + GAP.

    Returns logits; apply softmax for probabilities.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1,
                 widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, bias=False), nn.BatchNorm2d(8, eps=_BN_EPS),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=_BN_EPS), nn.ReLU(inplace=True))
        blocks, cin = [], 8
        for cout in widths:
            blocks.append(_Block(cin, cout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Conv2d(cin, num_classes, 3, padding=1)
        self.num_features = cin

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the pooled embedding of the last block (for center loss)."""
        h = self.blocks(self.stem(x))
        return self.classifier(h).mean(dim=(2, 3)), h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x))).mean(dim=(2, 3))


def _keras_layer_order(config: dict, class_name: str) -> list[str]:
    return [layer['config']['name'] for layer in config['config']['layers']
            if layer['class_name'] == class_name]


def load_keras_mini_xception(path: str | Path) -> MiniXception:
    """Build a MiniXception with the weights of a Keras mini-Xception ``.hdf5`` file."""
    import h5py

    with h5py.File(path, 'r') as f:
        config = json.loads(f.attrs['model_config'])
        root = f['model_weights']

        def weights(layer: str) -> dict[str, np.ndarray]:
            out = {}
            root[layer].visititems(lambda name, obj: out.__setitem__(
                name.rsplit('/', 1)[-1].split(':')[0], obj[()])
                if isinstance(obj, h5py.Dataset) else None)
            return out

        convs = [weights(n) for n in _keras_layer_order(config, 'Conv2D')]
        seps = [weights(n) for n in _keras_layer_order(config, 'SeparableConv2D')]
        bns = [weights(n) for n in _keras_layer_order(config, 'BatchNormalization')]

    num_classes = convs[-1]['kernel'].shape[-1]
    model = MiniXception(num_classes=num_classes, in_channels=convs[0]['kernel'].shape[2])

    def conv(module: nn.Conv2d, kernel: np.ndarray, depthwise: bool = False) -> None:
        # Keras: (kh, kw, in, out) or depthwise (kh, kw, in, 1); torch: (out, in/groups, kh, kw)
        w = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)
        module.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(w)))

    def bn(module: nn.BatchNorm2d, w: dict[str, np.ndarray]) -> None:
        for dst, src in (('weight', 'gamma'), ('bias', 'beta'),
                         ('running_mean', 'moving_mean'), ('running_var', 'moving_variance')):
            getattr(module, dst).data.copy_(torch.from_numpy(w[src]))

    # Keras layer order (model_config): stem conv, bn, conv, bn; then per block
    # sep, bn, sep, bn, shortcut conv, shortcut bn; finally the classifier conv.
    conv(model.stem[0], convs[0]['kernel'])
    bn(model.stem[1], bns[0])
    conv(model.stem[3], convs[1]['kernel'])
    bn(model.stem[4], bns[1])
    for i, block in enumerate(model.blocks):
        sep1, sep2 = seps[2 * i], seps[2 * i + 1]
        bn1, bn2, bn_short = bns[2 + 3 * i], bns[3 + 3 * i], bns[4 + 3 * i]
        conv(block.body[0][0], sep1['depthwise_kernel'], depthwise=True)
        conv(block.body[0][1], sep1['pointwise_kernel'])
        bn(block.body[1], bn1)
        conv(block.body[3][0], sep2['depthwise_kernel'], depthwise=True)
        conv(block.body[3][1], sep2['pointwise_kernel'])
        bn(block.body[4], bn2)
        conv(block.shortcut[0], convs[2 + i]['kernel'])
        bn(block.shortcut[1], bn_short)
    conv(model.classifier, convs[-1]['kernel'])
    model.classifier.bias.data.copy_(torch.from_numpy(convs[-1]['bias']))
    return model.eval()
