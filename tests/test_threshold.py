"""Tests for niseg.threshold: automatic levels and the trainable ThresholdSegmenter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.special import expit
from skimage import filters

from niseg.models import Segmenter
from niseg.threshold import AUTOMATIC_METHODS, ThresholdSegmenter, threshold_value


def _bimodal(shape=(48, 56), seed=0):
    """A noisy bright rectangle on a dark background, with its true mask."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.uint8)
    truth[tuple(slice(s // 4, 3 * s // 4) for s in shape)] = 1
    image = 10.0 + 5.0 * truth + rng.normal(0, 1.5, shape)
    return image, truth


def _smooth(image, sigma):
    return ndi.gaussian_filter(np.asarray(image, np.float32), sigma, mode="reflect", truncate=4.0)


def _dice(pred, truth):
    return 2.0 * np.logical_and(pred, truth).sum() / (pred.sum() + truth.sum())


# --------------------------------------------------------------------------------------------
# threshold_value


@pytest.mark.parametrize("method", [m for m in AUTOMATIC_METHODS if m != "intermodes"])
def test_threshold_value_matches_scikit_image(method):
    image, _ = _bimodal()
    expected = getattr(filters, f"threshold_{method}")(image.astype(np.float64).ravel())
    assert threshold_value(image, method=method) == pytest.approx(float(expected), abs=0)


def test_threshold_value_ignores_nan():
    image, _ = _bimodal()
    with_nan = image.copy()
    with_nan[:3] = np.nan
    assert threshold_value(with_nan) == filters.threshold_otsu(image[3:].ravel())


def test_threshold_value_integer_image_not_rescaled():
    image = np.r_[np.full(50, 1000, np.uint16), np.full(50, 3000, np.uint16)]
    level = threshold_value(image)
    assert 1000 <= level < 3000


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((8, 8), 3.0), "constant"),
        (np.full((8, 8), np.nan), "no finite values"),
        (np.array([np.nan, np.inf, -np.inf]), "no finite values"),
    ],
)
def test_threshold_value_rejects_degenerate_images(image, message):
    with pytest.raises(ValueError, match=message):
        threshold_value(image)


def test_threshold_value_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        threshold_value(np.arange(10.0), method="magic")


def test_threshold_minimum_failure_is_a_value_error():
    # One tall peak and one lone outlier: the smoothed histogram keeps a single maximum.
    with pytest.raises(ValueError, match="the minimum threshold failed"):
        threshold_value(np.r_[np.zeros(100), 1.0], method="minimum")


# --------------------------------------------------------------------------------------------
# ThresholdSegmenter: unsupervised


@pytest.mark.parametrize("sigma", [0, 1.5, (1.0, 2.5)])
def test_unsupervised_level_is_otsu_of_smoothed_image(sigma):
    image, _ = _bimodal()
    model = ThresholdSegmenter(sigma=sigma).fit(image)
    smoothed = _smooth(image, sigma)
    assert model.threshold_ == filters.threshold_otsu(smoothed.astype(np.float64))
    assert model.threshold_ == pytest.approx(float(filters.threshold_otsu(smoothed)), rel=1e-6)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    np.testing.assert_array_equal(model.predict(image), smoothed > model.threshold_)
    assert model.fitted_with_ == "otsu"


@pytest.mark.parametrize("method", ["li", "yen", "isodata", "mean", "triangle"])
def test_unsupervised_other_methods(method):
    image, _ = _bimodal()
    model = ThresholdSegmenter(sigma=1.0, method=method).fit(image)
    smoothed = _smooth(image, 1.0).astype(np.float64).ravel()
    assert model.threshold_ == getattr(filters, f"threshold_{method}")(smoothed)


def test_unsupervised_several_images_pool_their_values():
    a, _ = _bimodal(seed=1)
    b, _ = _bimodal(shape=(30, 40), seed=2)
    model = ThresholdSegmenter(sigma=1.0).fit([a, b])
    pooled = np.concatenate([_smooth(a, 1.0).ravel(), _smooth(b, 1.0).ravel()])
    assert model.threshold_ == filters.threshold_otsu(pooled.astype(np.float64))


