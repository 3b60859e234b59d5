"""Real data: a U-Net on the EM mitochondria protocol (train left half, score right half)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("torch")
iio = pytest.importorskip("imageio.v3")

from niseg.deep import AugmentConfig, UNetSegmenter
from niseg.metrics import dice


@pytest.mark.slow
def test_em_mitochondria_right_half_dice(shared_data):
    folder = shared_data / "em_mitochondria"
    image = iio.imread(folder / "em_image.png")
    truth = iio.imread(folder / "em_image_seg.png") > 0
    model = UNetSegmenter(depth=3, base_channels=16, patch_size=128, batch_size=4,
                          loss="dice_ce", optimizer="adamw", learning_rate=1e-3,
                          schedule="cosine", epochs=8, iterations_per_epoch=25,
                          validation=0.1, patience=10,
                          augment=AugmentConfig.preset("none", flip_p=0.5, rot90_p=0.5),
                          n_threads=None, random_state=0)  # PyTorch's default (conftest)
    start = time.monotonic()
    model.fit(image[:, :512], masks=truth[:, :512])
    seconds = time.monotonic() - start
    # The validation block lies in the training (left) half only.
    assert model.validation_["source"] == "split"
    for block in model.validation_["blocks"]:
        assert block["image"] == 0
    assert model.iterations_ == 200
    predicted = model.predict(image[:, 512:])
    score = dice(truth[:, 512:], predicted)
    print(f"EM right-half Dice {score:.3f} after {seconds:.0f} s "
          f"(best epoch {model.best_epoch_}, {model.iterations_} iterations)")
    assert score >= 0.85  # measured 0.913 (0.827 when the raw validation maximum chose)
