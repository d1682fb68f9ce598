"""The detector learns a logo from a tiny dataset and finds it in a frame it never saw."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from brandlens_model_server.detector.fit import Example, FitConfig, fit
from brandlens_model_server.detector.metrics import iou
from brandlens_model_server.detector.runtime import Detector, save_model
from brandlens_synth import SceneConfig, default_brands, render_scene

STORE = (672, 384)


def scene_example(seed: int, n_logos: int) -> tuple[Image.Image, Example]:
    rng = np.random.default_rng(seed)
    config = replace(SceneConfig.clean(), min_logos=1, max_logos=1, logo_height=(0.15, 0.3))
    image, boxes = render_scene(rng, default_brands(1), 1280, 720, n_logos=n_logos, config=config)
    k = STORE[0] / 1280
    arr = np.asarray(image.resize(STORE))
    ex = Example(
        arr,
        [(0, b.left * k, b.top * k, (b.left + b.width) * k, (b.top + b.height) * k) for b in boxes],
        group=str(seed),
    )
    return image, ex


# 120 steps of 8 crops from the ImageNet backbone: about 40 s on an idle 2-core machine; a
# busy one takes longer but trains the same model, hence the generous timeout.
@pytest.mark.timeout(900)
def test_a_model_trained_in_seconds_finds_the_logo_in_a_held_out_frame(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train = [scene_example(seed, 0 if seed % 6 == 0 else 1)[1] for seed in range(48)]
    result = fit(
        train, train[:12], ["acme"], FitConfig(max_steps=120, eval_every_steps=40, batch_size=8)
    )
    assert result.model.architecture == "brandlens-lite0-v2"  # the default
    save_model(
        result.model,
        tmp_path / "model",
        labels=["acme"],
        input_size=(448, 256),
        threshold=result.threshold,
    )
    detector = Detector.load(tmp_path / "model")
    assert detector.backend == "onnxruntime"  # the ONNX export is there and preferred

    image, held_out = scene_example(10_001, 1)  # a frame the model never saw
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    found = detector.detect(buf.getvalue(), max_results=1)

    assert found, "no logo found"
    assert found[0]["Name"] == "acme"
    box = found[0]["Geometry"]["BoundingBox"]
    _, x0, y0, x1, y1 = held_out.boxes[0]
    truth = (x0 / STORE[0], y0 / STORE[1], x1 / STORE[0], y1 / STORE[1])
    predicted = (box["Left"], box["Top"], box["Left"] + box["Width"], box["Top"] + box["Height"])
    assert iou(predicted, truth) >= 0.5, (predicted, truth)


def test_detect_refuses_bytes_that_are_not_an_image(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from brandlens_model_server.detector.model import LiteLogoNet
    from brandlens_model_server.detector.runtime import InvalidImageError

    save_model(LiteLogoNet(1), tmp_path, labels=["acme"], input_size=(448, 256), threshold=0.5)
    with pytest.raises(InvalidImageError):
        Detector.load(tmp_path).detect(b"GIF89a not really")


@pytest.mark.parametrize("architecture", ["brandlens-lite0-v2", "brandlens-logonet-v1"])
def test_onnxruntime_and_torch_find_the_same_boxes(tmp_path, monkeypatch, architecture) -> None:  # type: ignore[no-untyped-def]
    """Both architectures load and serve: v2 (the default) and v1 models trained before it."""
    from brandlens_model_server.detector.model import build

    torch_seeded = build(architecture, 2)
    save_model(torch_seeded, tmp_path, labels=["a", "b"], input_size=(448, 256), threshold=0.0)
    image, _ = scene_example(3, 1)
    buf = io.BytesIO()
    image.save(buf, "JPEG")
    with_ort = Detector.load(tmp_path)
    monkeypatch.setenv("BRANDLENS_DETECTOR_BACKEND", "torch")
    with_torch = Detector.load(tmp_path)
    assert (with_ort.backend, with_torch.backend) == ("onnxruntime", "torch")
    assert with_ort.meta["architecture"] == architecture
    a = with_ort.detect(buf.getvalue(), min_confidence=0)
    b = with_torch.detect(buf.getvalue(), min_confidence=0)
    assert a
    assert [x["Name"] for x in a[:10]] == [x["Name"] for x in b[:10]]
    for x, y in zip(a[:10], b[:10], strict=True):
        assert x["Confidence"] == pytest.approx(y["Confidence"], abs=0.01)
