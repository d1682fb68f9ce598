"""The detector's dense box targets (TTFNet-style) and the GIoU loss that uses them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from brandlens_model_server.detector.model import STRIDE
from brandlens_model_server.detector.targets import encode, giou_loss

GRID_H, GRID_W = 24, 40


def test_cells_around_each_centre_regress_its_box_weighted_by_its_log_area() -> None:
    big = (0, 16.0, 16.0, 176.0, 96.0)  # 160 x 80 px
    small = (1, 200.0, 120.0, 224.0, 136.0)  # 24 x 16 px
    t = encode([big, small], 2, GRID_H, GRID_W)
    weight, box = t["box_weight"], t["box"]
    big_cells = np.all(box == np.array(big[1:], np.float32)[:, None, None] / STRIDE, axis=0)
    small_cells = np.all(box == np.array(small[1:], np.float32)[:, None, None] / STRIDE, axis=0)
    # many cells per box: a few dozen labels give many box-regression samples
    assert big_cells.sum() >= 20
    assert small_cells.sum() >= 1
    assert not (weight[~(big_cells | small_cells)]).any()
    # each box's weights sum to the log of its area (a large box counts more, not linearly)
    assert weight[big_cells].sum() == pytest.approx(math.log(160 * 80), rel=1e-4)
    assert weight[small_cells].sum() == pytest.approx(math.log(24 * 16), rel=1e-4)
    # the centre cell (where the heatmap peaks and the box is read) is always among them
    assert big_cells[56 // STRIDE, 96 // STRIDE]
    assert small_cells[128 // STRIDE, 212 // STRIDE]
    # and only the central part of the box regresses it, not its whole area
    assert big_cells.sum() < (160 // STRIDE) * (80 // STRIDE) / 2


def test_the_smaller_box_keeps_the_cells_two_boxes_share() -> None:
    outer = (0, 0.0, 0.0, 240.0, 160.0)
    inner = (1, 104.0, 64.0, 136.0, 96.0)  # centred inside the outer box
    for order in ([outer, inner], [inner, outer]):
        t = encode(order, 2, GRID_H, GRID_W)
        assert t["box"][:, 80 // STRIDE, 120 // STRIDE].tolist() == [13.0, 8.0, 17.0, 12.0]


def _predicted(box: tuple[float, float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """size and offset maps with which every cell predicts ``box`` (pixels)."""
    x0, y0, x1, y1 = box
    size = torch.empty(1, 2, GRID_H, GRID_W)
    size[:, 0], size[:, 1] = math.log(x1 - x0), math.log(y1 - y0)
    gy, gx = torch.meshgrid(torch.arange(GRID_H), torch.arange(GRID_W), indexing="ij")
    offset = torch.stack([(x0 + x1) / 2 / STRIDE - gx, (y0 + y1) / 2 / STRIDE - gy])[None]
    return size, offset.float()


def test_giou_loss_is_zero_for_the_right_box_and_grows_as_the_box_goes_wrong() -> None:
    truth = (0, 40.0, 40.0, 120.0, 80.0)
    t = encode([truth], 1, GRID_H, GRID_W)
    box, weight = torch.from_numpy(t["box"])[None], torch.from_numpy(t["box_weight"])[None]
    losses = [
        float(giou_loss(*_predicted(b), box, weight))
        for b in (
            (40.0, 40.0, 120.0, 80.0),  # exact
            (44.0, 40.0, 124.0, 80.0),  # shifted 4 px
            (40.0, 40.0, 90.0, 70.0),  # too small
            (200.0, 150.0, 240.0, 170.0),  # elsewhere, no overlap (GIoU < 0)
        )
    ]
    assert losses[0] == pytest.approx(0.0, abs=1e-5)
    assert 0 < losses[1] < losses[2] < 1 < losses[3] <= 2
    # and it trains: its gradient moves a wrong size towards the truth
    size, offset = _predicted((40.0, 40.0, 90.0, 70.0))
    size.requires_grad_(True)
    giou_loss(size, offset, box, weight).backward()  # type: ignore[no-untyped-call]
    assert size.grad is not None
    assert float((size.grad * weight).sum()) < 0  # a larger log size lowers the loss
