"""Training targets (Gaussian centre heatmaps, sizes, offsets) and box decoding."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from brandlens_model_server.detector.model import STRIDE

# A box in the network's input pixels: (label index, x0, y0, x1, y1)
InputBox = tuple[int, float, float, float, float]


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: how far a centre may move and still give IoU >= min_overlap."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return max(0.0, min(r1, r2, r3))


def encode(
    boxes: list[InputBox], num_labels: int, grid_h: int, grid_w: int, max_objects: int = 64
) -> dict[str, np.ndarray]:
    heat = np.zeros((num_labels, grid_h, grid_w), np.float32)
    size = np.zeros((max_objects, 2), np.float32)
    offset = np.zeros((max_objects, 2), np.float32)
    index = np.zeros(max_objects, np.int64)
    mask = np.zeros(max_objects, np.float32)
    ys, xs = np.ogrid[:grid_h, :grid_w]
    for k, (label, x0, y0, x1, y1) in enumerate(boxes[:max_objects]):
        w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
        if w <= 0.25 or h <= 0.25:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        ix, iy = min(grid_w - 1, max(0, int(cx))), min(grid_h - 1, max(0, int(cy)))
        radius = max(0.0, gaussian_radius(h, w))
        sigma = max(radius, 0.5) / 3 + 0.3
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2)).astype(np.float32)
        np.maximum(heat[label], g, out=heat[label])
        size[k] = (math.log(max(x1 - x0, 1.0)), math.log(max(y1 - y0, 1.0)))
        offset[k] = (cx - ix, cy - iy)
        index[k] = iy * grid_w + ix
        mask[k] = 1.0
    return {"heat": heat, "size": size, "offset": offset, "index": index, "mask": mask}


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on the heatmap."""
    pred = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred**2 * (1 - target) ** 4 * neg
    num_pos = pos.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def gather(feature: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """feature (B, C, H, W), index (B, K) -> (B, K, C)."""
    b, c, _, _ = feature.shape
    flat = feature.reshape(b, c, -1).permute(0, 2, 1)
    return flat.gather(1, index.unsqueeze(-1).expand(-1, -1, c))


def decode(
    heat_logits: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    *,
    top_k: int = 100,
    min_score: float = 0.01,
) -> list[list[tuple[int, float, float, float, float, float]]]:
    """Boxes per image: (label, score, x0, y0, x1, y1) in input pixels."""
    heat = torch.sigmoid(heat_logits)
    peaks = F.max_pool2d(heat, 3, stride=1, padding=1)
    heat = heat * (peaks == heat).float()
    b, c, h, w = heat.shape
    scores, flat = heat.reshape(b, -1).topk(min(top_k, c * h * w))
    labels = flat // (h * w)
    cells = flat % (h * w)
    sizes = gather(size, cells)
    offsets = gather(offset, cells)
    out: list[list[tuple[int, float, float, float, float, float]]] = []
    for i in range(b):
        found = []
        for k in range(scores.shape[1]):
            score = float(scores[i, k])
            if score < min_score:
                break
            cell = int(cells[i, k])
            cx = (cell % w + float(offsets[i, k, 0])) * STRIDE
            cy = (cell // w + float(offsets[i, k, 1])) * STRIDE
            bw, bh = math.exp(float(sizes[i, k, 0])), math.exp(float(sizes[i, k, 1]))
            found.append(
                (int(labels[i, k]), score, cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            )
        out.append(found)
    return out
