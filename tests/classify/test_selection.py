"""Feature selection of PixelClassifier (select_features=True)."""

from __future__ import annotations

import numpy as np
import pytest

from niseg.classify import PixelClassifier, _pixel
from niseg.classify._selection import heldout_dice, k_grid
from niseg.features import FeatureSpec, compute_features
from niseg.metrics import dice
from niseg.models import load_model, read_model_info, save_model

BANK = FeatureSpec(filters=("gaussian", "log", "gradient", "hessian"), scales=(0.7, 1.0, 2.0, 4.0))


def discs(shape=(96, 96), seed=0):
    """Faint discs in strong noise: only smoothed intensity at a coarse scale matters."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    truth = np.zeros(shape, np.uint8)
    for _ in range(7):
        centre = rng.uniform(10, np.array(shape) - 10).reshape(2, 1, 1)
        truth |= (np.hypot(*(grid - centre)) < rng.uniform(7, 12)).astype(np.uint8)
    return (truth + rng.normal(0, 1.2, shape)).astype(np.float32), truth


def test_k_grid_and_heldout_dice():
    assert k_grid(57) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48]
    assert k_grid(2) == [1] and k_grid(1) == []
    truth = np.array([0, 1, 1, 0, 2, 2])
    pred = np.array([0, 1, 0, 0, 2, 1])
    assert heldout_dice(pred, truth, 2) == pytest.approx(2 * 1 / (2 + 2))
    per_class = [2 * 2 / 5, 2 * 1 / 4, 2 * 1 / 3]
    assert heldout_dice(pred, truth, 3) == pytest.approx(np.mean(per_class))


def test_selection_drops_most_features_and_keeps_dice(tmp_path, monkeypatch):
    image, truth = discs(seed=1)
    n_all = BANK.n_features(1, 2)
    assert n_all == 21
    kwargs = {"features": BANK, "n_estimators": 20, "max_samples_per_class": 4000}
    full = PixelClassifier(**kwargs).fit(image, masks=truth)
    model = PixelClassifier(select_features=True, **kwargs).fit(image, masks=truth)
    record = model.selection_
    k = record["chosen_k"]
    assert k <= 6 and k == len(model.selected_features_) == len(model.feature_columns_)
    assert record["k"][-1] == n_all and record["k"][:-1] == k_grid(n_all)[: len(record["k"]) - 1]
    assert record["k"][-2] == k and len(record["dice"]) == len(record["k"])
    assert record["dice"][-1] == record["full_dice"] > 0.7
    assert record["chosen_dice"] >= record["full_dice"] - 0.01
    assert all(d < record["full_dice"] - 0.01 for d in record["dice"][:-2])
    assert record["ranked_by"] == "importances" and sorted(record["ranking"]) == sorted(
        BANK.names())
    assert set(model.selected_features_) == set(record["ranking"][:k])
    assert model.feature_names_ == [BANK.names()[c] for c in model.feature_columns_]
    assert model.feature_importances_.shape == (k,)
    assert max(model.halo) <= max(full.halo)
    # on new data the small model is about as good as the full one
    test_image, test_truth = discs(seed=2)
    d_full = dice(full.predict(test_image), test_truth)
    d_sel = dice(model.predict(test_image), test_truth)
    assert d_sel > d_full - 0.05, (d_sel, d_full)

    # prediction computes only the selected columns
    asked = []
    real = _pixel.compute_features

    def spy(image, spec, **kw):
        asked.append(kw.get("columns"))
        return real(image, spec, **kw)

    monkeypatch.setattr(_pixel, "compute_features", spy)
    proba = model.predict_proba(test_image)
    assert asked == [model.feature_columns_]
    monkeypatch.undo()
    expected = compute_features(test_image, BANK)[..., model.feature_columns_]
    np.testing.assert_array_equal(
        proba.reshape(-1, 2),
        model.estimator_.predict_proba(expected.reshape(-1, k)).astype(np.float32))

    path = save_model(model, tmp_path / "selected.niseg")
    info = read_model_info(path)
    assert info["state"]["selection_"] == record
    assert info["state"]["selected_features_"] == model.selected_features_
    assert info["halo"] == list(model.halo)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(test_image), proba)
    assert loaded.selection_ == record and loaded.halo == model.halo


def test_selection_without_importances_uses_an_auxiliary_forest():
    image, truth = discs((80, 80), seed=3)
    model = PixelClassifier(features=BANK, method="logreg", select_features=True,
                            max_samples_per_class=2000).fit(image, masks=truth)
    assert model.selection_["ranked_by"] == "auxiliary random forest"
    assert model.selection_["chosen_k"] < 21


def test_selection_with_sparse_labels_three_classes_and_autocontext():
    rng = np.random.default_rng(0)
    image = np.zeros((96, 90), np.float32)
    image[:, 30:60] = 1.5
    image[:, 60:] = 3
    image += rng.normal(0, 1, image.shape).astype(np.float32)
    labels = np.zeros(image.shape, np.uint8)
    labels[::3, 4:26] = 1
    labels[::3, 34:56] = 2
    labels[::3, 64:86] = 3
    model = PixelClassifier(features=BANK, n_estimators=10, select_features=True, stages=2,
                            context_features=FeatureSpec(filters=("gaussian",), scales=(2.0,))
                            ).fit(image, labels)
    record = model.selection_
    assert record["chosen_k"] < 21 and record["full_dice"] > 0.8
    image_halo = BANK.halo_per_axis(None, 2, columns=model.feature_columns_)
    assert model.halo == tuple(h + 8 for h in image_halo)
    assert len(model.stage_feature_names_[1]) == record["chosen_k"] + 3 * 2
    assert (model.predict(image)[:, 64:86] == 3).mean() > 0.9


def test_selection_needs_labels_in_and_out_of_the_held_out_stripe():
    image, _truth = discs((64, 64), seed=4)
    labels = np.zeros(image.shape, np.uint8)
    labels[10, :30], labels[10, 30:] = 1, 2
    with pytest.raises(ValueError, match="select_features needs labelled pixels of every class"):
        PixelClassifier(features=BANK, n_estimators=3, select_features=True).fit(image, labels)
