import json

import numpy as np
import pytest
import sklearn.metrics as skm

from niseg import metrics


@pytest.fixture(params=[None, 997], ids=["one-chunk", "small-chunks"])
def chunked(request, monkeypatch):
    """Run each test once as is and once with tiny chunks, so chunk sums and masks are tested."""
    if request.param is not None:
        monkeypatch.setattr(metrics, "_CHUNK", request.param)
    return request.param


def _labels(kind: str, shape=(40, 50), seed=0):
    """A truth and a prediction (80 % copied from truth) of the given value kind."""
    rng = np.random.default_rng(seed)
    if kind == "uint8":
        values = np.array([0, 1, 2, 7], dtype=np.uint8)
    elif kind == "bool":
        values = np.array([False, True])
    elif kind == "int16":
        values = np.array([-300, -1, 0, 5, 900], dtype=np.int16)
    elif kind == "uint16":
        values = np.array([0, 3, 60000], dtype=np.uint16)
    elif kind == "int32":  # small range at a large offset
        values = np.array([100_000, 100_001, 100_005], dtype=np.int32)
    elif kind == "int64":  # range too wide for a lookup table
        values = np.array([-(2**40), 0, 3, 2**50], dtype=np.int64)
    elif kind == "float32":
        values = np.array([-3.0, 0.0, 1.0, 250_000.0], dtype=np.float32)
    else:
        raise AssertionError(kind)
    truth = rng.choice(values, size=shape)
    pred = truth.copy()
    noise = rng.random(shape) < 0.2
    pred[noise] = rng.choice(values, size=int(noise.sum()))
    return truth, pred


KINDS = ["uint8", "bool", "int16", "uint16", "int32", "int64", "float32"]


def _mask(shape=(40, 50), seed=1):
    return np.random.default_rng(seed).random(shape) < 0.6


# --------------------------------------------------------------------------- confusion matrix
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_equals_sklearn(kind, normalize, chunked):
    truth, pred = _labels(kind)
    mask = _mask()
    got = metrics.confusion_matrix(truth, pred, normalize=normalize)
    want = skm.confusion_matrix(truth.ravel(), pred.ravel(), normalize=normalize)
    assert got.dtype == (np.int64 if normalize is None else np.float64)
    np.testing.assert_array_equal(got, want)
    got = metrics.confusion_matrix(truth, pred, normalize=normalize, mask=mask)
    want = skm.confusion_matrix(truth[mask], pred[mask], normalize=normalize)
    np.testing.assert_array_equal(got, want)


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_confusion_matrix_labels_subset_order_and_absent(kind, chunked):
    truth, pred = _labels(kind)
    present = np.unique(truth)
    # reversed order, one present value left out, plus a value that occurs nowhere
    absent = np.array([4], dtype=truth.dtype) if kind != "bool" else np.array([], dtype=bool)
    labels = np.concatenate([present[::-1][:-1], absent])
    got = metrics.confusion_matrix(truth, pred, labels=labels)
    want = skm.confusion_matrix(truth.ravel(), pred.ravel(), labels=labels)
    np.testing.assert_array_equal(got, want)
    got = metrics.confusion_matrix(truth, pred, labels=labels, normalize="true")
    want = skm.confusion_matrix(truth.ravel(), pred.ravel(), labels=labels, normalize="true")
    np.testing.assert_array_equal(got, want)


def test_confusion_matrix_fractional_float_labels(chunked):
    # scikit-learn refuses non-integer classes ("continuous"); compare on their ranks instead.
    rng = np.random.default_rng(2)
    values = np.array([-0.25, 0.0, 0.5, 2.25], dtype=np.float32)
    truth = rng.choice(values, (30, 40))
    pred = rng.choice(values, (30, 40))
    mask = _mask((30, 40))
    ranks_t, ranks_p = np.searchsorted(values, truth[mask]), np.searchsorted(values, pred[mask])
    want = skm.confusion_matrix(ranks_t, ranks_p)
    np.testing.assert_array_equal(metrics.confusion_matrix(truth, pred, mask=mask), want)
    scores = metrics.per_class_scores(truth, pred, labels=[2.25, 0.5])
    assert scores["labels"] == [2.25, 0.5]
    expected = skm.f1_score(np.searchsorted(values, truth.ravel()),
                            np.searchsorted(values, pred.ravel()), labels=[3, 2], average=None)
    assert scores["dice"] == expected.tolist()