def test_unsupervised_dark_foreground_inverts_labels():
    image, truth = _bimodal()
    bright = ThresholdSegmenter(sigma=1.0).fit(image)
    dark = ThresholdSegmenter(sigma=1.0, foreground="dark").fit(image)
    assert dark.threshold_ == bright.threshold_
    np.testing.assert_array_equal(dark.predict(image), 1 - bright.predict(image))
    assert _dice(dark.predict(image) == 1, truth == 0) > 0.95


def test_unsupervised_3d():
    rng = np.random.default_rng(3)
    truth = np.zeros((12, 20, 22), np.uint8)
    truth[3:9, 5:15, 6:16] = 1
    image = truth * 4.0 + rng.normal(0, 1, truth.shape)
    model = ThresholdSegmenter(sigma=(0.5, 1.0, 1.0)).fit(image)
    assert model.spatial_dims == 3
    assert _dice(model.predict(image) == 1, truth == 1) > 0.95


def test_integer_images_are_not_rescaled():
    image, truth = _bimodal()
    counts = np.round(image * 100).astype(np.uint16)
    model = ThresholdSegmenter(sigma=0).fit(counts, masks=truth)
    assert 1000 < model.threshold_ < 1500


# --------------------------------------------------------------------------------------------
# ThresholdSegmenter: dense masks


@pytest.mark.parametrize("foreground", ["bright", "dark"])
def test_mask_level_maximises_dice(foreground):
    image, truth = _bimodal(shape=(24, 26), seed=5)
    # Heavier noise so that the best level is a real compromise.
    image = image + np.random.default_rng(6).normal(0, 2.0, image.shape)
    if foreground == "dark":
        image = -image
    model = ThresholdSegmenter(sigma=0.7, foreground=foreground).fit(image, masks=truth)
    smoothed = _smooth(image, 0.7).astype(np.float64)
    learned = _dice(model.predict(image) == 1, truth == 1)

    values = np.unique(smoothed)
    candidates = np.r_[values, 0.5 * (values[1:] + values[:-1]), values[0] - 1, values[-1] + 1]
    for level in candidates:
        pred = smoothed > level if foreground == "bright" else smoothed <= level
        assert _dice(pred, truth == 1) <= learned
    assert learned > 0.8
    assert model.fitted_with_ == "best-dice"


def test_mask_level_separates_perfectly_separable_data():
    truth = np.zeros((10, 10), np.uint8)
    truth[2:7, 3:8] = 1
    image = np.where(truth == 1, 7.0, 2.0)
    model = ThresholdSegmenter(sigma=0).fit(image, masks=truth * 255)
    assert 2.0 < model.threshold_ < 7.0
    np.testing.assert_array_equal(model.predict(image), truth)


def test_mask_level_learned_from_several_images():
    a, ta = _bimodal(seed=7)
    b, tb = _bimodal(shape=(20, 30), seed=8)
    model = ThresholdSegmenter(sigma=1.0).fit([a, b], masks=[ta, tb])
    for image, truth in ((a, ta), (b, tb)):
        assert _dice(model.predict(image) == 1, truth == 1) > 0.95


def test_masks_need_both_classes():
    image, truth = _bimodal()
    with pytest.raises(ValueError, match="both foreground and background"):
        ThresholdSegmenter().fit(image, masks=np.ones_like(truth))
    with pytest.raises(ValueError, match="both foreground and background"):
        ThresholdSegmenter().fit(image, masks=np.zeros_like(truth))


# --------------------------------------------------------------------------------------------
# ThresholdSegmenter: sparse labels


