"""Training on examples held in memory: augmentation, the loop, early stopping, evaluation.

Runs on the CPU (denormals flushed) or a GPU when one is present. Training is
bounded by a number of optimisation steps: the learning-rate schedule, the
evaluations and the end follow the step count, so the same data and seed train
the same model however busy the machine is. ``max_seconds`` is only a safety
stop; a run that reaches it says so (``FitResult.stopped_by == "time_limit"``).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from brandlens_model_server.detector import metrics
from brandlens_model_server.detector.model import STRIDE, LogoNet
from brandlens_model_server.detector.targets import decode, encode, focal_loss, gather

# ImageNet statistics in 0-255 units: (pixel - MEAN_RGB) / STD_RGB per channel.
MEAN_RGB = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD_RGB = np.array([0.229, 0.224, 0.225], np.float32) * 255
MEAN = torch.from_numpy(MEAN_RGB).view(1, 3, 1, 1)
STD = torch.from_numpy(STD_RGB).view(1, 3, 1, 1)


@dataclass
class Example:
    """One training image at its stored resolution, with boxes in its pixels."""

    image: np.ndarray  # (H, W, 3) uint8
    boxes: list[tuple[int, float, float, float, float]]  # (label, x0, y0, x1, y1)
    group: str = ""


@dataclass
class FitConfig:
    input_size: tuple[int, int] = (448, 256)
    train_crop: tuple[int, int] = (320, 192)  # training sees random crops of the canvas
    max_steps: int = 2000  # the budget: decides the learning-rate schedule and the end
    max_seconds: float | None = None  # safety stop only (a run that hits it says so)
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 24
    eval_every_steps: int = 200
    max_val_images: int = 120
    patience_evals: int = 4  # stop after this many evaluations without a better val mAP
    paste_probability: float = 0.6
    seed: int = 0
    threads: int | None = None


@dataclass
class FitResult:
    model: LogoNet
    best_val_map: float
    threshold: float
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    # why the loop ended: "steps" (the budget), "early_stopping" (validation mAP stopped
    # improving or reached 1), "time_limit" (the safety stop), "stop_requested"
    stopped_by: str = "steps"


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def normalise(batch_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float, ImageNet-normalised."""
    x = batch_uint8.permute(0, 3, 1, 2).float()
    return (x - MEAN.to(x.device)) / STD.to(x.device)


class Augmenter:
    """Scale/translate jitter, colour jitter, and pasting labelled crops onto other frames."""

    def __init__(self, examples: list[Example], config: FitConfig, rng: random.Random) -> None:
        self.examples = examples
        self.config = config
        self.rng = rng
        self.crops: list[tuple[int, np.ndarray]] = []
        for ex in examples:
            for label, x0, y0, x1, y1 in ex.boxes:
                crop = ex.image[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)]
                if crop.shape[0] >= 6 and crop.shape[1] >= 6:
                    self.crops.append((label, crop))

    def sample(
        self, ex: Example
    ) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
        cw, ch = self.config.input_size
        h, w = ex.image.shape[:2]
        base = min(cw / w, ch / h)
        scale = base * self.rng.uniform(0.7, 1.5)
        nw, nh = max(8, round(w * scale)), max(8, round(h * scale))
        img = _resize(ex.image, nw, nh)
        dx = self.rng.randint(min(0, cw - nw), max(0, cw - nw))
        dy = self.rng.randint(min(0, ch - nh), max(0, ch - nh))
        canvas = np.full((ch, cw, 3), 114, np.uint8)
        _blit(canvas, img, dx, dy)
        boxes = []
        for label, x0, y0, x1, y1 in ex.boxes:
            b = (x0 * scale + dx, y0 * scale + dy, x1 * scale + dx, y1 * scale + dy)
            clipped = (max(0.0, b[0]), max(0.0, b[1]), min(cw, b[2]), min(ch, b[3]))
            area = (b[2] - b[0]) * (b[3] - b[1])
            kept = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
            if area > 0 and kept / area >= 0.6:
                boxes.append((label, *clipped))
        if self.crops and self.rng.random() < self.config.paste_probability:
            for _ in range(self.rng.randint(1, 3)):
                boxes += self._paste(canvas, boxes)
        return _colour_jitter(canvas, self.rng), boxes

    def crop(
        self, image: np.ndarray, boxes: list[tuple[int, float, float, float, float]]
    ) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
        """A random training crop; a box stays if at least 60 % of it is inside."""
        tw, th = self.config.train_crop
        h, w = image.shape[:2]
        if (tw, th) == (w, h):
            return image, boxes
        if boxes and self.rng.random() < 0.7:  # mostly crops that contain an object
            _, bx0, by0, bx1, by1 = boxes[self.rng.randrange(len(boxes))]
            cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
            x = int(min(max(0, cx - self.rng.uniform(0.2, 0.8) * tw), w - tw))
            y = int(min(max(0, cy - self.rng.uniform(0.2, 0.8) * th), h - th))
        else:
            x, y = self.rng.randint(0, w - tw), self.rng.randint(0, h - th)
        out = []
        for label, x0, y0, x1, y1 in boxes:
            c = (max(x0, x) - x, max(y0, y) - y, min(x1, x + tw) - x, min(y1, y + th) - y)
            area = (x1 - x0) * (y1 - y0)
            if c[2] > c[0] and c[3] > c[1] and (c[2] - c[0]) * (c[3] - c[1]) >= 0.6 * area:
                out.append((label, *c))
        return np.ascontiguousarray(image[y : y + th, x : x + tw]), out

    def _paste(
        self, canvas: np.ndarray, existing: list[tuple[int, float, float, float, float]]
    ) -> list[tuple[int, float, float, float, float]]:
        label, crop = self.crops[self.rng.randrange(len(self.crops))]
        ch, cw = canvas.shape[:2]
        target_h = self.rng.uniform(0.05, 0.4) * ch
        s = target_h / crop.shape[0]
        nw, nh = max(6, round(crop.shape[1] * s)), max(6, round(crop.shape[0] * s))
        if nw >= cw or nh >= ch:
            return []
        for _ in range(10):
            x, y = self.rng.randint(0, cw - nw), self.rng.randint(0, ch - nh)
            box = (float(x), float(y), float(x + nw), float(y + nh))
            if all(metrics.iou(box, e[1:5]) < 0.05 for e in existing):
                canvas[y : y + nh, x : x + nw] = _resize(crop, nw, nh)
                return [(label, *box)]
        return []


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == w and img.shape[0] == h:
        return img
    t = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).unsqueeze(0).float()
    out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out.squeeze(0).permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy()