def test_confusion_matrix_labels_no_pixel_can_hold(chunked):
    rng = np.random.default_rng(10)
    small = rng.integers(0, 3, 500).astype(np.uint8)
    wide = (rng.integers(0, 3, 500) + 4_000_000_000).astype(np.uint32)
    cases = [(small, [2, 300, -1, 1.5, 0]), (wide, [4_000_000_002, 3, 4_000_000_000])]
    for truth, labels in cases:
        pred = np.roll(truth, 1)
        got = metrics.confusion_matrix(truth, pred, labels=labels)
        want = skm.confusion_matrix(truth.astype(float), pred.astype(float), labels=labels)
        np.testing.assert_array_equal(got, want)


def test_confusion_matrix_mixed_dtypes_and_3d():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, (6, 20, 30)).astype(np.uint8)
    pred = rng.integers(0, 4, (6, 20, 30)).astype(np.float64)
    got = metrics.confusion_matrix(truth, pred)
    np.testing.assert_array_equal(got, skm.confusion_matrix(truth.ravel(), pred.ravel()))
    assert got.shape == (4, 4) and got.sum() == truth.size


def test_confusion_matrix_uint8_uses_the_joint_histogram(monkeypatch):
    """8-bit images are counted in one bincount pass, never by the generic path."""

    def refuse(*args, **kwargs):
        raise AssertionError("generic counting path used")

    monkeypatch.setattr(metrics, "_count_matrix", refuse)
    monkeypatch.setattr(metrics, "_present_values", refuse)
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 256, (300, 300)).astype(np.uint8)
    pred = rng.integers(0, 256, (300, 300)).astype(np.uint8)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred), skm.confusion_matrix(truth.ravel(), pred.ravel())
    )
    labels = [255, 0, 17]
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred, labels=labels),
        skm.confusion_matrix(truth.ravel(), pred.ravel(), labels=labels),
    )


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_confusion_matrix_many_labels_direct_path(dtype, chunked):
    # 3000 distinct values on both sides: too many for a dense table of present values.
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3000, 20_000).astype(dtype)
    pred = rng.integers(0, 3000, 20_000).astype(dtype)
    assert metrics._contingency(truth, pred, None) is None
    labels = [5, 2999, 7, 123, 1.5, 70_000, -1]
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred, labels=labels),
        skm.confusion_matrix(truth.astype(float), pred.astype(float), labels=labels),
    )
    with pytest.raises(ValueError, match="too many classes"):
        metrics.confusion_matrix(rng.random(5000), rng.random(5000))


def test_confusion_matrix_hand_computed():
    truth = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred), [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred, normalize="pred"),
        [[0.5, 1 / 3, 0.0], [0.0, 2 / 3, 0.0], [0.5, 0.0, 1.0]],
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred, normalize="all"),
        np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]]) / 6,
    )
    # a label with no pixels gives a zero row and column, also normalized
    np.testing.assert_array_equal(
        metrics.confusion_matrix(truth, pred, labels=[2, 9], normalize="true"), [[1, 0], [0, 0]]
    )


# --------------------------------------------------------------------------- binary scores
def _sk_binary(name, t, p):
    """scikit-learn's score with the niseg zero-division rule."""
    func = {
        "dice": skm.f1_score,
        "iou": skm.jaccard_score,
        "precision": skm.precision_score,
        "recall": skm.recall_score,
    }[name]
    both_empty = not t.any() and not p.any()
    return func(t, p, zero_division=1.0 if both_empty else 0.0)


@pytest.mark.parametrize("name", ["dice", "iou", "precision", "recall"])
@pytest.mark.parametrize("kind", ["uint8", "int16", "float32", "bool"])
def test_binary_scores_equal_sklearn(name, kind, chunked):
    func = getattr(metrics, name)
    truth, pred = _labels(kind)
    mask = _mask()
    assert func(truth, pred) == _sk_binary(name, truth.ravel() != 0, pred.ravel() != 0)
    assert func(truth, pred, mask=mask) == _sk_binary(name, truth[mask] != 0, pred[mask] != 0)
    fg = truth.ravel()[7]
    want = _sk_binary(name, truth[mask] == fg, pred[mask] == fg)
    assert func(truth, pred, foreground=fg, mask=mask) == want


