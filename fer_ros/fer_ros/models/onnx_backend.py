"""Expression models on ONNX Runtime (CPU): the float32 graph fer_export_onnx writes beside a
checkpoint (<name>.onnx), or its int8 quantisation (<name>.int8.onnx). Each file has a JSON
sidecar with the SHA-256 of the weights it was exported from: a file exported from other
weights is refused, so the two backends always run the same model."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from fer_ros.common.untrusted import printable, read_regular_file, run_probe

from .registry import WEIGHTS, LoadedModel, ModelError, ModelSpec

RUNTIMES = ('torch', 'onnxruntime', 'onnxruntime_int8')  # what runs a model
BACKENDS = ('auto', *RUNTIMES)  # what the node accepts: auto picks a runtime
MAX_ONNX_BYTES = 256 << 20
PANEL_SETS = ('fer2013', 'ferplus', 'kdef', 'cfee')  # learning/panel.py's sets
INT8_TOLERANCE = 0.005  # the most int8 may lose against float on any panel set
# What fer_export_onnx's graphs are made of (torch.onnx and the int8 quantiser, for every
# architecture): nothing that loops, branches, or makes tensors of sizes it computes.
ALLOWED_OPS = frozenset({
    'Add', 'AveragePool', 'BatchNormalization', 'Cast', 'Clip', 'Concat', 'Constant', 'Conv',
    'ConvInteger', 'DequantizeLinear', 'Div', 'Dropout', 'Flatten', 'Gemm', 'GlobalAveragePool',
    'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'MatMul',
    'MatMulInteger', 'MaxPool', 'Mul', 'Pad', 'PRelu', 'QLinearConv', 'QLinearMatMul',
    'QuantizeLinear', 'ReduceMean', 'Relu', 'Reshape', 'Sigmoid', 'Softmax', 'Squeeze', 'Sub',
    'Transpose', 'Unsqueeze'})
# A graph from outside the shipped weights is run once in a child process with these limits.
PROBE_CPU_SECONDS = 20
PROBE_ADDRESS_SPACE_MB = 2048
MAX_GRAPH_MB = 256          # peak memory growth of one batch (the shipped ones: under 1 MB)
MAX_BATCH_SECONDS = 1.0     # for PROBE_BATCH faces (the shipped ones: 26-50 ms)
PROBE_BATCH = 16


def int8_verified(spec: ModelSpec) -> bool:
    """Whether the model's card shows its int8 graph within INT8_TOLERANCE of the torch model
    on every panel set (fer_panel --record, with and without --backend onnxruntime_int8)."""
    m = spec.metrics
    keys = [(f'panel_{s}_acc', f'panel_{s}_onnxruntime_int8_acc') for s in PANEL_SETS]
    return all(f in m and q in m and m[f] - m[q] <= INT8_TOLERANCE for f, q in keys)


def check_backend(name: str) -> str | None:
    """Why a backend name is unknown, or None."""
    return None if name in BACKENDS else f"use one of {', '.join(BACKENDS)}"


def onnx_file(checkpoint: Path, int8: bool) -> Path:
    return checkpoint.with_suffix('.int8.onnx' if int8 else '.onnx')


def sidecar(onnx: Path) -> Path:
    return onnx.with_suffix('.json')


def weights_sha256(module: torch.nn.Module) -> str:
    """Of the weights as loaded (names, dtypes, values), whatever else the checkpoint holds."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(f'{key}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_graph(graph: bytes, name: str, kind: str) -> None:
    """Refuse a graph with operators outside ALLOWED_OPS (or of another domain), or with
    functions of its own, before ONNX Runtime sees it."""
    try:
        import onnx
    except ImportError:
        raise ModelError(f'{name}: checking an ONNX file from outside the shipped weights needs '
                         'pip install onnx==1.23.2') from None
    try:
        model = onnx.load_model_from_string(graph)
    except Exception:  # protobuf's and onnx's own types for bytes that are no model
        raise ModelError(f'{name}: its {kind} file is not an ONNX model') from None
    ops = {(n.domain if n.domain != 'ai.onnx' else '', n.op_type) for n in model.graph.node}
    bad = sorted(f'{d}.{op}' if d else op for d, op in ops if d or op not in ALLOWED_OPS)
    if bad or model.functions:
        listed = ', '.join(printable(op, 40) for op in bad[:5]) or 'functions of its own'
        raise ModelError(f'{name}: its {kind} file holds what no expression model needs '
                         f'({listed}); refused')