def _strokes(truth, object_value, background_value):
    labels = np.zeros(truth.shape, np.uint8)
    labels[truth.shape[0] // 2, truth.shape[1] // 4 + 2 : 3 * truth.shape[1] // 4 - 2] = (
        object_value
    )
    labels[1, :] = background_value
    labels[:, -2] = background_value
    return labels


@pytest.mark.parametrize("obj, background", [(2, 1), (1, 2)])
@pytest.mark.parametrize("polarity", ["bright", "dark"])
def test_sparse_labels_learn_orientation(obj, background, polarity):
    image, truth = _bimodal(seed=9)
    if polarity == "dark":
        image = -image
    labels = _strokes(truth, obj, background)
    # foreground is ignored with labels: the data tell which class is brighter.
    model = ThresholdSegmenter(sigma=1.0, foreground="bright").fit(image, labels)
    np.testing.assert_array_equal(model.classes_, [1, 2])
    predicted = model.predict(image)
    assert set(np.unique(predicted)) <= {1, 2}
    assert _dice(predicted == obj, truth == 1) > 0.95
    assert _dice(predicted == background, truth == 0) > 0.95
    object_is_bright = polarity == "bright"
    assert model.classes_[model.bright_class_] == (obj if object_is_bright else background)
    assert model.fitted_with_ == "best-balanced-accuracy"


def test_sparse_labels_keep_label_values_and_dtype():
    image, truth = _bimodal(seed=10)
    labels = _strokes(truth, 7, 3).astype(np.uint16)
    model = ThresholdSegmenter(sigma=1.0).fit(image, labels)
    np.testing.assert_array_equal(model.classes_, [3, 7])
    assert model.predict(image).dtype == np.uint16
    assert _dice(model.predict(image) == 7, truth == 1) > 0.95


def test_sparse_level_separates_labelled_pixels():
    image, truth = _bimodal(seed=11)
    labels = _strokes(truth, 2, 1)
    model = ThresholdSegmenter(sigma=1.0).fit(image, labels)
    smoothed = _smooth(image, 1.0)
    assert (smoothed[labels == 2] > model.threshold_).all()
    assert (smoothed[labels == 1] <= model.threshold_).all()


# --------------------------------------------------------------------------------------------
# ThresholdSegmenter: errors


@pytest.mark.parametrize(
    "labels, message",
    [
        ("three", "exactly two labelled classes, but labels hold 1, 2, 3"),
        ("one", "exactly two labelled classes, but labels hold 1"),
        ("none", "labels hold none"),
    ],
)
def test_sparse_labels_need_exactly_two_classes(labels, message):
    image, truth = _bimodal()
    lab = _strokes(truth, 2, 1)
    if labels == "three":
        lab[-1, :5] = 3
    elif labels == "one":
        lab[lab == 2] = 1
    else:
        lab[:] = 0
    with pytest.raises(ValueError, match=message):
        ThresholdSegmenter().fit(image, lab)