@pytest.mark.parametrize(
    "truth, pred, expected",
    [
        # tp=2, fp=1, fn=1, tn=1
        (
            [0, 1, 1, 1, 0],
            [1, 1, 1, 0, 0],
            {"dice": 2 / 3, "iou": 0.5, "precision": 2 / 3, "recall": 2 / 3},
        ),
        # both empty: perfect agreement on "nothing"
        ([0, 0, 0], [0, 0, 0], {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}),
        # nothing predicted, truth has foreground
        ([0, 1, 1], [0, 0, 0], {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}),
        # no truth foreground, something predicted
        ([0, 0, 0], [0, 1, 0], {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}),
        # all foreground, all right
        ([3, 3], [1, 1], {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}),
    ],
)
def test_binary_scores_hand_computed(truth, pred, expected):
    for name, value in expected.items():
        got = getattr(metrics, name)(np.array(truth), np.array(pred))
        assert got == pytest.approx(value, abs=1e-15)


def test_foreground_value_and_zero_255_truth():
    truth = np.array([0, 255, 255, 0], dtype=np.uint8)
    pred = np.array([0, 1, 1, 1], dtype=np.uint8)
    assert metrics.dice(truth, pred) == pytest.approx(0.8)
    # with a foreground value, both images are compared with it
    assert metrics.dice(truth, pred, foreground=255) == 0.0
    labels = np.array([1, 2, 2, 3])
    assert metrics.iou(labels, np.array([2, 2, 1, 3]), foreground=2) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- accuracies
@pytest.mark.parametrize("kind", KINDS)
def test_accuracy_and_balanced_accuracy_equal_sklearn(kind, chunked):
    truth, pred = _labels(kind)
    mask = _mask()
    assert metrics.accuracy(truth, pred) == skm.accuracy_score(truth.ravel(), pred.ravel())
    assert metrics.accuracy(truth, pred, mask=mask) == skm.accuracy_score(truth[mask], pred[mask])
    assert metrics.balanced_accuracy(truth, pred) == skm.balanced_accuracy_score(
        truth.ravel(), pred.ravel()
    )
    assert metrics.balanced_accuracy(truth, pred, mask=mask) == skm.balanced_accuracy_score(
        truth[mask], pred[mask]
    )


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning")
def test_balanced_accuracy_many_labels_and_pred_only_classes(chunked):
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 2500, 30_000)
    pred = np.where(rng.random(30_000) < 0.5, truth, rng.integers(0, 5000, 30_000))
    want = skm.balanced_accuracy_score(truth, pred)  # warns: pred has classes not in truth
    assert metrics.balanced_accuracy(truth, pred) == want
    assert metrics.balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0]) == 0.5
    assert metrics.balanced_accuracy([1, 1, 2, 2], [1, 3, 2, 2]) == 0.75


def test_accuracy_compares_values_as_they_are():
    assert metrics.accuracy(np.array([0, 255]), np.array([0, 1])) == 0.5


# --------------------------------------------------------------------------- per class
def _sk_per_class(func, t, p, labels):
    out = []
    for label in labels:
        absent = not np.any(t == label) and not np.any(p == label)
        out.append(
            func(t, p, labels=[label], average=None, zero_division=1.0 if absent else 0.0)[0]
        )
    return out


@pytest.mark.parametrize("kind", ["uint8", "int16", "int64", "float32"])
def test_per_class_scores_equal_sklearn(kind, chunked):
    truth, pred = _labels(kind)
    mask = _mask()
    t, p = truth[mask], pred[mask]
    scores = metrics.per_class_scores(truth, pred, mask=mask)
    labels = np.unique(np.concatenate([t, p]))
    assert scores["labels"] == labels.tolist()
    assert scores["dice"] == skm.f1_score(t, p, labels=labels, average=None).tolist()
    assert scores["iou"] == skm.jaccard_score(t, p, labels=labels, average=None).tolist()
    assert scores["precision"] == skm.precision_score(t, p, labels=labels, average=None).tolist()
    assert scores["recall"] == skm.recall_score(t, p, labels=labels, average=None).tolist()
    assert scores["support"] == [int(np.sum(t == v)) for v in labels]
    assert scores["macro"]["dice"] == skm.f1_score(t, p, average="macro")
    assert scores["macro"]["iou"] == skm.jaccard_score(t, p, average="macro")
    assert scores["macro"]["precision"] == skm.precision_score(t, p, average="macro")
    assert scores["macro"]["recall"] == skm.recall_score(t, p, average="macro")


