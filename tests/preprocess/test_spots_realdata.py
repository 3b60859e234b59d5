"""Spot cleaning on real radiographs (../shared/data) with simulated spots of known position.

The real neutron and X-ray images of a snail shell bring real structure, edges and noise; the
spots come from niseg.simulate.add_spots, so their exact mask is known. The spot amplitude unit
is the image's own noise, estimated robustly from neighbour differences, as a user would.
"""

from __future__ import annotations

import numpy as np
import pytest

from niseg.metrics import precision, recall
from niseg.preprocess import clean_spots
from niseg.simulate import add_spots


def _noise_sigma(image: np.ndarray) -> float:
    diff = np.diff(image.astype(np.float64), axis=1)
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shellN", "shellX"])
@pytest.mark.parametrize("polarity", ["bright", "both"])
def test_default_cleaner_on_real_shell_radiographs(shared_data, name, polarity):
    image = np.load(shared_data / "neutron_xray_shell" / f"{name}.npy")
    assert image.dtype == np.uint16
    spotty, mask = add_spots(
        image.astype(np.float32),
        noise_sigma=_noise_sigma(image),
        dark_fraction=0.1 if polarity == "both" else 0.0,
        saturation=65535.0,
        seed=1,
    )
    truth = mask > 0
    cleaned, found = clean_spots(spotty, polarity=polarity, return_mask=True)
    assert precision(truth, found) >= 0.9
    assert recall(truth, found) >= 0.9

    def rmse(a):
        return float(np.sqrt(np.mean((a.astype(np.float64) - image) ** 2)))

    assert rmse(spotty) / rmse(cleaned) >= 5.0
    # Pixels that were not flagged are returned untouched.
    np.testing.assert_array_equal(cleaned[~found], spotty[~found])
