"""Detection metrics: AP@0.5 per label (all-point interpolation), mAP, and P/R/F1 at a threshold."""

from __future__ import annotations

from dataclasses import dataclass

# (label, score, x0, y0, x1, y1) and (label, x0, y0, x1, y1), in any one pixel space per image
Detection = tuple[int, float, float, float, float, float]
Truth = tuple[int, float, float, float, float]


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _matches(
    detections: list[list[Detection]], truths: list[list[Truth]], label: int, iou_min: float
) -> tuple[list[tuple[float, bool]], int]:
    """(score, true positive?) for every detection of ``label``, and the number of truths."""
    scored: list[tuple[float, int, Detection]] = []
    for i, dets in enumerate(detections):
        scored += [(d[1], i, d) for d in dets if d[0] == label]
    scored.sort(key=lambda s: -s[0])
    used: set[tuple[int, int]] = set()
    total = sum(1 for ts in truths for t in ts if t[0] == label)
    out: list[tuple[float, bool]] = []
    for score, i, d in scored:
        best, best_j = iou_min, -1
        for j, t in enumerate(truths[i]):
            if t[0] != label or (i, j) in used:
                continue
            overlap = iou((d[2], d[3], d[4], d[5]), (t[1], t[2], t[3], t[4]))
            if overlap >= best:
                best, best_j = overlap, j
        if best_j >= 0:
            used.add((i, best_j))
        out.append((score, best_j >= 0))
    return out, total


def average_precision(
    detections: list[list[Detection]], truths: list[list[Truth]], label: int, iou_min: float = 0.5
) -> float | None:
    matched, total = _matches(detections, truths, label, iou_min)
    if total == 0:
        return None
    tp = fp = 0
    precisions: list[float] = []
    recalls: list[float] = []
    for _, hit in matched:
        tp += hit
        fp += not hit
        precisions.append(tp / (tp + fp))
        recalls.append(tp / total)
    # all-point interpolation (VOC 2010+): precision made monotone, area under the steps
    for k in range(len(precisions) - 2, -1, -1):
        precisions[k] = max(precisions[k], precisions[k + 1])
    ap, previous_recall = 0.0, 0.0
    for p, r in zip(precisions, recalls, strict=True):
        ap += p * (r - previous_recall)
        previous_recall = r
    return ap


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def scores_at(
    detections: list[list[Detection]],
    truths: list[list[Truth]],
    label: int,
    threshold: float,
    iou_min: float = 0.5,
) -> LabelScores:
    kept = [[d for d in dets if d[1] >= threshold] for dets in detections]
    matched, total = _matches(kept, truths, label, iou_min)
    tp = sum(hit for _, hit in matched)
    fp = len(matched) - tp
    fn = total - tp
    precision = tp / (tp + fp) if tp + fp else (1.0 if total == 0 else 0.0)
    recall = tp / total if total else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScores(precision, recall, f1, tp, fp, fn)


def micro_f1(
    detections: list[list[Detection]], truths: list[list[Truth]], labels: int, threshold: float
) -> float:
    tp = fp = fn = 0
    for label in range(labels):
        s = scores_at(detections, truths, label, threshold)
        tp, fp, fn = tp + s.true_positives, fp + s.false_positives, fn + s.false_negatives
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_threshold(
    detections: list[list[Detection]], truths: list[list[Truth]], labels: int
) -> tuple[float, float]:
    """The score threshold with the best micro F1 on this data, and that F1."""
    best = (0.5, -1.0)
    for step in range(5, 96, 2):
        t = step / 100
        f1 = micro_f1(detections, truths, labels, t)
        if f1 > best[1]:
            best = (t, f1)
    return best


def mean_ap(
    detections: list[list[Detection]], truths: list[list[Truth]], labels: int
) -> tuple[float, list[float | None]]:
    per_label = [average_precision(detections, truths, k) for k in range(labels)]
    present = [ap for ap in per_label if ap is not None]
    return (sum(present) / len(present) if present else 0.0), per_label


# Size buckets by box width as a fraction of the frame's width (issue 19's report).
SIZE_BUCKETS = (("<5%", 0.0, 0.05), ("5-10%", 0.05, 0.10), (">10%", 0.10, float("inf")))


def mean_ap_by_size(
    detections: list[list[Detection]],
    truths: list[list[Truth]],
    labels: int,
    frame_widths: list[float],
) -> dict[str, float | None]:
    """mAP@0.5 over the truths of each size bucket (``frame_widths``: each image's frame
    width in the boxes' pixel space), the way COCO's area ranges work: a detection that
    finds a truth of another bucket is ignored, and a false positive counts in the bucket
    of its own width. None for a bucket without truths."""
    out: dict[str, float | None] = {}
    for name, lo, hi in SIZE_BUCKETS:
        kept_dets: list[list[Detection]] = []
        kept_truths: list[list[Truth]] = []
        for dets, ts, fw in zip(detections, truths, frame_widths, strict=True):

            def inside(
                x0: float, x1: float, fw: float = fw, lo: float = lo, hi: float = hi
            ) -> bool:
                return lo <= (x1 - x0) / fw < hi

            ins = [t for t in ts if inside(t[1], t[3])]
            outs = [t for t in ts if not inside(t[1], t[3])]
            kept: list[Detection] = []
            for d in dets:
                box = (d[2], d[3], d[4], d[5])
                finds_in = any(t[0] == d[0] and iou(box, t[1:5]) >= 0.5 for t in ins)
                finds_out = any(t[0] == d[0] and iou(box, t[1:5]) >= 0.5 for t in outs)
                if finds_in or (not finds_out and inside(d[2], d[4])):
                    kept.append(d)
            kept_dets.append(kept)
            kept_truths.append(ins)
        if not any(kept_truths):
            out[name] = None
            continue
        out[name] = mean_ap(kept_dets, kept_truths, labels)[0]
    return out
