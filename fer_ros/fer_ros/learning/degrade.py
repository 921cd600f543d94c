"""What a robot's camera does to a face, as batch augmentation on (N, 1, H, W) pixel tensors in
[0, 1] on any device: low light, blur, low resolution, JPEG compression and sensor noise.

JPEG is the real luma transform: 8x8 block DCT, the IJG quantisation table at a quality,
inverse DCT (the entropy coding it skips is lossless). Each degradation is applied to a
sample with its own probability and strength.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# JPEG Annex K luminance quantisation table
_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]],
    dtype=torch.float32)


def _dct_matrix(device: torch.device) -> torch.Tensor:
    k, n = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing='ij')
    d = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device)


def jpeg(p: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG luma round trip of (N, 1, H, W) pixels in [0, 1] (H, W multiples of 8) at
    per-sample qualities 1-100."""
    n, _, h, w = p.shape
    scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)
    table = ((_LUMA.to(p.device) * scale.view(n, 1, 1) + 50) / 100).floor().clamp(1, 255)
    d = _dct_matrix(p.device)
    blocks = (p * 255 - 128).view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeffs = d @ blocks @ d.T
    table = table.view(n, 1, 1, 8, 8)
    blocks = d.T @ (torch.round(coeffs / table) * table) @ d
    out = blocks.permute(0, 1, 3, 2, 4).reshape(n, 1, h, w)
    return ((out + 128).round() / 255).clamp(0, 1)


def gaussian_blur(p: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with per-sample sigma (pixels), edges repeated."""
    n = p.shape[0]
    offsets = torch.arange(-4.0, 5.0, device=p.device)
    kernel = torch.exp(-0.5 * (offsets / sigma.view(n, 1).clamp(min=1e-3)) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).view(n, 1, 1, 9)
    x = F.pad(p.transpose(0, 1), (4, 4, 0, 0), mode='replicate')  # (1, N, H, W): groups
    x = F.conv2d(x, kernel, groups=n)
    x = F.pad(x, (0, 0, 4, 4), mode='replicate')
    return F.conv2d(x, kernel.transpose(2, 3), groups=n).transpose(0, 1)


def down_up(p: torch.Tensor, side: int) -> torch.Tensor:
    """Area-downscale to side x side and back up bilinearly: a face seen from afar."""
    small = F.interpolate(p, size=(side, side), mode='area')
    return F.interpolate(small, size=p.shape[2:], mode='bilinear', align_corners=False)


@dataclass(frozen=True)
class Degrade:
    gain_prob: float = 0.3
    gain: tuple[float, float] = (0.3, 1.0)          # under-exposure
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.4, 1.5)    # px at 48 px
    downscale_prob: float = 0.2
    downscale_sides: tuple[int, ...] = (16, 20, 24, 32)
    jpeg_prob: float = 0.2
    jpeg_quality: tuple[float, float] = (20.0, 90.0)
    noise_prob: float = 0.2
    noise_std: float = 0.04                         # of the pixel range

    def __call__(self, p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, device = p.shape[0], p.device

        def pick(prob: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator, device=device) < prob).view(n, 1, 1, 1)

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(n, generator=generator, device=device) * (hi - lo) + lo

        p = torch.where(pick(self.gain_prob), p * uniform(*self.gain).view(n, 1, 1, 1), p)
        p = torch.where(pick(self.blur_prob), gaussian_blur(p, uniform(*self.blur_sigma)), p)
        chosen = pick(self.downscale_prob)
        side = self.downscale_sides[int(torch.randint(len(self.downscale_sides), (1,),
                                                      generator=generator, device=device))]
        p = torch.where(chosen, down_up(p, side), p)
        if p.shape[2] % 8 == 0 and p.shape[3] % 8 == 0:
            p = torch.where(pick(self.jpeg_prob), jpeg(p, uniform(*self.jpeg_quality)), p)
        noise = torch.randn(p.shape, generator=generator, device=device) * self.noise_std
        p = torch.where(pick(self.noise_prob), p + noise, p)
        return p.clamp(0, 1)