def test_fit_errors():
    image, truth = _bimodal()
    with pytest.raises(ValueError, match=r"labels\[0\] has shape \(48, 55\) but image has shape"):
        ThresholdSegmenter().fit(image, truth[:, :-1])
    with pytest.raises(ValueError, match="labels or masks, not both"):
        ThresholdSegmenter().fit(image, truth, masks=truth)
    with pytest.raises(ValueError, match="method='li' is unsupervised"):
        ThresholdSegmenter(method="li").fit(image, masks=truth)
    with pytest.raises(ValueError, match="method='otsu' is unsupervised"):
        ThresholdSegmenter(method="otsu").fit(image, _strokes(truth, 2, 1))
    nan_image = image.copy()
    nan_image[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ThresholdSegmenter().fit(nan_image)
    with pytest.raises(ValueError, match="foreground must be"):
        ThresholdSegmenter(foreground="grey").fit(image)
    with pytest.raises(ValueError, match="method must be"):
        ThresholdSegmenter(method="magic").fit(image)
    with pytest.raises(ValueError, match="sigma must be"):
        ThresholdSegmenter(sigma=(1.0, 2.0, 3.0)).fit(image)
    with pytest.raises(ValueError, match="sigma must be"):
        ThresholdSegmenter(sigma=-1.0).fit(image)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        ThresholdSegmenter().fit(np.arange(10.0))
    with pytest.raises(ValueError, match=r"images\[1\] has 3 dimensions"):
        ThresholdSegmenter().fit([image, image[None]])
    with pytest.raises(ValueError, match="got 2 images but 1 label images"):
        ThresholdSegmenter().fit([image, image], masks=[truth])
    with pytest.raises(TypeError, match="real numbers"):
        ThresholdSegmenter().fit(image.astype(np.complex64))
    with pytest.raises(TypeError, match="images must be an array"):
        ThresholdSegmenter().fit("image.tif")
    with pytest.raises(ValueError, match="constant"):
        ThresholdSegmenter().fit(np.ones((8, 8)))


def test_predict_errors():
    image, _ = _bimodal()
    with pytest.raises(ValueError, match="not fitted"):
        ThresholdSegmenter().predict(image)
    with pytest.raises(ValueError, match="not fitted"):
        _ = ThresholdSegmenter().halo
    model = ThresholdSegmenter().fit(image)
    with pytest.raises(ValueError, match="image has 3 dimensions but the model is 2-D"):
        model.predict(image[None])
    with pytest.raises(ValueError, match="image has 3 dimensions but the model is 2-D"):
        model.predict_proba(image[None])


# --------------------------------------------------------------------------------------------
# ThresholdSegmenter: protocol, probabilities and consistency


@pytest.mark.parametrize(
    "sigma, ndim, expected",
    [(1.0, 2, (4, 4)), (2.0, 2, (8, 8)), (2.6, 3, (10, 10, 10)), ((0.0, 1.2), 2, (0, 5)),
     ((0.5, 1.1, 3.0), 3, (2, 4, 12)), (0.3, 2, (1, 1))],
)
def test_halo_is_gaussian_kernel_radius(sigma, ndim, expected):
    rng = np.random.default_rng(0)
    image = rng.random((16,) * ndim)
    model = ThresholdSegmenter(sigma=sigma).fit(image)
    sigmas = np.broadcast_to(sigma, (ndim,))
    assert model.halo == tuple(int(4 * s + 0.5) for s in sigmas) == expected
    assert model.spatial_dims == ndim
    # The kernel radius really is the halo: a unit impulse spreads exactly that far.
    impulse = np.zeros((41,) * ndim, np.float32)
    impulse[(20,) * ndim] = 1
    reach = np.nonzero(_smooth(impulse, sigma))
    assert tuple(int(r.max()) - 20 for r in reach) == expected


def test_protocol():
    image, _ = _bimodal()
    model = ThresholdSegmenter(sigma=1.0).fit(image)
    assert isinstance(model, Segmenter)
    assert model.n_channels_ == 1
    assert model.classes_.dtype == np.uint8
    assert "sigma=2" in repr(ThresholdSegmenter(sigma=2))


@pytest.mark.parametrize("training", ["unsupervised", "masks", "labels"])
@pytest.mark.parametrize("foreground", ["bright", "dark"])
def test_predict_is_argmax_of_proba(training, foreground):
    image, truth = _bimodal(seed=12)
    model = ThresholdSegmenter(sigma=1.5, foreground=foreground)
    if training == "masks":
        model.fit(image, masks=truth if foreground == "bright" else 1 - truth)
    elif training == "labels":
        model.fit(image, _strokes(truth, 2, 1))
    else:
        model.fit(image)
    proba = model.predict_proba(image)
    assert proba.shape == (*image.shape, 2)
    assert proba.dtype == np.float32
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=-1), 1, atol=1e-6)
    np.testing.assert_array_equal(
        model.predict(image), model.classes_[np.argmax(proba, axis=-1)]
    )
    # Probabilities are a monotonic function of the smoothed intensity.
    smoothed = _smooth(image, 1.5).ravel()
    p_bright = proba[..., model.bright_class_].ravel()
    order = np.argsort(smoothed, kind="stable")
    assert (np.diff(p_bright[order]) >= 0).all()


