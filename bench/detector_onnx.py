"""torch or onnxruntime for inference on the CPU? Same model, same input, same run.

Exports the model that ``bench/detector.py`` trained (bench/.cache/detector/model)
to ONNX and times one 448x256 forward pass with torch (inference mode) and
with onnxruntime (CPU provider, 2 intra-op threads), after a warm-up, 200
passes each, interleaved. Needs onnx and onnxruntime
(onnx and onnxruntime are model-server dependencies).
Writes bench/results/detector_onnx.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
MODEL = ROOT / ".cache" / "detector" / "model"
RESULTS = ROOT / "results" / "detector_onnx.json"


def main() -> int:
    try:
        import onnxruntime as ort  # type: ignore[import-not-found]
    except ImportError:
        print("onnxruntime is not installed: pip install -e '.[model-server]'")
        return 1
    from brandlens_model_server.detector.runtime import Detector

    torch.set_num_threads(2)
    detector = Detector.load(MODEL)
    model = detector._model.eval()  # the bench compares the bare network
    x = torch.randn(1, 3, 256, 448)
    path = Path(tempfile.mkdtemp()) / "model.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        input_names=["x"],
        output_names=["heat", "size", "offset"],
        dynamo=False,  # the TorchScript exporter: no onnxscript graph rewriting needed
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    with torch.inference_mode():
        reference = model(x)
    got = session.run(None, feed)
    worst = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(reference, got, strict=True))
    # Blocks, not interleaved: each runtime's thread pool spins after its work
    # and would steal the cores from the other. torch, then ort, then torch again.
    torch_ms: list[float] = []
    ort_ms: list[float] = []
    with torch.inference_mode():
        for block in ("torch", "ort", "torch"):
            for i in range(220):
                t = time.perf_counter()
                if block == "torch":
                    model(x)
                else:
                    session.run(None, feed)
                if i >= 20:  # warm-up
                    (torch_ms if block == "torch" else ort_ms).append(
                        (time.perf_counter() - t) * 1000
                    )
    figures = {
        "torch_ms_median": round(statistics.median(torch_ms), 3),
        "onnxruntime_ms_median": round(statistics.median(ort_ms), 3),
        "onnxruntime_over_torch": round(statistics.median(ort_ms) / statistics.median(torch_ms), 3),
        "max_abs_output_difference": worst,
        "onnxruntime_version": ort.__version__,
        "torch_version": torch.__version__,
        "machine": {"cpus": os.cpu_count()},
        "when": datetime.now(UTC).isoformat(),
    }
    faster = "onnxruntime" if figures["onnxruntime_over_torch"] < 1 else "torch"
    print(
        f"torch {figures['torch_ms_median']} ms   "
        f"onnxruntime {figures['onnxruntime_ms_median']} ms   "
        f"(ort/torch {figures['onnxruntime_over_torch']}; "
        f"outputs differ by <= {worst:.2e}) -> {faster}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
