"""Batch augmentation for small face crops, on normalised (N, C, H, W) tensors, on any device."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fer_ros.learning.degrade import Degrade


@dataclass(frozen=True)
class Augment:
    max_rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 0.08          # fraction of the side
    flip: bool = True
    brightness: float = 0.2          # additive, in units of the normalised range
    contrast: float = 0.2            # multiplicative +-
    erase_prob: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.15)
    degrade: Degrade | None = None   # camera degradations, first, on pixels
    mean: float = 0.5                # the input normalisation, to reach pixels
    std: float = 0.5

    @classmethod
    def capture(cls) -> Augment:
        """Crops and images as a robot camera gives them: wider geometric jitter (a detector's
        box), low contrast, and the camera's degradations."""
        return cls(max_rotation_deg=15.0, scale=(0.85, 1.15), max_shift=0.1, contrast=0.5,
                   degrade=Degrade())

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        device = x.device
        generator = _on_device(generator, device)
        if self.degrade is not None:
            x = (self.degrade(x * self.std + self.mean, generator) - self.mean) / self.std

        def rand() -> torch.Tensor:
            return torch.rand(n, generator=generator, device=device)

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return rand() * (hi - lo) + lo

        angle = uniform(-self.max_rotation_deg, self.max_rotation_deg) * (math.pi / 180)
        scale = uniform(*self.scale)
        flip = torch.where(rand() < 0.5, -1.0, 1.0) if self.flip else torch.ones(n, device=device)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([
            torch.stack([cos * flip, -sin, uniform(-self.max_shift, self.max_shift) * 2], 1),
            torch.stack([sin * flip, cos, uniform(-self.max_shift, self.max_shift) * 2], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)

        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = uniform(1 - self.contrast, 1 + self.contrast).view(n, 1, 1, 1)
        brightness = uniform(-self.brightness, self.brightness).view(n, 1, 1, 1)
        x = (x - mean) * contrast + mean + brightness

        if self.erase_prob > 0:
            area = uniform(*self.erase_area) * h * w
            aspect = torch.exp(uniform(math.log(0.5), math.log(2.0)))
            eh = (area * aspect).sqrt().clamp(1, h).long()
            ew = (area / aspect).sqrt().clamp(1, w).long()
            y0 = (rand() * (h - eh + 1)).long()
            x0 = (rand() * (w - ew + 1)).long()
            rows = torch.arange(h, device=device).view(1, h, 1)
            cols = torch.arange(w, device=device).view(1, 1, w)
            mask = ((rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1)) &
                    (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1)))
            mask &= (rand() < self.erase_prob).view(n, 1, 1)
            noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
            x = torch.where(mask.unsqueeze(1), noise, x)
        return x


def _on_device(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """The CPU generator on the CPU; elsewhere a generator on that device seeded from it, so
    that no random draw is copied to the device (each copy would stall a GPU)."""
    if device.type == 'cpu':
        return generator
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device).manual_seed(seed)
