"""Smoke tests of benchmarks/bench_unet.py's helpers on a tiny U-Net (no real data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_unet

from niseg.deep import UNetSegmenter


@pytest.fixture(scope="module")
def tiny_model():
    rng = np.random.default_rng(0)
    truth = np.zeros((64, 64), np.uint8)
    truth[16:48, 20:44] = 1
    image = (truth * 100 + rng.normal(50, 10, truth.shape)).astype(np.float32)
    model = UNetSegmenter(depth=2, base_channels=4, patch_size=32, epochs=1,
                          iterations_per_epoch=3, augment="none", validation=None,
                          n_threads=1, random_state=0)
    return model.fit(image, masks=truth), image


def test_em_params_rows():
    a = bench_unet.em_params("a", 1, 2.0)
    assert a == {"time_budget": 2.0, "random_state": 1, "n_threads": 2}
    b = bench_unet.em_params("b", 0, 15.0)
    assert (b["depth"], b["base_channels"], b["patch_size"], b["batch_size"]) == (3, 16, 128, 4)
    assert b["augment"].flip_p == 0.5 and b["augment"].rot90_p == 0.5
    with pytest.raises(ValueError, match="row"):
        bench_unet.em_params("c", 0, 1.0)


def test_plain_labels_pads_and_crops(tiny_model):
    model, image = tiny_model
    # 50 x 45 is not a multiple of the net's 4: plain inference pads, then crops back.
    crop = image[:50, :45]
    labels = bench_unet.plain_labels(model, crop)
    assert labels.shape == (50, 45)
    assert set(np.unique(labels)) <= {0, 1}
    # Away from the borders the whole-image pass and the blended sliding window agree.
    tiled = bench_unet.tiled_labels(model, crop)
    assert tiled.shape == crop.shape
    assert np.mean(labels[8:-8, 8:-8] == tiled[8:-8, 8:-8]) > 0.9


def test_test_image_is_mirrored_float32():
    source = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = bench_unet.test_image(source, 7)
    assert out.shape == (7, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:3, :4], source)
    np.testing.assert_array_equal(out[:3, 4:7], source[:, ::-1][:, :3])
    np.testing.assert_array_equal(out[3:6, :4], source[::-1])


def test_worker_reports_working_memory(tiny_model, tmp_path, monkeypatch):
    from niseg.models import save_model

    model, image = tiny_model
    path = tmp_path / "tiny.niseg"
    save_model(model, path)
    monkeypatch.setattr(bench_unet, "load_em", lambda: (image, None))
    result = bench_unet.worker("plain", path, 64)
    assert result["error"] is None and result["size"] == 64
    assert result["working_mib"] >= 0 and result["peak_mib"] >= result["baseline_mib"]
    assert 0.0 <= result["foreground"] <= 1.0
