"""A small single-stage detector (CenterNet-style) written on PyTorch alone.

The network sees the frame at a reduced size (default 448x256 for 16:9) and
predicts, on a grid of stride 8, a heatmap per label (object centres), the
box size (log of width and height in input pixels) and the sub-cell offset
of the centre. Two resolutions (stride 8 and 16) are fused so that small
logos and large ones both see enough context.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 8


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x), inplace=True)


class LogoNet(nn.Module):
    def __init__(self, num_labels: int, width: int = 24) -> None:
        super().__init__()
        w = width
        self.num_labels = num_labels
        self.width = width
        self.stem = nn.Sequential(_conv(3, w // 2, 2), _conv(w // 2, w, 2))  # stride 4
        self.s8 = nn.Sequential(_conv(w, 2 * w, 2), _Residual(2 * w))  # stride 8
        self.s16 = nn.Sequential(
            _conv(2 * w, 3 * w, 2), _Residual(3 * w), _Residual(3 * w, dilation=2)
        )  # stride 16
        self.s32 = nn.Sequential(_conv(3 * w, 4 * w, 2), _Residual(4 * w))  # stride 32
        self.lat16 = nn.Conv2d(4 * w, 3 * w, 1)
        self.lat8 = nn.Conv2d(3 * w, 2 * w, 1)
        self.fuse = _conv(2 * w, 2 * w)
        self.heatmap = nn.Sequential(_conv(2 * w, 2 * w), nn.Conv2d(2 * w, num_labels, 1))
        self.size = nn.Sequential(_conv(2 * w, w), nn.Conv2d(w, 2, 1))
        self.offset = nn.Sequential(_conv(2 * w, w), nn.Conv2d(w, 2, 1))
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d)
        assert last.bias is not None
        nn.init.constant_(last.bias, -4.6)  # start at p = 0.01 (focal-loss prior)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c8 = self.s8(self.stem(x))
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p16 = c16 + F.interpolate(self.lat16(c32), size=c16.shape[-2:], mode="nearest")
        p8 = c8 + F.interpolate(self.lat8(p16), size=c8.shape[-2:], mode="nearest")
        p8 = self.fuse(p8)
        return self.heatmap(p8), self.size(p8), self.offset(p8)