def test_per_class_scores_with_labels_counts_other_values():
    truth = np.array([1, 1, 2, 2, 5, 5, 0])
    pred = np.array([1, 5, 2, 2, 1, 5, 9])
    labels = [2, 1, 4]  # 4 occurs nowhere; 0, 5 and 9 still count as "not this class"
    scores = metrics.per_class_scores(truth, pred, labels=labels)
    assert scores["labels"] == labels
    assert scores["support"] == [2, 2, 0]
    for name, func in [("dice", skm.f1_score), ("precision", skm.precision_score),
                       ("recall", skm.recall_score), ("iou", skm.jaccard_score)]:
        assert scores[name] == pytest.approx(_sk_per_class(func, truth, pred, labels), abs=0)
    assert scores["dice"] == [1.0, 0.5, 1.0]
    assert scores["macro"]["dice"] == pytest.approx(2.5 / 3)
    json.dumps(scores)


# --------------------------------------------------------------------------- ROC
def _scores(kind, shape=(40, 50), seed=2):
    rng = np.random.default_rng(seed)
    truth = (rng.random(shape) < 0.3).astype(np.uint8) * 3
    signal = truth / 3 + rng.normal(0, 0.6, shape)
    if kind == "float32":
        proba = (1 / (1 + np.exp(-signal))).astype(np.float32)
    elif kind == "ties":
        proba = np.round(1 / (1 + np.exp(-signal)), 1)
    elif kind == "scores":  # not probabilities: negative and above 1
        proba = 5 * signal
    elif kind == "uint8":
        proba = np.clip(128 + 60 * signal, 0, 255).astype(np.uint8)
    elif kind == "int16":
        proba = np.round(300 * signal).astype(np.int16)
    else:
        raise AssertionError(kind)
    return truth, proba


@pytest.mark.parametrize("kind", ["float32", "ties", "scores", "uint8", "int16"])
def test_roc_equals_sklearn(kind, chunked):
    truth, proba = _scores(kind)
    mask = _mask()
    for m in (None, mask):
        t = truth.ravel() != 0 if m is None else truth[m] != 0
        s = proba.ravel() if m is None else proba[m]
        fpr, tpr, thresholds = metrics.roc_curve(truth, proba, mask=m)
        want = skm.roc_curve(t, s)
        np.testing.assert_array_equal(fpr, want[0])
        np.testing.assert_array_equal(tpr, want[1])
        np.testing.assert_array_equal(thresholds, want[2])
        assert thresholds.dtype == np.float64
        assert metrics.roc_auc(truth, proba, mask=m) == skm.roc_auc_score(t, s)


def test_roc_foreground_value_and_hand_computed():
    truth = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.4, 0.35, 0.8])
    fpr, tpr, thresholds = metrics.roc_curve(truth, proba)
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert metrics.roc_auc(truth, proba) == 0.75
    labels = np.array([2, 1, 2, 1, 3])
    score = np.array([0.9, 0.2, 0.7, 0.3, 0.8])
    # positives 0.9, 0.7 against negatives 0.2, 0.3, 0.8: 5 of 6 pairs ranked right
    assert metrics.roc_auc(labels, score, foreground=2) == 5 / 6
    assert metrics.roc_auc(labels, 1 - score, foreground=2) == pytest.approx(1 / 6)


def test_roc_max_points_subsamples_the_exact_curve():
    truth, proba = _scores("float32", shape=(100, 100))
    full = metrics.roc_curve(truth, proba)
    assert full[0].size > 50
    fpr, tpr, thresholds = metrics.roc_curve(truth, proba, max_points=50)
    assert fpr.size == 50
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.isin(thresholds, full[2]).all()
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    small = metrics.roc_curve(truth, proba, max_points=10_000)
    np.testing.assert_array_equal(small[0], full[0])
    with pytest.raises(ValueError, match="max_points must be an integer of at least 2"):
        metrics.roc_curve(truth, proba, max_points=1)


