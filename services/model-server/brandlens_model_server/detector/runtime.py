"""A trained model, loaded for inference: bytes in, Rekognition-shaped labels out.

Inference runs on onnxruntime from the ONNX export written next to the torch
weights when onnxruntime is installed (bench/detector_onnx.py measured it
2.3x faster than torch on 2 CPU cores, same outputs to 1e-5), else on torch.
``BRANDLENS_DETECTOR_BACKEND=torch`` forces torch.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brandlens_model_server.detector.fit import Network, normalise
from brandlens_model_server.detector.imaging import InvalidImageError, decode, fit
from brandlens_model_server.detector.model import V1, V2, build
from brandlens_model_server.detector.targets import decode as decode_boxes

__all__ = ["ARCHITECTURES", "Detector", "InvalidImageError", "save_model"]

# What Detector.load reads: v2 (pretrained backbone) is what training writes; v1 models
# (trained before it) still load and serve.
ARCHITECTURES = (V2, V1)


def save_model(
    model: Network,
    directory: Path,
    *,
    labels: list[str],
    input_size: tuple[int, int],
    threshold: float,
    extra: dict[str, Any] | None = None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    export_onnx(model, directory / "model.onnx", input_size)
    meta = {
        "architecture": model.architecture,
        "labels": labels,
        "input_size": list(input_size),
        "threshold": round(threshold * 100, 3),
        "width": model.width,
        **(extra or {}),
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))


def export_onnx(model: Network, path: Path, input_size: tuple[int, int]) -> None:
    """The network as ONNX (batch dimension dynamic), for onnxruntime."""
    dummy = torch.zeros(1, 3, input_size[1], input_size[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model.eval(),
            (dummy,),
            str(path),
            input_names=["x"],
            output_names=["heat", "size", "offset"],
            dynamic_axes={"x": {0: "batch"}},
            dynamo=False,
        )


def _onnx_session(path: Path) -> Any | None:
    if os.environ.get("BRANDLENS_DETECTOR_BACKEND", "auto") == "torch" or not path.exists():
        return None
    try:
        import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    # denormal floats (activations can underflow into them) are slow on x86; as zeros
    # they change no detection
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Detector:
    """Thread-safe: ``detect`` may run in several threads of one pool at once."""

    def __init__(self, model: Network, meta: dict[str, Any], session: Any | None = None) -> None:
        self._model = model.eval()
        self._session = session
        self.backend = "onnxruntime" if session is not None else "torch"
        self.meta = meta
        self.labels: list[str] = list(meta["labels"])
        self.threshold: float = float(meta["threshold"])
        self.input_size: tuple[int, int] = (int(meta["input_size"][0]), int(meta["input_size"][1]))

    @classmethod
    def load(cls, directory: str | Path) -> Detector:
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"no usable meta.json in {directory}: {exc}") from None
        if meta.get("architecture") not in ARCHITECTURES:
            raise ValueError(
                f"model architecture {meta.get('architecture')!r} is not one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        torch.set_flush_denormal(True)
        # The trained weights replace the ImageNet ones: no need to read those.
        model = build(
            meta["architecture"], len(meta["labels"]), int(meta["width"]), pretrained=False
        )
        state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        session = _onnx_session(directory / "model.onnx")
        if session is not None:
            # onnxruntime runs the network on its own threads; torch is left with the
            # small pre/post-processing ops, which two spinning thread pools would slow.
            torch.set_num_threads(1)
        return cls(model, meta, session)

    def detect(
        self, image: bytes, min_confidence: float | None = None, max_results: int | None = None
    ) -> list[dict[str, Any]]:
        """CustomLabels for ``image`` (JPEG/PNG bytes), best first.

        ``min_confidence`` in percent; None means the model's assumed threshold.
        """
        canvas = self.input_size
        fitted = fit(decode(image, target=(canvas[0], canvas[1])), canvas)
        boxes = self._boxes([fitted.array])[0]
        floor = self.threshold if min_confidence is None else float(min_confidence)
        ow, oh = fitted.original_size
        found: list[dict[str, Any]] = []
        for label, score, x0, y0, x1, y1 in boxes:
            confidence = score * 100
            if confidence < floor:
                continue
            left = max(0.0, x0 / fitted.scale / ow)
            top = max(0.0, y0 / fitted.scale / oh)
            right = min(1.0, x1 / fitted.scale / ow)
            bottom = min(1.0, y1 / fitted.scale / oh)
            if right <= left or bottom <= top:
                continue
            found.append(
                {
                    "Name": self.labels[label],
                    "Confidence": round(confidence, 3),
                    "Geometry": {
                        "BoundingBox": {
                            "Width": round(right - left, 6),
                            "Height": round(bottom - top, 6),
                            "Left": round(left, 6),
                            "Top": round(top, 6),
                        }
                    },
                }
            )
        found.sort(key=lambda f: -f["Confidence"])
        return found[:max_results] if max_results else found

    def _boxes(
        self, arrays: list[np.ndarray]
    ) -> list[list[tuple[int, float, float, float, float, float]]]:
        with torch.inference_mode():
            if self._session is not None:
                batch = np.stack(arrays).astype(np.float32)
                if self._model.architecture == V1:
                    mean = np.array(self._model.input_mean, np.float32)
                    std = np.array(self._model.input_std, np.float32)
                    batch = ((batch - mean) / std).astype(np.float32)
                outputs = self._session.run(
                    None, {"x": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))}
                )
                heat, size, offset = (torch.from_numpy(o) for o in outputs)
            else:
                x = normalise(torch.from_numpy(np.stack(arrays)), self._model)
                heat, size, offset = self._model(x)
            return decode_boxes(heat, size, offset, top_k=50, min_score=0.01)