# Run by a child process (run_probe): the graph from stdin on a batch of zeros; the last line
# printed is the peak memory growth in MB and the seconds the batch took.
_PROBE = '''
import time
import numpy as np, onnxruntime
graph, shape = sys.stdin.buffer.read(), [int(v) for v in sys.argv[3:]]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
options.log_severity_level = 4
limit_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
session = onnxruntime.InferenceSession(graph, options, providers=['CPUExecutionProvider'])
start = time.perf_counter()
session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})
took = time.perf_counter() - start
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10, took)
'''


def probe_graph(graph: bytes, spec: ModelSpec, kind: str) -> None:
    """Refuse a graph that kills, stalls or bloats a process: one batch of PROBE_BATCH faces
    in a child process (about 1 s)."""
    shape = (PROBE_BATCH, spec.input.channels, spec.input.size, spec.input.size)
    outcome = run_probe(_PROBE, graph, PROBE_CPU_SECONDS, PROBE_ADDRESS_SPACE_MB,
                        *map(str, shape))
    status, last = outcome if outcome else (None, '')
    peak, _, took = last.partition(' ')
    if status != 0 or not peak.isdigit():
        reason = (f'it did not run {PROBE_BATCH} faces within {PROBE_CPU_SECONDS} CPU seconds '
                  f'and {PROBE_ADDRESS_SPACE_MB} MB more address space')
    elif int(peak) > MAX_GRAPH_MB:
        reason = f'{PROBE_BATCH} faces take {peak} MB, over {MAX_GRAPH_MB} MB'
    elif float(took) > MAX_BATCH_SECONDS:
        reason = f'{PROBE_BATCH} faces take {float(took):.1f} s, over {MAX_BATCH_SECONDS:g} s'
    else:
        return
    raise ModelError(f'{spec.name}: its {kind} file is refused: {reason}')


class OnnxModel:
    """An ONNX graph of a model: logits (N, classes) of a float32 batch (N, C, S, S).

    One intra-op thread: these models run fastest that way per face at batch 1-8, and
    several nodes share the cores without oversubscription."""

    def __init__(self, graph: bytes | str, spec: ModelSpec, kind: str = 'ONNX'):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = onnxruntime.InferenceSession(
                graph, options, providers=['CPUExecutionProvider'])
        except Exception as exc:  # onnxruntime raises its own types for a broken graph
            raise ModelError(f'{spec.name}: ONNX Runtime cannot load its {kind} file: '
                             f"{' '.join(str(exc).split())[:200]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        want = [spec.input.channels, spec.input.size, spec.input.size]
        if (len(inputs) != 1 or list(inputs[0].shape[1:]) != want or len(outputs) != 1
                or outputs[0].shape[1:] != [len(spec.class_names)]):
            raise ModelError(f"{spec.name}: its {kind} file does not take (N, "
                             f"{', '.join(map(str, want))}) faces to (N, "
                             f'{len(spec.class_names)}) logits')
        self.input = inputs[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(x, np.float32)})[0]


def load_onnx(model: LoadedModel, int8: bool) -> OnnxModel:
    """The ONNX (or int8) file beside a loaded model's checkpoint, if it holds its weights."""
    name = model.spec.name
    kind = 'int8 ONNX' if int8 else 'ONNX'
    make = f"fer_export_onnx {name}{' --int8 <train.npz>' if int8 else ''}"
    if model.path is None:
        raise ModelError(f'{name} has no checkpoint to run as {kind}: use backend torch')
    path = onnx_file(model.path, int8)
    try:
        graph = read_regular_file(path, MAX_ONNX_BYTES)
        meta = json.loads(read_regular_file(sidecar(path), 1 << 20))
    except (OSError, ValueError):
        raise ModelError(f'{name}: no {kind} file beside its checkpoint; make it with '
                         f'`{make}`') from None
    if not isinstance(meta, dict) or meta.get('weights_sha256') != weights_sha256(model.module):
        raise ModelError(f'{name}: its {kind} file was exported from other weights; '
                         f'export it again with `{make}`')
    if path.resolve().parent != WEIGHTS:  # the shipped graphs are checked by their tests
        check_graph(graph, name, kind)
        probe_graph(graph, model.spec, kind)
    return OnnxModel(graph, model.spec, kind)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def onnx_probabilities(model: OnnxModel, x: np.ndarray, tta_flip: bool = False) -> np.ndarray:
    """As classifier.probabilities, for an ONNX model and a numpy batch."""
    if not tta_flip:
        return softmax(model(x))
    probs = softmax(model(np.concatenate([x, x[..., ::-1]])))
    return (probs[:len(x)] + probs[len(x):]) / 2
