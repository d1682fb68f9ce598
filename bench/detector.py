"""Detector benchmark: accuracy, training time and inference speed on the synthetic logo set.

Generates (and caches under bench/.cache/) a training set and a held-out test
set from brandlens_synth: several brands, 1280x720 frames, negatives included,
frames grouped in shots (the split is by shot, so nothing leaks). Trains the
detector with the same code the training process runs, for a number of
optimisation steps (default 2000, the model-server's default: about 9 min on an
idle 2-core machine), then measures on the held-out frames:

* mAP@0.5 and AP per label (target mAP >= 0.90 with <= 10 min of training);
* ms per 1280x720 JPEG frame through ``Detector.detect`` (decode + resize +
  model + decode), and the bare model call on a prepared tensor, in the same
  run (target <= 25 ms per frame on 2 cores);
* with ``--server``, DetectCustomLabels through the model-server over HTTP
  against the bare model call (the server's overhead).

Prints a table and writes bench/results/detector.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from brandlens_model_server.detector.fit import Example, FitConfig, evaluate, fit
from brandlens_model_server.detector.imaging import decode
from brandlens_model_server.detector.imaging import fit as fit_canvas
from brandlens_model_server.detector.runtime import Detector, save_model
from brandlens_synth import default_brands, generate_dataset

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "detector"
RESULTS = ROOT / "results" / "detector.json"


def dataset(name: str, n: int, seed: int, brands: int) -> list[dict[str, object]]:
    out = CACHE / f"{name}-{n}-{seed}-{brands}"
    done = out / "samples.jsonl"
    if not done.exists():
        t = time.monotonic()
        generate_dataset(
            out,
            brands=default_brands(brands),
            n_images=n,
            seed=seed,
            uri_prefix=f"s3://bench/{name}/",
        )
        print(f"generated {name}: {n} frames in {time.monotonic() - t:.0f}s", flush=True)
    return [json.loads(line) for line in done.read_text().splitlines()]


def examples(
    samples: list[dict[str, object]], labels: list[str], root: Path, store: tuple[int, int]
) -> list[Example]:
    index = {n: i for i, n in enumerate(labels)}
    out = []
    for s in samples:
        img = Image.open(root / str(s["file"])).convert("RGB")
        ow, oh = img.size
        k = min(store[0] / ow, store[1] / oh)
        arr = np.asarray(img.resize((round(ow * k), round(oh * k)), Image.Resampling.BILINEAR))
        boxes = [
            (
                index[b["label"]],
                b["left"] * k,
                b["top"] * k,
                (b["left"] + b["width"]) * k,
                (b["top"] + b["height"]) * k,
            )
            for b in s["boxes"]
        ]  # type: ignore[index,union-attr]
        out.append(Example(arr, boxes, str(s["group"])))
    return out


def inference_speed(model_dir: Path, frames_dir: Path) -> dict[str, object]:
    """ms per 1280x720 JPEG through Detector.detect, and the bare network call (this backend)."""
    detector = Detector.load(model_dir)
    frames = []
    for path in sorted(frames_dir.glob("*.jpg"))[:100]:
        buf = io.BytesIO()
        Image.open(path).convert("RGB").save(buf, "JPEG", quality=90)
        frames.append(buf.getvalue())
    for f in frames[:5]:
        detector.detect(f)
    detect_ms = []
    for f in frames:
        t = time.perf_counter()
        detector.detect(f)
        detect_ms.append((time.perf_counter() - t) * 1000)
    canvas = fit_canvas(decode(frames[0], (448, 256)), (448, 256)).array
    bare_ms = []
    for i in range(105):
        t = time.perf_counter()
        detector._boxes([canvas])  # the network and box decoding, no JPEG work
        if i >= 5:
            bare_ms.append((time.perf_counter() - t) * 1000)
    return {
        "backend": detector.backend,
        "detect_ms_median": round(statistics.median(detect_ms), 2),
        "detect_ms_p90": round(sorted(detect_ms)[int(0.9 * len(detect_ms))], 2),
        "bare_model_ms_median": round(statistics.median(bare_ms), 2),
    }


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--inference-only":
        print(json.dumps(inference_speed(Path(sys.argv[2]), Path(sys.argv[3]))))
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--brands", type=int, default=4)
    ap.add_argument("--train-images", type=int, default=480)
    ap.add_argument("--test-images", type=int, default=240)
    ap.add_argument("--train-steps", type=int, default=2000)
    ap.add_argument("--max-train-seconds", type=float, default=None, help="safety stop")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    brands = [b.name for b in default_brands(args.brands)]
    train_samples = dataset("train", args.train_images, 1, args.brands)
    test_samples = dataset("test", args.test_images, 2, args.brands)
    config = FitConfig(
        max_steps=args.train_steps, max_seconds=args.max_train_seconds, threads=args.threads
    )
    store = (round(config.input_size[0] * 1.5), round(config.input_size[1] * 1.5))
    root_train = CACHE / f"train-{args.train_images}-1-{args.brands}"
    root_test = CACHE / f"test-{args.test_images}-2-{args.brands}"
    train_all = examples(train_samples, brands, root_train, store)
    test = examples(test_samples, brands, root_test, store)
    groups = sorted({e.group for e in train_all})
    val_groups = set(groups[:: max(2, round(1 / 0.15))])
    train = [e for e in train_all if e.group not in val_groups]
    val = [e for e in train_all if e.group in val_groups]
    print(
        f"train {len(train)} / val {len(val)} / test {len(test)} frames, brands {brands}",
        flush=True,
    )
    started = time.monotonic()
    result = fit(train, val, brands, config, progress=lambda p: print(json.dumps(p), flush=True))
    train_seconds = time.monotonic() - started
    report = evaluate(result.model, test, brands, result.threshold, config.input_size)

    model_dir = CACHE / "model"
    save_model(
        result.model,
        model_dir,
        labels=brands,
        input_size=config.input_size,
        threshold=result.threshold,
    )
    # Inference is timed in a fresh process, as the model-server runs it: in this
    # process torch's thread pool is still spinning from training.
    speed = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--inference-only", str(model_dir), str(root_test)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[-1]
    )
    figures = {
        "map50": report["map50"],
        "ap50_per_label": {k: v["ap50"] for k, v in report["labels"].items()},
        "f1_at_threshold": report["f1"],
        "threshold": result.threshold,
        "train_seconds": round(train_seconds, 1),
        "train_steps": result.steps,
        "stopped_by": result.stopped_by,
        "val_map50": result.best_val_map,
        **speed,
        "frames": {"train": len(train), "val": len(val), "test": len(test)},
        "brands": brands,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "when": datetime.now(UTC).isoformat(),
    }
    figures["passed"] = {
        "map50>=0.90": figures["map50"] >= 0.90,
        "train<=600s": train_seconds <= 600,
        "detect<=25ms": figures["detect_ms_median"] <= 25,
    }
    print(
        f"\nmAP@0.5 {figures['map50']:.3f}   "
        + "  ".join(f"{k} {v:.3f}" for k, v in figures["ap50_per_label"].items() if v is not None)
    )
    print(
        f"train {figures['train_seconds']}s ({result.steps} steps)   "
        f"threshold {result.threshold:.2f}   F1 {report['f1']:.3f}"
    )
    print(
        f"detect() {figures['detect_ms_median']} ms/frame (p90 {figures['detect_ms_p90']})   "
        f"bare model {figures['bare_model_ms_median']} ms   backend {figures['backend']}"
    )
    for k, v in figures["passed"].items():
        print(f"  {k:16} {'PASS' if v else 'FAIL'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
