"""Facial expression classification of detected faces with a PyTorch model."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from fer_ros.common.untrusted import quoted
from fer_ros.models import DEFAULT_MODEL, Ensemble, ModelError, load_ensemble
from fer_ros.models.onnx_backend import check_backend, int8_verified, load_onnx, onnx_probabilities
from fer_ros.perception.preprocess import Framing, face_batch

DEVICES = ('auto', 'cpu', 'cuda')
_DEVICE = re.compile(r'auto|cpu|cuda(?::([0-9]{1,4}))?')  # parsed here, not by torch.device


class DeviceError(RuntimeError):
    """The requested compute device is not available."""


def check_device_name(name: str) -> str | None:
    """Why a device name is not 'auto' | 'cpu' | 'cuda' | 'cuda:N', or None if it is one."""
    return None if _DEVICE.fullmatch(name) else f"use one of {', '.join(DEVICES)} or cuda:N"


def resolve_device(name: str) -> tuple[torch.device, str | None]:
    """Map 'auto' | 'cpu' | 'cuda[:N]' to a torch device; also return a fallback warning, if any."""
    match = _DEVICE.fullmatch(name)
    if match is None:
        raise DeviceError(f'unknown device {quoted(name)}; {check_device_name(name)}')
    if name == 'cpu':
        return torch.device('cpu'), None
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda'), None
        return torch.device('cpu'), 'device auto: no CUDA GPU available, running on the CPU'
    if not torch.cuda.is_available():
        raise DeviceError(f"device '{name}' requested but no CUDA GPU is available "
                          f'(torch {torch.__version__}, built with CUDA: '
                          f'{torch.version.cuda or "no"}); use cpu or auto')
    if match[1] is None:
        return torch.device('cuda'), None
    if int(match[1]) >= torch.cuda.device_count():
        raise DeviceError(f"device '{name}' requested but only "
                          f'{torch.cuda.device_count()} CUDA device(s) exist')
    return torch.device('cuda', int(match[1])), None


def probabilities(module: torch.nn.Module, x: torch.Tensor,
                  tta_flip: bool = False) -> torch.Tensor:
    """Softmax of a model for a batch (N, C, S, S); with tta_flip also of the mirrored faces
    (one forward pass of 2N), averaged."""
    if not tta_flip:
        return torch.softmax(module(x).float(), dim=1)
    probs = torch.softmax(module(torch.cat([x, x.flip(3)])).float(), dim=1)
    return (probs[:len(x)] + probs[len(x):]) / 2


class ExpressionClassifier:
    """Classify the expression of every face of an image, one batched forward pass per model.

    model is a registry name, a checkpoint path, or an ensemble (see load_ensemble);
    tta_flip also classifies each mirrored face (about twice the time, a little more accurate);
    backend runs the models with PyTorch (any device) or ONNX Runtime on the CPU, float32 or
    int8 (files fer_export_onnx writes beside each checkpoint); auto is int8 on the CPU for
    models whose card shows int8 as accurate as float on every panel set, else torch
    (`backend` says which ran). align rolls each face so its eyes are level, where predict is
    given the detector's keypoints.
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str = 'cpu', tta_flip: bool = False,
                 backend: str = 'torch', align: bool = True):
        if reason := check_backend(backend):
            raise ModelError(f'unknown backend {quoted(backend)}; {reason}')
        self.model: Ensemble = load_ensemble(model)
        self.onnx = self._verified_int8(device) if backend == 'auto' else []
        if backend == 'auto':
            backend = 'onnxruntime_int8' if self.onnx else 'torch'
        if backend == 'torch':
            self.device, self.device_warning = resolve_device(device)
        elif device in ('auto', 'cpu'):
            self.device, self.device_warning = torch.device('cpu'), None
        else:
            resolve_device(device)  # an unknown name is reported as such
            raise DeviceError(f'backend {backend} runs on the CPU: use device cpu or auto, '
                              'or backend torch on the GPU')
        self.backend = backend
        if backend != 'torch' and not self.onnx:
            self.onnx = [load_onnx(m, int8=backend == 'onnxruntime_int8')
                         for m in self.model.members]
        for member in self.model.members:
            # channels-last runs these small convnets ~2x faster on CPU (oneDNN) and GPU.
            member.module = member.module.to(self.device, memory_format=torch.channels_last)
        self.tta_flip, self.align = tta_flip, align

    def _verified_int8(self, device: str) -> list:
        """backend auto: the members' int8 graphs where the device is the CPU and each one is
        verified (int8_verified) and loads; else none, and torch runs."""
        if resolve_device(device)[0].type != 'cpu' or not all(
                int8_verified(m.spec) for m in self.model.members):
            return []
        try:
            return [load_onnx(m, int8=True) for m in self.model.members]
        except (ModelError, ImportError):
            return []

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.class_names

    @torch.inference_mode()
    def predict(self, image_bgr: np.ndarray, boxes: Sequence[Sequence[float]],
                keypoints: Sequence[Sequence[tuple[float, float]]] | None = None,
                framing: Framing | None = None) -> np.ndarray:
        """Probabilities (N, classes) for the (x, y, w, h) face boxes of a BGR image; with the
        detector's keypoints (eyes first) and framing, crops as preprocess.face_window says."""
        if len(boxes) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return self._run([face_batch(image_bgr, boxes, member.spec.input, keypoints, framing,
                                     self.align) for member in self.model.members])

    @torch.inference_mode()
    def predict_crops(self, crops: Sequence[np.ndarray], framing: Framing | None = None
                      ) -> np.ndarray:
        """Probabilities (N, classes) for BGR face images, each the square of a detector's box
        (REP-155's cropped or aligned faces; framing: that detector's), in one batch."""
        if len(crops) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        return self._run([np.concatenate([
            face_batch(crop, [(0, 0, crop.shape[1], crop.shape[0])], member.spec.input, None,
                       framing, False) for crop in crops]) for member in self.model.members])

    def _run(self, batches: list[np.ndarray]) -> np.ndarray:
        """Each member on its batch of preprocessed faces; their probabilities combined."""
        member_probs = []
        for i, (member, batch) in enumerate(zip(self.model.members, batches)):
            if self.onnx:
                member_probs.append(onnx_probabilities(self.onnx[i], batch, self.tta_flip))
                continue
            x = torch.from_numpy(batch).to(self.device).contiguous(
                memory_format=torch.channels_last)
            member_probs.append(probabilities(member.module, x, self.tta_flip).cpu().numpy())
        return self.model.combine(member_probs)