@pytest.mark.parametrize("foreground", ["bright", "dark"])
def test_predict_is_argmax_of_proba_at_the_level(foreground):
    image, truth = _bimodal(seed=13)
    # Centre the data near 0 so that float32 steps around the level are far below scale_: the
    # float32 probabilities of many pixels next to the level then round to exactly 0.5.
    image = image - 12.5
    if foreground == "dark":
        image = -image
    model = ThresholdSegmenter(sigma=0, foreground=foreground).fit(image, masks=truth)
    level = model.threshold_
    l32 = np.float32(level)
    values = [level, np.nextafter(level, np.inf), np.nextafter(level, -np.inf), l32]
    up, down = l32, l32
    for _ in range(20):
        up = np.nextafter(up, np.float32(np.inf))
        down = np.nextafter(down, np.float32(-np.inf))
        values += [up, down]
    values += list(level + model.scale_ * np.linspace(-1e-3, 1e-3, 56))
    crafted = np.array(values, dtype=np.float64).reshape(10, 10)
    for dtype in (np.float32, np.float64):
        test_image = crafted.astype(dtype)
        proba = model.predict_proba(test_image)
        labels = model.predict(test_image)
        np.testing.assert_array_equal(labels, model.classes_[np.argmax(proba, axis=-1)])
        np.testing.assert_allclose(proba.sum(axis=-1), 1, atol=1e-6)
        above = test_image.astype(np.float32).astype(np.float64) > level
        expected = above if foreground == "bright" else ~above
        np.testing.assert_array_equal(labels, expected.astype(np.uint8))
    # The crafted pixels really sit on both sides of the level with float32 probabilities that
    # round to exactly 0.5, which is what the tie handling is for.
    margin = (crafted.astype(np.float32).astype(np.float64) - level) / model.scale_
    rounded_half = expit(margin).astype(np.float32) == np.float32(0.5)
    assert (rounded_half & above).any() and (rounded_half & ~above).any()


def test_proba_is_logistic_in_units_of_scale():
    image, truth = _bimodal(seed=14)
    model = ThresholdSegmenter(sigma=1.0).fit(image, masks=truth)
    smoothed = _smooth(image, 1.0).astype(np.float64)
    expected = 1 / (1 + np.exp(-(smoothed - model.threshold_) / model.scale_))
    np.testing.assert_allclose(model.predict_proba(image)[..., 1], expected, atol=1e-6)
    # scale_ is the within-class standard deviation about the level.
    above = smoothed > model.threshold_
    within = np.sqrt(
        (above.sum() * smoothed[above].var() + (~above).sum() * smoothed[~above].var())
        / smoothed.size
    )
    assert model.scale_ == pytest.approx(within, rel=1e-9)


def test_flat_classes_give_positive_scale():
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    image = truth * 4.0
    model = ThresholdSegmenter(sigma=0).fit(image, masks=truth)
    assert model.scale_ > 0
    np.testing.assert_array_equal(model.predict(image), truth)
    assert np.isfinite(model.predict_proba(image)).all()


def test_deterministic():
    image, truth = _bimodal(seed=15)
    a = ThresholdSegmenter(sigma=1.3).fit(image, masks=truth)
    b = ThresholdSegmenter(sigma=1.3).fit(image.copy(), masks=truth.copy())
    assert a.threshold_ == b.threshold_ and a.scale_ == b.scale_
    np.testing.assert_array_equal(a.predict_proba(image), b.predict_proba(image))


def test_fit_does_not_modify_inputs():
    image, truth = _bimodal(seed=16)
    image_copy, truth_copy = image.copy(), truth.copy()
    ThresholdSegmenter(sigma=1.0).fit(image, masks=truth)
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(truth, truth_copy)