def test_roc_single_class_is_an_error():
    with pytest.raises(ValueError, match="truth has no negative"):
        metrics.roc_auc(np.array([1, 2, 2]), np.array([0.1, 0.5, 0.9]))
    with pytest.raises(ValueError, match="truth has no positive"):
        metrics.roc_curve(np.zeros(3), np.array([0.1, 0.5, 0.9]))
    with pytest.raises(ValueError, match="truth has no positive"):
        metrics.roc_curve(np.array([0, 1]), np.array([0.1, 0.5]), mask=np.array([True, False]))


def test_roc_rejects_nan_and_inf_proba():
    with pytest.raises(ValueError, match="^proba contains NaN values$"):
        metrics.roc_auc(np.array([0, 1]), np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="^proba contains infinite values$"):
        metrics.roc_curve(np.array([0, 1]), np.array([0.5, np.inf]))
    with pytest.raises(ValueError, match=r"proba has shape \(3,\) but truth has shape \(2,\)"):
        metrics.roc_auc(np.array([0, 1]), np.array([0.5, 0.2, 0.1]))


# --------------------------------------------------------------------------- ARI
@pytest.mark.parametrize("kind", KINDS)
def test_adjusted_rand_index_equals_sklearn(kind, chunked):
    truth, pred = _labels(kind)
    mask = _mask()
    got = metrics.adjusted_rand_index(truth, pred)
    assert got == skm.adjusted_rand_score(truth.ravel(), pred.ravel())
    got = metrics.adjusted_rand_index(truth, pred, mask=mask)
    assert got == skm.adjusted_rand_score(truth[mask], pred[mask])


def test_adjusted_rand_index_many_labels_sparse_path(chunked):
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3000, 40_000)
    pred = np.where(rng.random(40_000) < 0.7, truth * 2 + 1, rng.integers(0, 3000, 40_000))
    assert metrics._contingency(truth, pred, None) is None  # the sparse path is exercised
    assert metrics.adjusted_rand_index(truth, pred) == skm.adjusted_rand_score(truth, pred)


def test_adjusted_rand_index_hand_computed():
    assert metrics.adjusted_rand_index([0, 0, 1, 1], [5, 5, 2, 2]) == 1.0
    assert metrics.adjusted_rand_index([1, 1, 1], [2, 2, 2]) == 1.0
    assert metrics.adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


# --------------------------------------------------------------------------- image errors
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_errors_equal_sklearn(dtype, chunked):
    rng = np.random.default_rng(8)
    a = (rng.random((30, 40)) * 100).astype(dtype)
    b = (rng.random((30, 40)) * 100).astype(dtype)
    mask = _mask((30, 40))
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    want_mse = skm.mean_squared_error(fa.ravel(), fb.ravel())
    assert metrics.mse(a, b) == pytest.approx(want_mse, rel=1e-13)
    want_mae = skm.mean_absolute_error(fa.ravel(), fb.ravel())
    assert metrics.mae(a, b) == pytest.approx(want_mae, rel=1e-13)
    assert metrics.rmse(a, b) == pytest.approx(
        skm.root_mean_squared_error(fa.ravel(), fb.ravel()), rel=1e-13
    )
    assert metrics.mse(a, b, mask=mask) == pytest.approx(
        skm.mean_squared_error(fa[mask], fb[mask]), rel=1e-13
    )
    assert metrics.mae(a, b, mask=mask) == pytest.approx(
        skm.mean_absolute_error(fa[mask], fb[mask]), rel=1e-13
    )


def test_errors_hand_computed_without_integer_wrap():
    a = np.array([0, 0, 10], dtype=np.uint8)
    b = np.array([1, 0, 7], dtype=np.uint8)
    assert metrics.mse(a, b) == pytest.approx(10 / 3)
    assert metrics.mae(a, b) == pytest.approx(4 / 3)
    assert metrics.rmse(a, b) == pytest.approx(np.sqrt(10 / 3))
    with pytest.raises(ValueError, match="^b contains NaN values$"):
        metrics.mse(np.zeros(2), np.array([0.0, np.nan]))