def _blit(canvas: np.ndarray, img: np.ndarray, dx: int, dy: int) -> None:
    ch, cw = canvas.shape[:2]
    h, w = img.shape[:2]
    x0, y0 = max(0, dx), max(0, dy)
    x1, y1 = min(cw, dx + w), min(ch, dy + h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = img[y0 - dy : y1 - dy, x0 - dx : x1 - dx]


def _colour_jitter(img: np.ndarray, rng: random.Random) -> np.ndarray:
    if rng.random() < 0.2:
        return img
    gain = np.array([rng.uniform(0.75, 1.25) for _ in range(3)], np.float32) * rng.uniform(0.7, 1.3)
    bias = rng.uniform(-25, 25)
    out = img.astype(np.float32) * gain + bias
    if rng.random() < 0.3:
        out += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _batch_targets(
    boxes: list[list[tuple[int, float, float, float, float]]], labels: int, grid: tuple[int, int]
) -> dict[str, torch.Tensor]:
    encoded = [encode(b, labels, grid[0], grid[1]) for b in boxes]
    return {k: torch.from_numpy(np.stack([e[k] for e in encoded])) for k in encoded[0]}


def predict(
    model: LogoNet, images: list[np.ndarray], batch_size: int = 16
) -> list[list[metrics.Detection]]:
    """Raw detections (label, score, x0, y0, x1, y1) in input pixels, every score >= 0.01."""
    model.eval()
    out: list[list[metrics.Detection]] = []
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = normalise(torch.from_numpy(np.stack(images[i : i + batch_size])).to(dev))
            out += decode(*model(x))
    return out


def fit(
    train: list[Example],
    val: list[Example],
    labels: list[str],
    config: FitConfig,
    progress: Callable[[dict[str, Any]], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> FitResult:
    if config.max_steps < 1 or config.eval_every_steps < 1:
        raise ValueError("max_steps and eval_every_steps must be at least 1")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)  # noqa: S311 - augmentation, not security
    dev = device()
    model = LogoNet(len(labels), width=config.width).to(dev)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    augmenter = Augmenter(train, config, rng)
    tw, th = config.train_crop
    grid = (th // STRIDE, tw // STRIDE)
    val = val[: config.max_val_images]
    val_images, val_truths = _fitted(val, config.input_size)
    started = time.monotonic()
    best_state, best_map, steps, stale = copy.deepcopy(model.state_dict()), -1.0, 0, 0
    history: list[dict[str, float]] = []
    order: list[int] = []
    stopped_by = "steps"
    report_every = max(1, config.max_steps // 50)
    while steps < config.max_steps:
        if should_stop():
            stopped_by = "stop_requested"
            break
        if config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
            stopped_by = "time_limit"
            break
        frac = steps / config.max_steps
        warm = min(1.0, (steps + 1) / 50)
        for group in optimiser.param_groups:
            group["lr"] = (
                config.learning_rate * warm * (0.5 * (1 + math.cos(math.pi * frac)) * 0.95 + 0.05)
            )
        if len(order) < config.batch_size:
            order += rng.sample(range(len(train)), len(train))
        picked = [order.pop() for _ in range(config.batch_size)]
        samples = [augmenter.crop(*augmenter.sample(train[i])) for i in picked]
        x = normalise(torch.from_numpy(np.stack([s[0] for s in samples])).to(dev))
        targets = {
            k: v.to(dev)
            for k, v in _batch_targets([s[1] for s in samples], len(labels), grid).items()
        }
        model.train()
        heat, size, offset = model(x)
        mask = targets["mask"].unsqueeze(-1)
        denom = mask.sum().clamp(min=1.0)
        size_loss = (
            F.l1_loss(gather(size, targets["index"]), targets["size"], reduction="none") * mask
        ).sum() / denom
        offset_loss = (
            F.l1_loss(gather(offset, targets["index"]), targets["offset"], reduction="none") * mask
        ).sum() / denom
        loss = focal_loss(heat, targets["heat"]) + 0.2 * size_loss + offset_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        steps += 1
        elapsed = time.monotonic() - started
        if steps % config.eval_every_steps == 0 or steps == config.max_steps:
            val_map = _evaluate(model, val_images, val_truths, len(labels)) if val else 0.0
            history.append(
                {
                    "seconds": round(elapsed, 1),
                    "steps": steps,
                    "loss": float(loss.detach()),
                    "val_map50": val_map,
                }
            )
            if val_map > best_map + 0.002:
                best_map, best_state, stale = val_map, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
            progress(
                {
                    "progress": steps / config.max_steps,
                    "steps": steps,
                    "max_steps": config.max_steps,
                    "loss": round(float(loss.detach()), 4),
                    "val_map50": round(val_map, 4),
                }
            )
            if (
                val
                and steps < config.max_steps
                and (stale >= config.patience_evals or val_map >= 0.999)
            ):
                stopped_by = "early_stopping"  # validation mAP has stopped improving
                break
        elif steps % report_every == 0:
            progress({"progress": steps / config.max_steps, "steps": steps})
    evaluated_at = history[-1]["steps"] if history else -1
    if steps == 0:
        best_state = model.state_dict()
    elif evaluated_at != steps:  # the last steps have not been evaluated yet
        val_map = _evaluate(model, val_images, val_truths, len(labels)) if val else 0.0
        history.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "steps": steps,
                "loss": float(loss.detach()),
                "val_map50": val_map,
            }
        )
        if val_map >= best_map:
            best_map, best_state = val_map, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    threshold = 0.3
    if val:
        detections = predict(model, val_images)
        threshold, _ = metrics.best_threshold(detections, val_truths, len(labels))
    return FitResult(
        model.cpu(),
        max(best_map, 0.0),
        threshold,
        steps,
        time.monotonic() - started,
        history,
        stopped_by,
    )


def _fitted(
    examples: list[Example], canvas: tuple[int, int]
) -> tuple[list[np.ndarray], list[list[metrics.Truth]]]:
    images, truths = [], []
    cw, ch = canvas
    for ex in examples:
        h, w = ex.image.shape[:2]
        s = min(cw / w, ch / h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        out = np.full((ch, cw, 3), 114, np.uint8)
        out[:nh, :nw] = _resize(ex.image, nw, nh)
        images.append(out)
        truths.append([(lab, x0 * s, y0 * s, x1 * s, y1 * s) for lab, x0, y0, x1, y1 in ex.boxes])
    return images, truths


def _evaluate(
    model: LogoNet, images: list[np.ndarray], truths: list[list[metrics.Truth]], labels: int
) -> float:
    value, _ = metrics.mean_ap(predict(model, images), truths, labels)
    return value


def evaluate(
    model: LogoNet,
    examples: list[Example],
    labels: list[str],
    threshold: float,
    canvas: tuple[int, int],
) -> dict[str, Any]:
    """mAP@0.5, AP per label, and P/R/F1 per label and overall at ``threshold``."""
    images, truths = _fitted(examples, canvas)
    detections = predict(model, images)
    map50, per_label = metrics.mean_ap(detections, truths, len(labels))
    result: dict[str, Any] = {"map50": map50, "labels": {}}
    tp = fp = fn = 0
    for k, name in enumerate(labels):
        s = metrics.scores_at(detections, truths, k, threshold)
        tp, fp, fn = tp + s.true_positives, fp + s.false_positives, fn + s.false_negatives
        result["labels"][name] = {
            "ap50": per_label[k],
            "precision": s.precision,
            "recall": s.recall,
            "f1": s.f1,
            "images": sum(1 for ts in truths if any(t[0] == k for t in ts)),
        }
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    result["precision"] = precision
    result["recall"] = recall
    result["f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return result
