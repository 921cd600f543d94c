"""fer_export_onnx: export an expression model to ONNX (and int8) and check it against PyTorch.

Writes MODEL.onnx (input 'faces' (N, C, S, S) float32 normalised as the input spec says,
output 'logits' (N, classes)) beside the checkpoint, or where told, with MODEL.json: the
input spec, class names and the SHA-256 of the weights, so other runtimes crop and
normalise faces the same way and fer_node's onnxruntime backend knows the file is current.
With --int8 TRAIN_NPZ also MODEL.int8.onnx: static int8 quantisation (per-channel weights,
QDQ) calibrated on training faces, its accuracy loss measured on --val.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fer_ros.learning.data import load_dataset
from fer_ros.learning.scoring import dataset_tensor, metrics
from fer_ros.models import average_by_name, load_model
from fer_ros.models.onnx_backend import OnnxModel, onnx_file, sidecar, softmax, weights_sha256
from fer_ros.models.registry import LoadedModel

OPTIONAL_PACKAGES = ('onnx', 'onnxscript')  # torch's exporter needs them; no rosdep keys
PROBABILITY_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """The ONNX export cannot run here."""


def _write_sidecar(path: Path, loaded: LoadedModel, **extra) -> None:
    spec = loaded.spec
    sidecar(path).write_text(json.dumps(
        {'name': spec.name, 'input': asdict(spec.input), 'class_names': list(spec.class_names),
         'output': 'logits (apply softmax)', 'weights_sha256': weights_sha256(loaded.module),
         **extra}, indent=1))


def export_onnx(loaded: LoadedModel, out: Path, opset: int = 18, batch: int = 4) -> float:
    """Export; return the largest |onnxruntime - torch| probability on random faces."""
    missing = [p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}, optional packages with "
                          f"no rosdep key: pip install {' '.join(OPTIONAL_PACKAGES)}")
    spec, module = loaded.spec, loaded.module.eval()
    x = torch.randn(batch, spec.input.channels, spec.input.size, spec.input.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, (x,), str(out), input_names=['faces'], output_names=['logits'],
                      dynamic_shapes={'x': {0: torch.export.Dim('batch', min=1, max=256)}},
                      opset_version=opset, dynamo=True, external_data=False, verbose=False)
    session = OnnxModel(str(out), spec)
    with torch.inference_mode():
        expected = torch.softmax(module(x), 1).numpy()
    worst = max(float(np.abs(softmax(session(x[:n].numpy())) - expected[:n]).max())
                for n in (1, batch))
    _write_sidecar(out, loaded, opset=opset, parity_max_probability_diff=worst)
    return worst


def quantize_int8(loaded: LoadedModel, fp32: Path, calibration: Path, out: Path,
                  samples: int = 512) -> None:
    """Static int8 quantisation of an exported model, calibrated on `samples` faces."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    data = load_dataset(calibration)
    pick = np.random.default_rng(0).choice(len(data), min(samples, len(data)), replace=False)
    faces = dataset_tensor(data.subset(np.sort(pick)), loaded.spec.input).numpy()

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(faces, max(len(faces) // 32, 1)))

        def get_next(self) -> dict | None:
            return {'faces': b} if (b := next(self.batches, None)) is not None else None

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / 'prepared.onnx'
        quant_pre_process(str(fp32), str(prepared))
        # reduce_range: 7-bit weights. With 8 bits, CPUs without VNNI (AVX2, AVX-512F) saturate
        # in their u8 x s8 products: the same graph scored 65.4 % on such a CPU and 67.3 % on
        # a VNNI one (fer_cnn_posed, PublicTest); with 7 bits nothing saturates: 67.5 %, as float.
        quantize_static(str(prepared), str(out), Faces(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    _write_sidecar(out, loaded, calibration=f'{len(faces)} faces of {calibration.name} (seed 0)')


def accuracy(run, loaded: LoadedModel, val: Path) -> float:
    """Accuracy on an npz split of a callable from a float32 batch to logits."""
    data = load_dataset(val)
    x = dataset_tensor(data, loaded.spec.input).numpy()
    probs = softmax(np.concatenate([run(x[i:i + 256]) for i in range(0, len(x), 256)]))
    probs = average_by_name([probs], [loaded.spec.class_names], data.class_names)
    return metrics(probs, data.targets, data.class_names)['accuracy']


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='registry name or checkpoint path')
    parser.add_argument('out', type=Path, nargs='?',
                        help='output .onnx path (default: beside the checkpoint, where '
                             "fer_node's onnxruntime backend looks)")
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--int8', type=Path, metavar='TRAIN_NPZ',
                        help='also write the int8 model, calibrated on faces of this split')
    parser.add_argument('--val', type=Path, help='npz split to measure the int8 accuracy loss on')
    args = parser.parse_args(argv)
    loaded = load_model(args.model)
    out = args.out or (loaded.path and onnx_file(loaded.path, int8=False))
    if out is None:
        parser.error(f'{args.model} has no checkpoint file: give an output path')
    try:
        diff = export_onnx(loaded, out, args.opset)
    except ExportError as exc:
        raise SystemExit(f'fer_export_onnx: {exc}') from None
    print(f'{out}: max |onnxruntime - torch| probability = {diff:.2e}')
    if diff > PROBABILITY_TOLERANCE:
        raise SystemExit(f'parity check failed: {diff:.2e} > {PROBABILITY_TOLERANCE:.0e}')
    if args.int8:
        int8 = out.with_suffix('.int8.onnx')
        quantize_int8(loaded, out, args.int8, int8)
        print(f'{int8}: int8, calibrated on {args.int8}')
        if args.val:
            with torch.inference_mode():
                fp32 = accuracy(lambda x: loaded.module(torch.from_numpy(x)).numpy(), loaded,
                                args.val)
            quantized = accuracy(OnnxModel(str(int8), loaded.spec, 'int8 ONNX'), loaded,
                                 args.val)
            meta = json.loads(sidecar(int8).read_text())
            meta.update({'val': args.val.name, 'val_acc_torch': round(fp32, 4),
                         'val_acc_int8': round(quantized, 4)})
            sidecar(int8).write_text(json.dumps(meta, indent=1))
            print(f'accuracy on {args.val.name}: torch {fp32:.4f}, int8 {quantized:.4f} '
                  f'({(quantized - fp32) * 100:+.2f} points)')


if __name__ == '__main__':
    main()