# --------------------------------------------------------------------------- validation
def test_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"^pred has shape \(3, 4\) but truth has shape \(3, 5\)$"):
        metrics.dice(np.zeros((3, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"^mask has shape \(2,\) but truth has shape \(3,\)$"):
        metrics.accuracy(np.zeros(3), np.zeros(3), mask=np.ones(2, bool))


@pytest.mark.parametrize(
    "func",
    [metrics.dice, metrics.iou, metrics.precision, metrics.recall, metrics.accuracy,
     metrics.balanced_accuracy, metrics.confusion_matrix, metrics.per_class_scores,
     metrics.adjusted_rand_index, metrics.segmentation_report],
)
def test_every_label_metric_validates(func):
    good = np.array([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="^pred contains NaN values$"):
        func(good, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="^truth contains NaN values$"):
        func(np.array([np.nan, 0.0, 1.0]), good)
    with pytest.raises(ValueError, match="^mask selects no pixels$"):
        func(good, good, mask=np.zeros(3, bool))
    with pytest.raises(TypeError, match="^mask must be a boolean array, got dtype float64$"):
        func(good, good, mask=np.ones(3))
    with pytest.raises(TypeError, match="^truth must be a numeric or boolean array"):
        func(np.array(["a", "b", "c"]), good)
    with pytest.raises(ValueError, match="^truth is empty$"):
        func(np.zeros(0), np.zeros(0))


def test_option_validation():
    a = np.array([0, 1, 1])
    with pytest.raises(ValueError, match="normalize must be None, 'true', 'pred' or 'all'"):
        metrics.confusion_matrix(a, a, normalize="rows")
    with pytest.raises(ValueError, match="labels must not repeat a value"):
        metrics.confusion_matrix(a, a, labels=[1, 1])
    with pytest.raises(ValueError, match="labels must be a non-empty 1-D sequence"):
        metrics.per_class_scores(a, a, labels=[])
    with pytest.raises(TypeError, match="foreground must be a number"):
        metrics.dice(a, a, foreground="1")
    with pytest.raises(ValueError, match="foreground must be a number, got NaN"):
        metrics.iou(a, a, foreground=float("nan"))
    with pytest.raises(TypeError, match="labels must hold numbers"):
        metrics.confusion_matrix(a, a, labels=["x"])
    with pytest.raises(ValueError, match="labels must be finite numbers"):
        metrics.confusion_matrix(a, a, labels=[1.0, np.inf])
    # an integer mask is accepted (non-zero = evaluate)
    assert metrics.accuracy(a, np.array([0, 1, 0]), mask=np.array([1, 1, 0])) == 1.0


def test_one_class_only():
    ones = np.ones((4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(metrics.confusion_matrix(ones, ones), [[16]])
    assert metrics.dice(ones, ones) == 1.0
    assert metrics.balanced_accuracy(ones, ones) == 1.0
    assert metrics.adjusted_rand_index(ones, ones) == 1.0
    zeros = np.zeros_like(ones)
    assert metrics.dice(zeros, zeros) == 1.0 and metrics.iou(zeros, zeros) == 1.0
    assert metrics.dice(zeros, ones) == 0.0 and metrics.recall(zeros, ones) == 0.0


# --------------------------------------------------------------------------- report
def test_segmentation_report_binary_matches_metrics(chunked):
    rng = np.random.default_rng(9)
    truth = ((rng.random((50, 60)) < 0.3) * 255).astype(np.uint8)
    pred = (truth > 0).astype(np.uint8)
    flip = rng.random(truth.shape) < 0.15
    pred[flip] = 1 - pred[flip]
    proba = np.clip(pred * 0.6 + rng.random(truth.shape) * 0.4, 0, 1).astype(np.float32)
    mask = _mask((50, 60))
    report = metrics.segmentation_report(truth, pred, proba=proba, mask=mask)
    json.dumps(report)
    t, p = truth[mask] != 0, pred[mask] != 0
    assert report["mode"] == "binary"
    assert report["labels"] == [0, 1]
    assert report["n_pixels"] == int(mask.sum())
    assert report["confusion"] == skm.confusion_matrix(t, p).tolist()
    assert report["dice"] == skm.f1_score(t, p)
    assert report["iou"] == skm.jaccard_score(t, p)
    assert report["precision"] == skm.precision_score(t, p)
    assert report["recall"] == skm.recall_score(t, p)
    assert report["accuracy"] == skm.accuracy_score(t, p)
    assert report["balanced_accuracy"] == skm.balanced_accuracy_score(t, p)
    assert report["ari"] == skm.adjusted_rand_score(t, p)
    assert report["roc_auc"] == skm.roc_auc_score(t, proba[mask])
    assert report["per_class"]["dice"][1] == report["dice"]
    assert report["per_class"]["support"] == [int((~t).sum()), int(t.sum())]


def test_segmentation_report_multiclass_uses_macro_averages(chunked):
    truth, pred = _labels("uint8")
    report = metrics.segmentation_report(truth, pred)
    json.dumps(report)
    t, p = truth.ravel(), pred.ravel()
    assert report["mode"] == "multiclass"
    assert report["labels"] == [0, 1, 2, 7]
    assert report["confusion"] == skm.confusion_matrix(t, p).tolist()
    assert report["dice"] == skm.f1_score(t, p, average="macro")
    assert report["iou"] == skm.jaccard_score(t, p, average="macro")
    assert report["precision"] == skm.precision_score(t, p, average="macro")
    assert report["recall"] == skm.recall_score(t, p, average="macro")
    assert report["accuracy"] == skm.accuracy_score(t, p)
    assert report["balanced_accuracy"] == skm.balanced_accuracy_score(t, p)
    assert report["ari"] == skm.adjusted_rand_score(t, p)
    assert report["per_class"] == metrics.per_class_scores(truth, pred)
    assert "roc_auc" not in report


def test_segmentation_report_ignore_and_foreground():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([2, 1, 1, 0, 2, 2, 1])
    report = metrics.segmentation_report(truth, pred, ignore=0)
    assert report["mode"] == "multiclass"
    assert report["n_pixels"] == 5
    # a pixel predicted as the ignored value is a miss of its class, not a class of its own
    assert report["labels"] == [0, 1, 2]
    assert report["confusion"] == [[0, 0, 0], [1, 1, 0], [0, 1, 2]]
    assert report["per_class"]["labels"] == [1, 2]
    assert report["per_class"]["recall"] == [0.5, 2 / 3]
    assert report["per_class"]["precision"] == [0.5, 1.0]
    assert report["recall"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert report["accuracy"] == 3 / 5
    # foreground forces a binary comparison
    report = metrics.segmentation_report(truth, pred, foreground=2)
    assert report["mode"] == "binary"
    assert report["confusion"] == [[3, 1], [1, 2]]
    assert report["dice"] == metrics.dice(truth, pred, foreground=2)
    with pytest.raises(ValueError, match="no pixels left to evaluate"):
        metrics.segmentation_report(np.zeros(3), np.zeros(3), ignore=0)


def test_segmentation_report_proba_edge_cases():
    truth = np.array([1, 1, 1])
    pred = np.array([1, 0, 1])
    report = metrics.segmentation_report(truth, pred, proba=np.array([0.9, 0.2, 0.8]))
    assert report["roc_auc"] is None
    json.dumps(report)
    with pytest.raises(ValueError, match=r"proba has shape \(3, 2\) but truth has shape \(3,\)"):
        metrics.segmentation_report(truth, pred, proba=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="^proba contains NaN values$"):
        metrics.segmentation_report(truth, pred, proba=np.array([0.1, np.nan, 0.3]))


def test_segmentation_report_empty_images():
    zeros = np.zeros((5, 5), dtype=np.uint8)
    report = metrics.segmentation_report(zeros, zeros)
    assert report["mode"] == "binary"
    assert report["confusion"] == [[25, 0], [0, 0]]
    assert report["dice"] == report["iou"] == report["precision"] == report["recall"] == 1.0
    assert report["accuracy"] == 1.0 and report["ari"] == 1.0


@pytest.mark.slow
def test_real_em_mask_against_sklearn(shared_data):
    import imageio.v3 as imageio

    truth = imageio.imread(shared_data / "em_mitochondria" / "em_image_seg.png")
    if truth.ndim == 3:
        truth = truth[..., 0]
    pred = np.roll(truth, 3, axis=1)  # a plausible, slightly shifted segmentation
    t, p = truth.ravel() != 0, pred.ravel() != 0
    assert metrics.dice(truth, pred) == skm.f1_score(t, p)
    report = metrics.segmentation_report(truth, pred)
    assert report["mode"] == "binary"
    assert report["confusion"] == skm.confusion_matrix(t, p).tolist()
    assert report["ari"] == skm.adjusted_rand_score(t, p)
