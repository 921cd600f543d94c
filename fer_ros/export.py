"""fer_export_onnx: export an expression model to ONNX and check it against PyTorch.

Writes MODEL.onnx (input 'faces' (N, C, S, S) float32 normalised as the input spec
says, output 'logits' (N, classes)) and MODEL.json with the input spec and class
names, so other runtimes crop and normalise faces the same way.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fer_ros.models import load_model


OPTIONAL_PACKAGES = ('onnx', 'onnxscript')  # torch's exporter needs them; no rosdep keys


class ExportError(RuntimeError):
    """The ONNX export cannot run here."""


def export_onnx(model: str, out: Path, opset: int = 18, batch: int = 4) -> float:
    """Export and return the largest |onnxruntime - torch| logit difference on random faces."""
    missing = [p for p in OPTIONAL_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}, optional packages with "
                          f"no rosdep key: pip install {' '.join(OPTIONAL_PACKAGES)}")
    import onnxruntime

    loaded = load_model(model)
    spec = loaded.spec
    module = loaded.module.eval()
    x = torch.randn(batch, spec.input.channels, spec.input.size, spec.input.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, (x,), str(out), input_names=['faces'], output_names=['logits'],
                      dynamic_shapes={'x': {0: torch.export.Dim('batch', min=1, max=256)}},
                      opset_version=opset, dynamo=True, external_data=False)
    out.with_suffix('.json').write_text(json.dumps(
        {'name': spec.name, 'input': asdict(spec.input), 'class_names': list(spec.class_names),
         'output': 'logits (apply softmax)'}, indent=1))
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    worst = 0.0
    for n in (1, batch):
        with torch.inference_mode():
            expected = module(x[:n]).numpy()
        got = session.run(['logits'], {'faces': x[:n].numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='registry name or checkpoint path')
    parser.add_argument('out', type=Path, help='output .onnx path')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--tolerance', type=float, default=1e-4)
    args = parser.parse_args(argv)
    try:
        diff = export_onnx(args.model, args.out, args.opset)
    except ExportError as exc:
        raise SystemExit(f'fer_export_onnx: {exc}') from None
    print(f'{args.out}: max |onnxruntime - torch| = {diff:.2e}')
    if diff > args.tolerance:
        raise SystemExit(f'parity check failed: {diff:.2e} > {args.tolerance:.0e}')


if __name__ == '__main__':
    main()
