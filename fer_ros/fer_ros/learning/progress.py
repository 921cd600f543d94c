"""A one-line progress bar for training epochs."""
from __future__ import annotations

import time

import torch


class Progress:
    """A one-line progress bar with loss, accuracy and ETA (no dependency)."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.done, self.start, self.last = 0, time.time(), 0.0

    def update(self, **values: float | torch.Tensor) -> None:
        self.done += 1
        now = time.time()
        if not self.enabled or (now - self.last < 0.5 and self.done < self.total):
            return
        self.last = now
        eta = (now - self.start) / self.done * (self.total - self.done)
        stats = ' '.join(f'{k} {v:.4f}' for k, v in values.items())
        bar = '#' * int(20 * self.done / self.total)
        print(f'\r{self.label} [{bar:20s}] {self.done}/{self.total} {stats} ETA {eta:5.0f}s',
              end='', flush=True)

    def close(self) -> None:
        if self.enabled:
            print(flush=True)
