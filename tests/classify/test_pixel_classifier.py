"""Tests of niseg.classify.PixelClassifier."""

from __future__ import annotations

import time

import numpy as np
import pytest

from niseg.classify import METHODS, PixelClassifier
from niseg.features import FeatureSpec
from niseg.metrics import dice
from niseg.models import Segmenter, load_model, read_model_info, save_model
from niseg.simulate import brush_strokes
from niseg.threshold import ThresholdSegmenter
from niseg.tiling import predict_tiled

SMALL = FeatureSpec(filters=("gaussian", "log", "gradient"), scales=(1.0, 2.0))


def two_textures(shape=(64, 64), seed=0):
    """Same mean, different roughness: a threshold cannot separate them, texture can."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    centre = np.array(shape).reshape(-1, *([1] * len(shape))) / 2
    truth = (np.sqrt(((grid - centre) ** 2).sum(0)) < min(shape) / 3).astype(np.uint8)
    image = 100 + rng.normal(0, 1, shape) * np.where(truth, 20.0, 3.0)
    return image.astype(np.float32), truth


def test_beats_threshold_on_two_textures():
    image, truth = two_textures(seed=1)
    test_image, test_truth = two_textures(seed=2)
    model = PixelClassifier(features="fast", n_estimators=20).fit(image, masks=truth)
    assert isinstance(model, Segmenter)
    threshold = ThresholdSegmenter(sigma=1.0).fit(image, masks=truth)
    d_model = dice(model.predict(test_image), test_truth)
    d_thresh = dice(threshold.predict(test_image), test_truth)
    assert d_model > 0.9
    assert d_model > d_thresh + 0.2
    assert model.classes_.tolist() == [0, 1] and model.classes_.dtype == np.uint8
    assert model.fitted_with_ == "masks"


def test_sparse_brush_strokes():
    image, truth = two_textures(seed=3)
    labels = brush_strokes(truth, fraction=0.05, width=3, seed=0)  # truth v -> label v + 1
    assert 0 < (labels != 0).mean() < 0.2
    model = PixelClassifier(features="fast", n_estimators=20).fit(image, labels)
    assert model.classes_.tolist() == [1, 2]
    pred = model.predict(image)
    assert set(np.unique(pred)) <= {1, 2}
    assert dice(pred == 2, truth) > 0.85


def test_arbitrary_label_values_and_three_classes():
    rng = np.random.default_rng(0)
    image = np.zeros((60, 60), np.float32)
    image[:, 20:40] = 5
    image[:, 40:] = 10
    image += rng.normal(0, 0.5, image.shape).astype(np.float32)
    labels = np.zeros((60, 60), np.uint16)
    labels[5:10, 2:15] = 3
    labels[5:10, 25:35] = 7
    labels[50:55, 45:58] = 300
    model = PixelClassifier(features=SMALL, n_estimators=10).fit(image, labels)
    assert model.classes_.tolist() == [3, 7, 300] and model.classes_.dtype == np.uint16
    proba = model.predict_proba(image)
    assert proba.shape == (60, 60, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(-1), 1, atol=1e-5)
    pred = model.predict(image)
    np.testing.assert_array_equal(pred, model.classes_[np.argmax(proba, -1)])
    assert (pred[:, 25:35] == 7).mean() > 0.95 and (pred[:, 45:] == 300).mean() > 0.95


def test_uncertainty_is_one_minus_top_two_margin():
    image, truth = two_textures(seed=4)
    model = PixelClassifier(features="fast", n_estimators=10).fit(image, masks=truth)
    proba = model.predict_proba(image)
    unc = model.predict_uncertainty(image)
    assert unc.dtype == np.float32 and unc.shape == image.shape
    top = np.sort(proba, axis=-1)
    np.testing.assert_allclose(unc, 1 - (top[..., -1] - top[..., -2]), atol=1e-6)
    assert unc.min() >= 0 and unc.max() <= 1
    # Pixels on the boundary are less certain than pixels deep inside a region.
    from scipy import ndimage as ndi

    edge = ndi.binary_dilation(truth) & ~ndi.binary_erosion(truth)
    assert unc[edge].mean() > unc[~ndi.binary_dilation(edge, iterations=4)].mean()


def test_sampling_cap_per_class():
    image, truth = two_textures(seed=5)
    model = PixelClassifier(features=SMALL, n_estimators=5, max_samples_per_class=100).fit(
        image, masks=truth)
    assert model.n_samples_per_class_.tolist() == [100, 100]
    everything = PixelClassifier(features=SMALL, n_estimators=5, max_samples_per_class=None)
    everything.fit(image, masks=truth)
    assert everything.n_samples_per_class_.tolist() == [int((truth == 0).sum()),
                                                        int(truth.sum())]


def test_several_images_and_feature_importances():
    (a, ta), (b, tb) = two_textures(seed=6), two_textures((48, 56), seed=7)
    model = PixelClassifier(features="fast", n_estimators=10).fit([a, b], masks=[ta, tb])
    names = model.feature_names_
    assert names == FeatureSpec.preset("fast").names(1, 2) and len(names) == 10
    imp = model.feature_importances_
    assert imp.shape == (10,) and abs(imp.sum() - 1) < 1e-6
    # Texture (gradient magnitude) tells the regions apart, not the smoothed intensity.
    best = names[int(np.argmax(imp))]
    assert best.startswith(("gradient", "log")), best
    logreg = PixelClassifier(features="fast", method="logreg").fit(a, masks=ta)
    with pytest.raises(AttributeError, match="no feature importances"):
        _ = logreg.feature_importances_


@pytest.mark.parametrize("method", METHODS)
def test_every_method_learns_and_round_trips(method, tmp_path):
    image, truth = two_textures(seed=8)
    model = PixelClassifier(features=SMALL, method=method, n_estimators=10,
                            max_samples_per_class=400).fit(image, masks=truth)
    test_image, test_truth = two_textures(seed=9)
    assert dice(model.predict(test_image), test_truth) > 0.8
    path = save_model(model, tmp_path / f"{method}.niseg")
    info = read_model_info(path)
    assert info["kind"] == "pixel-classifier" and info["halo"] == [8, 8]
    assert info["state"]["feature_names_"] == model.feature_names_
    loaded = load_model(path)
    assert type(loaded) is PixelClassifier and loaded.method == method
    np.testing.assert_array_equal(loaded.predict_proba(test_image),
                                  model.predict_proba(test_image))
    np.testing.assert_array_equal(loaded.predict(test_image), model.predict(test_image))
    assert loaded.halo == model.halo and loaded.feature_spec_ == SMALL


def test_feature_importances_are_stored_in_the_model_file(tmp_path):
    image, truth = two_textures(seed=10)
    model = PixelClassifier(features="fast", n_estimators=5).fit(image, masks=truth)
    info = read_model_info(save_model(model, tmp_path / "m.niseg"))
    stored = info["state"]["feature_importances_"]
    assert info["state"]["feature_names_"] == model.feature_names_
    np.testing.assert_allclose(stored, model.feature_importances_)
    assert info["params"]["features"] == "fast"


def test_tiled_equals_untiled_2d():
    image, truth = two_textures((90, 70), seed=11)
    model = PixelClassifier(features="fast", n_estimators=10).fit(image, masks=truth)
    assert model.halo == (40, 40)
    whole_labels = model.predict(image)
    whole_proba = model.predict_proba(image)
    labels, proba = predict_tiled(model, image, tile=(25, 30), output="both")
    np.testing.assert_array_equal(labels, whole_labels)
    np.testing.assert_array_equal(proba, whole_proba)
    np.testing.assert_array_equal(predict_tiled(model, image, tile=17), whole_labels)


@pytest.mark.parametrize("method", METHODS)
def test_tiled_probabilities_equal_untiled_for_every_method(method):
    image, truth = two_textures((120, 110), seed=17)
    model = PixelClassifier(features=SMALL, method=method, n_estimators=5,
                            max_samples_per_class=500).fit(image, masks=truth)
    tiled = predict_tiled(model, image, tile=(50, 45), output="proba")
    np.testing.assert_array_equal(tiled, model.predict_proba(image))


def test_tiled_equals_untiled_3d_anisotropic():
    image, truth = two_textures((20, 28, 28), seed=12)
    model = PixelClassifier(features=SMALL, n_estimators=8, spacing=(2.0, 1.0, 1.0))
    model.fit(image, masks=truth)
    assert model.spatial_dims == 3 and model.halo == (4, 8, 8)
    whole = model.predict(image)
    assert dice(whole, truth) > 0.8
    np.testing.assert_array_equal(predict_tiled(model, image, tile=(7, 10, 9)), whole)


def test_multichannel_channels_last(tmp_path):
    image, truth = two_textures((48, 48), seed=13)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, image.shape).astype(np.float32)
    stack = np.stack([noise, image], axis=-1)
    model = PixelClassifier(features=SMALL, n_estimators=8, channel_axis=-1)
    model.fit(stack, masks=truth)
    assert model.n_channels_ == 2 and model.spatial_dims == 2
    assert model.feature_names_[0] == "ch1 raw"
    whole = model.predict(stack)
    assert whole.shape == (48, 48) and dice(whole, truth) > 0.8
    np.testing.assert_array_equal(predict_tiled(model, stack, tile=20), whole)
    loaded = load_model(save_model(model, tmp_path / "c.niseg"))
    np.testing.assert_array_equal(loaded.predict(stack), whole)
    with pytest.raises(ValueError, match="image has 3 channels on its last axis but the model "
                                         "was trained on 2"):
        model.predict(np.concatenate([stack, stack[..., :1]], axis=-1))
    with pytest.raises(ValueError, match="2 spatial axes and 2 channels last"):
        model.predict(image)


def test_deterministic_with_the_same_random_state():
    image, truth = two_textures(seed=14)
    test_image, _ = two_textures(seed=15)

    def proba(seed):
        model = PixelClassifier(features=SMALL, n_estimators=10, max_samples_per_class=300,
                                random_state=seed, n_jobs=2)
        return model.fit(image, masks=truth).predict_proba(test_image)

    first = proba(0)
    np.testing.assert_array_equal(first, proba(0))
    assert not np.array_equal(first, proba(1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"labels": np.ones((32, 32), np.uint8)}, ValueError, r"only one class \(1\)"),
        ({"labels": np.zeros((32, 32), np.uint8)}, ValueError, "no labelled pixels"),
        ({"labels": np.ones((32, 30), np.uint8)}, ValueError,
         r"labels has shape \(32, 30\) but image has shape \(32, 32\)"),
        ({"masks": np.ones((32, 32), np.uint8)}, ValueError,
         "both foreground and background"),
        ({}, ValueError, "either labels .* or masks"),
        ({"labels": np.full((32, 32), 0.5)}, TypeError, "whole-number"),
        ({"labels": np.full((32, 32), -1)}, ValueError, "negative"),
    ],
)
def test_fit_errors(kwargs, error, message):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    with pytest.raises(error, match=message):
        PixelClassifier(features=SMALL, n_estimators=2).fit(image, **kwargs)


def test_input_errors():
    image, truth = two_textures((32, 32), seed=16)
    bad = image.copy()
    bad[3, 4] = np.nan
    model = PixelClassifier(features=SMALL, n_estimators=2)
    with pytest.raises(ValueError, match="images contains NaN or infinite values"):
        model.fit(bad, masks=truth)
    with pytest.raises(ValueError, match=r"images\[1\] contains NaN"):
        model.fit([image, bad], masks=[truth, truth])
    with pytest.raises(ValueError, match="got 2 images but 1 masks"):
        model.fit([image, image], masks=[truth])
    with pytest.raises(ValueError, match="not fitted yet"):
        model.predict(image)
    with pytest.raises(ValueError, match="method must be one of"):
        PixelClassifier(method="svm").fit(image, masks=truth)
    with pytest.raises(ValueError, match="unknown feature preset"):
        PixelClassifier(features="fancy").fit(image, masks=truth)
    with pytest.raises(ValueError, match="position"):
        PixelClassifier(features=FeatureSpec(position=True, filters=())).fit(image, masks=truth)
    with pytest.raises(ValueError, match="n_estimators must be a positive integer"):
        PixelClassifier(n_estimators=0).fit(image, masks=truth)
    with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
        PixelClassifier(features=SMALL, spacing=(1.0, 1.0, 2.0)).fit(image, masks=truth)
    model.fit(image, masks=truth)
    with pytest.raises(ValueError, match="image contains NaN or infinite values"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"image has shape \(4, 32, 32\) but the model "
                                         "expects 2 dimensions"):
        model.predict(np.stack([image] * 4))
    with pytest.raises(ValueError, match="expects 2 dimensions"):
        model.predict_proba(np.stack([image, image], axis=-1))


@pytest.mark.slow
def test_em_mitochondria_dice(shared_data):
    from niseg.io import read_image

    folder = shared_data / "em_mitochondria"
    image = np.asarray(read_image(folder / "em_image.png")[0])
    truth = np.asarray(read_image(folder / "em_image_seg.png")[0]) != 0
    assert image.shape == (768, 1024)
    start = time.perf_counter()
    model = PixelClassifier(features="ilastik", n_estimators=50, n_jobs=2)
    model.fit(image[:, :512], masks=truth[:, :512])
    pred = model.predict(image[:, 512:])
    elapsed = time.perf_counter() - start
    score = dice(pred, truth[:, 512:])
    assert score >= 0.72, f"Dice {score:.3f} in {elapsed:.1f} s"
