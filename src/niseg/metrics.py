"""Segmentation quality: overlap scores, confusion matrices, ROC curves, ARI and image errors.

Every function compares a ground-truth image with a prediction of the same shape (any number
of dimensions) and takes an optional boolean ``mask`` of the pixels to evaluate (a region of
interest; ``True`` = evaluate). Pixels are counted chunk by chunk with :func:`numpy.bincount`
in bounded memory (the confusion matrix and scores of two 10^8-pixel uint8 volumes take about
a second, where scikit-learn's generic path takes minutes); the results are those of the
matching scikit-learn function.

Binary scores (:func:`dice`, :func:`iou`, :func:`precision`, :func:`recall`, the ROC) compare
non-zero against zero, or ``== foreground`` when a foreground value is given (in both images).

Zero-division conventions, chosen so that agreeing on "nothing there" is a perfect score:

- Dice and IoU of two empty images are 1.0;
- precision with no predicted positives is 1.0 if the truth has none either, else 0.0;
- recall with no truth positives is 1.0 if nothing is predicted either, else 0.0.

That is scikit-learn's ``zero_division=0.0``, except where both images are empty, which is its
``zero_division=1.0``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from numbers import Real
from typing import Any

import numpy as np
from scipy.integrate import trapezoid

__all__ = [
    "accuracy",
    "adjusted_rand_index",
    "balanced_accuracy",
    "confusion_matrix",
    "dice",
    "iou",
    "mae",
    "mse",
    "per_class_scores",
    "precision",
    "recall",
    "rmse",
    "roc_auc",
    "roc_curve",
    "segmentation_report",
]

# Pixels per chunk: large enough that NumPy call overhead vanishes, small enough that the
# temporary index arrays stay at a few tens of MB whatever the image size.
_CHUNK = 1 << 22
# Integer images whose values span at most this many codes are indexed with a lookup table.
_MAX_LUT_SPAN = 1 << 20
_MAX_CONFUSION_LABELS = 4096
# Joint histograms of raw codes up to this many cells; dense tables of present values up to
# _MAX_TABLE cells (beyond, e.g. instance labels, counts are kept sparse).
_MAX_JOINT = 1 << 20
_MAX_TABLE = 1 << 22
_NORMALIZE = (None, "true", "pred", "all")


# --------------------------------------------------------------------------------- validation
def _as_array(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric or boolean array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f":
        # min/max propagate NaN and expose inf without a full-size temporary.
        lo, hi = arr.min(), arr.max()
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError(f"{name} contains NaN values")
        if np.isinf(lo) or np.isinf(hi):
            raise ValueError(f"{name} contains infinite values")
    return arr


def _check_mask(mask: Any, shape: tuple[int, ...], ref: str) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biu":
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    if m.shape != shape:
        raise ValueError(f"mask has shape {m.shape} but {ref} has shape {shape}")
    m = m.reshape(-1)
    if m.dtype != bool:
        m = m != 0
    if not m.any():
        raise ValueError("mask selects no pixels")
    return m


def _check_pair(
    a: Any, b: Any, mask: Any, names: tuple[str, str] = ("truth", "pred")
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    first = _as_array(a, names[0])
    second = _as_array(b, names[1])
    if second.shape != first.shape:
        raise ValueError(
            f"{names[1]} has shape {second.shape} but {names[0]} has shape {first.shape}"
        )
    m = _check_mask(mask, first.shape, names[0])
    return first.reshape(-1), second.reshape(-1), m


def _check_scalar(value: Any, name: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, (Real, np.number, np.bool_)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if value != value:  # NaN
        raise ValueError(f"{name} must be a number, got NaN")
    return value


def _check_labels(labels: Any) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("labels must be a non-empty 1-D sequence of class values")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"labels must hold numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("labels must be finite numbers")
    if np.unique(arr).size != arr.size:
        raise ValueError("labels must not repeat a value")
    return arr


# ------------------------------------------------------------------------------ pixel counting
def _chunks(arrays: Sequence[np.ndarray], mask: np.ndarray | None) -> Iterator[list[np.ndarray]]:
    n = arrays[0].size
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        pieces = [a[part] for a in arrays]
        if mask is not None:
            m = mask[part]
            if not m.all():
                pieces = [p[m] for p in pieces]
        yield pieces


class _Codes:
    """Non-negative integer codes for the values of one integer image, for ``np.bincount``.

    8- and 16-bit images are viewed as unsigned (a signed value is coded modulo 2**bits), wider
    integer images are offset by their minimum when their range is small. Images that cannot
    be coded (floats, wide ranges) have ``size`` None and go through sorting instead.
    """

    def __init__(self, arr: np.ndarray) -> None:
        self.size: int | None = None
        self.offset = 0
        self.signed = arr.dtype.kind == "i"
        self.bits = 8 * arr.dtype.itemsize
        if arr.dtype.kind == "b":
            self.size, self.signed, self.bits = 2, False, 8
        elif arr.dtype.kind in "ui" and arr.dtype.itemsize <= 2:
            self.size = 1 << self.bits
        elif arr.dtype.kind in "ui":
            lo, hi = int(arr.min()), int(arr.max())
            if hi - lo < _MAX_LUT_SPAN and hi < 1 << 63:
                self.size, self.offset = hi - lo + 1, lo

    def encode(self, chunk: np.ndarray) -> np.ndarray:
        if chunk.dtype.kind == "b":
            return chunk.view(np.uint8)
        if self.offset == 0 and chunk.dtype.itemsize <= 2:
            return chunk.view(f"u{chunk.dtype.itemsize}")
        if chunk.dtype.kind == "u":
            return (chunk - chunk.dtype.type(self.offset)).astype(np.intp)
        return chunk.astype(np.intp) - self.offset

    def code_of(self, value: Any) -> int | None:
        """Code of one label value, or None if no pixel of this image can hold it."""
        v = float(value)
        if not v.is_integer():
            return None
        v = int(value)
        if self.offset or self.bits > 16:
            return v - self.offset if 0 <= v - self.offset < self.size else None
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        if not lo <= v < lo + (1 << self.bits):
            return None
        return v % (1 << self.bits)

    def values(self, codes: np.ndarray) -> np.ndarray:
        """Values (int64, in the order of ``codes``) that ``codes`` stand for."""
        values = codes.astype(np.int64)
        if self.signed and not self.offset and self.bits <= 16:
            values = np.where(values >= (1 << (self.bits - 1)), values - (1 << self.bits), values)
        return values + self.offset


def _present_values(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Sorted distinct values of ``arr`` inside ``mask``."""
    codes = _Codes(arr)
    if codes.size is None:
        return np.unique(arr if mask is None else arr[mask])
    counts = np.zeros(codes.size, dtype=np.int64)
    for (chunk,) in _chunks([arr], mask):
        counts += np.bincount(codes.encode(chunk), minlength=codes.size)
    return np.sort(codes.values(np.flatnonzero(counts)))


def _lookup(labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Function mapping values to their position in ``labels``; others map to len(labels)."""
    n = labels.size
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    order = np.append(order, n)

    def lookup(values: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ordered, values)
        found = ordered[np.minimum(pos, n - 1)] == values
        return order[np.where(found, pos, n)]

    return lookup


def _indexer(arr: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Like :func:`_lookup` for chunks of ``arr``, through a lookup table when it is coded."""
    codes = _Codes(arr)
    if codes.size is None:
        return _lookup(labels)
    lut = np.full(codes.size, labels.size, dtype=np.intp)
    for k, value in enumerate(labels.tolist()):
        code = codes.code_of(value)
        if code is not None:
            lut[code] = k
    return lambda chunk: lut[codes.encode(chunk)]


def _count_matrix(
    truth: np.ndarray,
    pred: np.ndarray,
    mask: np.ndarray | None,
    labels_truth: np.ndarray,
    labels_pred: np.ndarray,
) -> np.ndarray:
    """Pixel counts, rows = truth labels, columns = pred labels, plus a last 'other' row/column."""
    rows, cols = labels_truth.size + 1, labels_pred.size + 1
    index_truth = _indexer(truth, labels_truth)
    index_pred = _indexer(pred, labels_pred)
    total = np.zeros(rows * cols, dtype=np.int64)
    for t, p in _chunks([truth, pred], mask):
        combined = index_truth(t)
        combined *= cols
        combined += index_pred(p)
        total += np.bincount(combined, minlength=rows * cols)
    return total.reshape(rows, cols)


def _contingency(
    truth: np.ndarray, pred: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Counts of every (truth value, pred value) pair: (truth values, pred values, table).

    None when the dense table would be too large (floats or many labels on both sides).
    """
    codes_t, codes_p = _Codes(truth), _Codes(pred)
    if codes_t.size and codes_p.size and codes_t.size * codes_p.size <= _MAX_JOINT:
        # One pass over the pixels: a joint histogram of the raw codes (8-bit and boolean
        # images always get here), reduced to the values present afterwards.
        width, cells = codes_p.size, codes_t.size * codes_p.size
        joint = np.zeros(cells, dtype=np.int64)
        for t, p in _chunks([truth, pred], mask):
            combined = codes_t.encode(t).astype(np.uint32)
            combined *= np.uint32(width)
            np.add(combined, codes_p.encode(p), out=combined, casting="unsafe")
            joint += np.bincount(combined, minlength=cells)
        joint = joint.reshape(codes_t.size, width)
        rows, cols = np.flatnonzero(joint.any(axis=1)), np.flatnonzero(joint.any(axis=0))
        values_t, values_p = codes_t.values(rows), codes_p.values(cols)
        order_t, order_p = np.argsort(values_t), np.argsort(values_p)
        table = joint[np.ix_(rows[order_t], cols[order_p])]
        return values_t[order_t], values_p[order_p], table
    values_t, values_p = _present_values(truth, mask), _present_values(pred, mask)
    if values_t.size * values_p.size > _MAX_TABLE:
        return None
    table = _count_matrix(truth, pred, mask, values_t, values_p)[:-1, :-1]
    return values_t, values_p, table


def _label_counts(
    truth: np.ndarray,
    pred: np.ndarray,
    mask: np.ndarray | None,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, counts): counts is (K + 1, K + 1), rows = truth, last row/column = other values.

    ``labels`` defaults to the sorted union of the values present in both images.
    """
    found = _contingency(truth, pred, mask)
    if labels is None:
        if found is None:
            labels = np.union1d(_present_values(truth, mask), _present_values(pred, mask))
        else:
            labels = np.union1d(found[0], found[1])
    if labels.size > _MAX_CONFUSION_LABELS:
        raise ValueError(
            f"the images hold {labels.size} distinct values, too many classes to tabulate "
            f"(at most {_MAX_CONFUSION_LABELS}); pass labels= to choose the classes"
        )
    if found is None:
        return labels, _count_matrix(truth, pred, mask, labels, labels)
    values_t, values_p, table = found
    lookup = _lookup(labels)
    width = labels.size + 1
    counts = np.zeros((width, width), dtype=np.int64)
    np.add.at(counts, (lookup(values_t)[:, None], lookup(values_p)[None, :]), table)
    return labels, counts


def _binary(chunk: np.ndarray, foreground: Any) -> np.ndarray:
    return chunk != 0 if foreground is None else chunk == foreground


def _binary_counts(
    truth: np.ndarray, pred: np.ndarray, mask: np.ndarray | None, foreground: Any
) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of the binarized images."""
    tp = n_truth = n_pred = n = 0
    for t, p in _chunks([truth, pred], mask):
        tb, pb = _binary(t, foreground), _binary(p, foreground)
        tp += int(np.count_nonzero(tb & pb))
        n_truth += int(np.count_nonzero(tb))
        n_pred += int(np.count_nonzero(pb))
        n += t.size
    fp, fn = n_pred - tp, n_truth - tp
    return tp, fp, fn, n - tp - fp - fn


# --------------------------------------------------------------------------- scores from counts
def _scores(tp: Any, fp: Any, fn: Any) -> dict[str, np.ndarray]:
    """Dice, IoU, precision and recall (float64 arrays) with the module's zero-division rules."""
    tp, fp, fn = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (tp, fp, fn))

    def ratio(num: np.ndarray, den: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        out = np.asarray(fallback, dtype=np.float64).copy()
        np.divide(num, den, out=out, where=den > 0)
        return out

    support, predicted = tp + fn, tp + fp
    return {
        "dice": ratio(2 * tp, support + predicted, np.ones_like(tp)),
        "iou": ratio(tp, tp + fp + fn, np.ones_like(tp)),
        "precision": ratio(tp, predicted, (fn == 0).astype(np.float64)),
        "recall": ratio(tp, support, (fp == 0).astype(np.float64)),
    }


def _ari(cells: np.ndarray, row_sums: np.ndarray, col_sums: np.ndarray) -> float:
    """Adjusted Rand index from contingency counts, exactly as scikit-learn computes it."""
    n = int(row_sums.sum())
    # int64 squares overflow past ~3e9 pixels; Python integers are exact at any size.
    dtype = np.int64 if n < 3_000_000_000 else object

    def sum_squares(x: np.ndarray) -> int:
        x = x.astype(dtype)
        return int(np.dot(x, x))

    squares = sum_squares(cells.ravel())
    fp = sum_squares(col_sums) - squares
    fn = sum_squares(row_sums) - squares
    tp = squares - n
    tn = n * n - fp - fn - squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


# ------------------------------------------------------------------------------ public metrics
def confusion_matrix(
    truth: Any,
    pred: Any,
    *,
    labels: Sequence[Any] | np.ndarray | None = None,
    normalize: str | None = None,
    mask: Any = None,
) -> np.ndarray:
    """Confusion matrix of two label images: rows are truth classes, columns predicted classes.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground-truth and predicted label images of the same shape (integer, boolean or float
        values; NaN is refused).
    labels : sequence of numbers, optional
        Class values to include, in this order. Pixels whose truth or predicted value is not
        among them are left out (as in scikit-learn). Default: every value present in either
        image (inside ``mask``), sorted.
    normalize : {None, "true", "pred", "all"}
        Return counts (None), or divide by the row sums ("true": each row is the distribution
        of predictions for one truth class), the column sums ("pred") or the total ("all").
        Rows or columns without pixels are 0.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    (K, K) ndarray
        int64 counts, or float64 fractions when ``normalize`` is given.

    Raises
    ------
    ValueError
        On different shapes, NaN values, an empty mask, an unknown ``normalize`` or more than
        4096 classes (pass ``labels`` to choose some).

    Examples
    --------
    >>> truth = np.array([[0, 0, 1], [1, 2, 2]])
    >>> pred = np.array([[0, 1, 1], [1, 2, 0]])
    >>> confusion_matrix(truth, pred)
    array([[1, 1, 0],
           [0, 2, 0],
           [1, 0, 1]])
    >>> confusion_matrix(truth, pred, normalize="true")[0]
    array([0.5, 0.5, 0. ])
    """
    t, p, m = _check_pair(truth, pred, mask)
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    _, counts = _label_counts(t, p, m, None if labels is None else _check_labels(labels))
    cm = np.ascontiguousarray(counts[:-1, :-1])
    if normalize is None:
        return cm
    with np.errstate(all="ignore"):
        if normalize == "true":
            fractions = cm / cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            fractions = cm / cm.sum(axis=0, keepdims=True)
        else:
            fractions = cm / cm.sum()
    return np.nan_to_num(fractions)


def _binary_score(name: str, truth: Any, pred: Any, foreground: Any, mask: Any) -> float:
    t, p, m = _check_pair(truth, pred, mask)
    tp, fp, fn, _ = _binary_counts(t, p, m, _check_scalar(foreground, "foreground"))
    return float(_scores(tp, fp, fn)[name][0])


def dice(truth: Any, pred: Any, *, foreground: Any = None, mask: Any = None) -> float:
    """Dice coefficient (F1 score) of the foreground: 2 |T ∩ P| / (|T| + |P|).

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground truth and prediction of the same shape.
    foreground : number, optional
        Foreground value; pixels ``== foreground`` are foreground in both images. Default:
        every non-zero pixel is foreground.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both images have no foreground.

    Examples
    --------
    >>> truth = np.array([0, 1, 1, 1])
    >>> pred = np.array([1, 1, 1, 0])
    >>> dice(truth, pred)
    0.666...
    >>> dice(np.zeros(4), np.zeros(4))
    1.0
    """
    return _binary_score("dice", truth, pred, foreground, mask)


def iou(truth: Any, pred: Any, *, foreground: Any = None, mask: Any = None) -> float:
    """Intersection over union (Jaccard index) of the foreground: |T ∩ P| / |T ∪ P|.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground truth and prediction of the same shape.
    foreground : number, optional
        Foreground value (``== foreground`` in both images); default non-zero.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both images have no foreground.

    Examples
    --------
    >>> iou(np.array([0, 1, 1, 1]), np.array([1, 1, 1, 0]))
    0.5
    """
    return _binary_score("iou", truth, pred, foreground, mask)


def precision(truth: Any, pred: Any, *, foreground: Any = None, mask: Any = None) -> float:
    """Precision of the foreground: the fraction of predicted foreground that is true.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground truth and prediction of the same shape.
    foreground : number, optional
        Foreground value (``== foreground`` in both images); default non-zero.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1]. With no predicted foreground: 1.0 if the truth has none either, else 0.0.

    Examples
    --------
    >>> precision(np.array([0, 1, 1, 1]), np.array([1, 1, 1, 0]))
    0.666...
    """
    return _binary_score("precision", truth, pred, foreground, mask)


def recall(truth: Any, pred: Any, *, foreground: Any = None, mask: Any = None) -> float:
    """Recall (sensitivity) of the foreground: the fraction of true foreground that is found.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground truth and prediction of the same shape.
    foreground : number, optional
        Foreground value (``== foreground`` in both images); default non-zero.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1]. With no truth foreground: 1.0 if nothing is predicted either, else 0.0.

    Examples
    --------
    >>> recall(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]))
    0.666...
    """
    return _binary_score("recall", truth, pred, foreground, mask)


def accuracy(truth: Any, pred: Any, *, mask: Any = None) -> float:
    """Fraction of pixels whose predicted value equals the truth value.

    Values are compared as they are: to score a 0/255 truth against a 0/1 prediction,
    binarize first (``truth != 0``) or use :func:`segmentation_report`.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Label images of the same shape.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]))
    0.75
    """
    t, p, m = _check_pair(truth, pred, mask)
    equal = n = 0
    for tc, pc in _chunks([t, p], m):
        equal += int(np.count_nonzero(tc == pc))
        n += tc.size
    return equal / n


def balanced_accuracy(truth: Any, pred: Any, *, mask: Any = None) -> float:
    """Mean over the truth classes of the fraction of each class predicted correctly.

    Classes that appear only in the prediction do not count (as in scikit-learn).

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Label images of the same shape.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]))
    0.5
    """
    t, p, m = _check_pair(truth, pred, mask)
    found = _contingency(t, p, m)
    if found is not None:
        values_t, values_p, table = found
        column = _lookup(values_p)(values_t)
        hit = column < values_p.size
        correct = np.zeros(values_t.size, dtype=np.int64)
        correct[hit] = table[np.flatnonzero(hit), column[hit]]
        support = table.sum(axis=1)
    else:
        classes = _present_values(t, m)
        index = _indexer(t, classes)
        width = classes.size + 1
        support = np.zeros(width, dtype=np.int64)
        correct = np.zeros(width, dtype=np.int64)
        for tc, pc in _chunks([t, p], m):
            idx = index(tc)
            support += np.bincount(idx, minlength=width)
            correct += np.bincount(idx[tc == pc], minlength=width)
        support, correct = support[:-1], correct[:-1]
    return float(np.mean(correct.astype(np.float64) / support.astype(np.float64)))


def per_class_scores(
    truth: Any,
    pred: Any,
    *,
    labels: Sequence[Any] | np.ndarray | None = None,
    mask: Any = None,
) -> dict[str, Any]:
    """Dice, IoU, precision and recall of each class (one against the rest) and their means.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Label images of the same shape.
    labels : sequence of numbers, optional
        Classes to score, in this order; pixels of other values still count as "not this
        class". Default: every value present in either image (inside ``mask``), sorted.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    dict
        ``{"labels", "dice", "iou", "precision", "recall", "support", "macro"}``: lists in
        ``labels`` order (``support`` = truth pixels per class) and ``macro`` = the unweighted
        means of the four scores. Plain Python numbers, ready for JSON. Zero divisions follow
        the module conventions (a class absent from both images scores 1.0).

    Examples
    --------
    >>> scores = per_class_scores(np.array([1, 1, 2, 2]), np.array([1, 2, 2, 2]))
    >>> scores["labels"], scores["support"]
    ([1, 2], [2, 2])
    >>> [round(d, 3) for d in scores["dice"]], round(scores["macro"]["dice"], 3)
    ([0.667, 0.8], 0.733)
    """
    t, p, m = _check_pair(truth, pred, mask)
    classes, counts = _label_counts(t, p, m, None if labels is None else _check_labels(labels))
    return _per_class(counts, np.arange(classes.size), classes)


def _per_class(counts: np.ndarray, rows: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    tp = np.diagonal(counts)[rows]
    support = counts.sum(axis=1)[rows]
    predicted = counts.sum(axis=0)[rows]
    scores = _scores(tp, predicted - tp, support - tp)
    result: dict[str, Any] = {"labels": classes.tolist()}
    result.update({name: values.tolist() for name, values in scores.items()})
    result["support"] = support.tolist()
    result["macro"] = {name: float(np.mean(values)) for name, values in scores.items()}
    return result


class _OneClassError(ValueError):
    pass


def _roc_counts(
    truth: np.ndarray, scores: np.ndarray, mask: np.ndarray | None, foreground: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps) at each distinct score, thresholds decreasing."""
    pos_parts, neg_parts = [], []
    for t, s in _chunks([truth, scores], mask):
        positive = _binary(t, foreground)
        pos_parts.append(s[positive])
        neg_parts.append(s[~positive])
    pos, neg = np.concatenate(pos_parts), np.concatenate(neg_parts)
    if pos.size == 0 or neg.size == 0:
        which = "positive (foreground)" if pos.size == 0 else "negative (background)"
        raise _OneClassError(f"truth has no {which} pixels to evaluate, so the ROC is undefined")
    codes = _Codes(scores)
    if codes.size is not None:
        # Integer scores (e.g. uint8 probability maps): histograms instead of sorting.
        count_pos = np.bincount(codes.encode(pos), minlength=codes.size)
        count_neg = np.bincount(codes.encode(neg), minlength=codes.size)
        present = np.flatnonzero(count_pos + count_neg)
        values = codes.values(present)
        order = np.argsort(values)[::-1]
        tps = np.cumsum(count_pos[present][order])
        fps = np.cumsum(count_neg[present][order])
        return fps, tps, values[order].astype(np.float64)
    pos.sort()
    neg.sort()
    # Both lists are sorted, so the stable sort (a merge of two runs) is linear.
    values = np.concatenate([_sorted_unique(pos), _sorted_unique(neg)])
    values.sort(kind="stable")
    values = _sorted_unique(values)[::-1]
    tps = pos.size - np.searchsorted(pos, values, "left")
    fps = neg.size - np.searchsorted(neg, values, "left")
    return fps, tps, values.astype(np.float64)


def _sorted_unique(sorted_values: np.ndarray) -> np.ndarray:
    keep = np.empty(sorted_values.size, dtype=bool)
    keep[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    return sorted_values[keep]


def _full_roc(
    truth: Any, proba: Any, foreground: Any, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, s, m = _check_pair(truth, proba, mask, names=("truth", "proba"))
    return _roc(t, s, m, _check_scalar(foreground, "foreground"))


def _roc(
    truth: np.ndarray, scores: np.ndarray, mask: np.ndarray | None, foreground: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fps, tps, thresholds = _roc_counts(truth, scores, mask, foreground)
    if fps.size > 2:
        # Drop points on straight segments of the curve, as scikit-learn does.
        bends = np.logical_or(np.diff(fps, 2) != 0, np.diff(tps, 2) != 0)
        keep = np.flatnonzero(np.concatenate([[True], bends, [True]]))
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.concatenate([[0.0], fps.astype(np.float64)])
    tps = np.concatenate([[0.0], tps.astype(np.float64)])
    thresholds = np.concatenate([[np.inf], thresholds])
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_curve(
    truth: Any,
    proba: Any,
    *,
    foreground: Any = None,
    mask: Any = None,
    max_points: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic of a probability (or score) map.

    Parameters
    ----------
    truth : (M, N[, P]) ndarray
        Ground truth; foreground is non-zero, or ``== foreground``.
    proba : (M, N[, P]) ndarray
        Foreground probability per pixel (for a multi-class map pass one class, e.g.
        ``proba[..., 1]``). Any finite scores work, not only values in [0, 1]; higher means
        more likely foreground.
    foreground : number, optional
        Foreground value in ``truth``.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.
    max_points : int, optional
        Return at most this many points of the exact curve (evenly spaced along it, first and
        last kept), for plotting or JSON. Default: all points.

    Returns
    -------
    fpr, tpr : (K,) float64 ndarray
        False- and true-positive rates, increasing, from (0, 0) to (1, 1).
    thresholds : (K,) float64 ndarray
        Decreasing; ``proba >= thresholds[i]`` gives ``(fpr[i], tpr[i])``; the first is inf.
        Points on straight segments are dropped, so the curve equals scikit-learn's
        ``roc_curve(..., drop_intermediate=True)``.

    Raises
    ------
    ValueError
        If the truth (inside ``mask``) has only foreground or only background, or ``proba``
        holds NaN or infinite values.

    Examples
    --------
    >>> truth = np.array([0, 0, 1, 1])
    >>> proba = np.array([0.1, 0.4, 0.35, 0.8])
    >>> fpr, tpr, thresholds = roc_curve(truth, proba)
    >>> fpr, tpr
    (array([0. , 0. , 0.5, 0.5, 1. ]), array([0. , 0.5, 0.5, 1. , 1. ]))
    """
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer))
        or max_points < 2
    ):
        raise ValueError(f"max_points must be an integer of at least 2, got {max_points!r}")
    fpr, tpr, thresholds = _full_roc(truth, proba, foreground, mask)
    if max_points is not None and fpr.size > max_points:
        keep = np.unique(np.round(np.linspace(0, fpr.size - 1, int(max_points))).astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return fpr, tpr, thresholds


def roc_auc(truth: Any, proba: Any, *, foreground: Any = None, mask: Any = None) -> float:
    """Area under the ROC curve of a probability (or score) map.

    Parameters
    ----------
    truth : (M, N[, P]) ndarray
        Ground truth; foreground is non-zero, or ``== foreground``.
    proba : (M, N[, P]) ndarray
        Foreground probability or any finite score (higher = more likely foreground).
    foreground : number, optional
        Foreground value in ``truth``.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        In [0, 1]; 0.5 for a useless score, 1.0 for one that separates the classes.

    Raises
    ------
    ValueError
        If the truth (inside ``mask``) has only one class.

    Examples
    --------
    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    fpr, tpr, _ = _full_roc(truth, proba, foreground, mask)
    return float(trapezoid(tpr, fpr))


def adjusted_rand_index(truth: Any, pred: Any, *, mask: Any = None) -> float:
    """Adjusted Rand index of two labelings (the label values themselves do not matter).

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Label images of the same shape, e.g. a truth segmentation and clusters.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float
        1.0 for identical partitions, about 0 for unrelated ones (can be negative).

    Examples
    --------
    >>> adjusted_rand_index(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2]))
    1.0
    """
    t, p, m = _check_pair(truth, pred, mask)
    found = _contingency(t, p, m)
    if found is not None:
        table = found[2]
        return _ari(table, table.sum(axis=1), table.sum(axis=0))
    # Many labels on both sides (instance segmentations): count only the pairs that occur.
    classes_t, classes_p = _present_values(t, m), _present_values(p, m)
    index_t, index_p = _indexer(t, classes_t), _indexer(p, classes_p)
    n_t, n_p = classes_t.size, classes_p.size
    found_cells, found_counts = [], []
    rows = np.zeros(n_t, dtype=np.int64)
    cols = np.zeros(n_p, dtype=np.int64)
    for tc, pc in _chunks([t, p], m):
        it, ip = index_t(tc), index_p(pc)
        rows += np.bincount(it, minlength=n_t)
        cols += np.bincount(ip, minlength=n_p)
        cell, count = np.unique(it.astype(np.int64) * n_p + ip, return_counts=True)
        found_cells.append(cell)
        found_counts.append(count)
    cell, count = np.concatenate(found_cells), np.concatenate(found_counts)
    order = np.argsort(cell, kind="stable")
    cell, count = cell[order], count[order]
    starts = np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]]))
    return _ari(np.add.reduceat(count, starts), rows, cols)


def _errors(a: Any, b: Any, mask: Any) -> tuple[float, float, int]:
    x, y, m = _check_pair(a, b, mask, names=("a", "b"))
    squares = absolute = 0.0
    n = 0
    for xc, yc in _chunks([x, y], m):
        # float64: unsigned subtraction would wrap, and float32 sums lose digits past ~1e7.
        d = xc.astype(np.float64) - yc
        squares += float(np.dot(d, d))
        absolute += float(np.abs(d).sum())
        n += d.size
    return squares, absolute, n


def mse(a: Any, b: Any, *, mask: Any = None) -> float:
    """Mean squared error between two images (computed in float64).

    Parameters
    ----------
    a, b : (M, N[, P]) ndarray
        Images of the same shape (e.g. a reconstruction and its reference).
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float

    Examples
    --------
    >>> mse(np.array([0, 1, 2], dtype=np.uint8), np.array([1, 1, 0], dtype=np.uint8))
    1.666...
    """
    squares, _, n = _errors(a, b, mask)
    return squares / n


def mae(a: Any, b: Any, *, mask: Any = None) -> float:
    """Mean absolute error between two images (computed in float64).

    Parameters
    ----------
    a, b : (M, N[, P]) ndarray
        Images of the same shape.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float

    Examples
    --------
    >>> mae(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0]))
    1.0
    """
    _, absolute, n = _errors(a, b, mask)
    return absolute / n


def rmse(a: Any, b: Any, *, mask: Any = None) -> float:
    """Root mean squared error between two images (computed in float64).

    Parameters
    ----------
    a, b : (M, N[, P]) ndarray
        Images of the same shape.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.

    Returns
    -------
    float

    Examples
    --------
    >>> rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0]))
    3.535...
    """
    return float(np.sqrt(mse(a, b, mask=mask)))


def _is_binary(values: np.ndarray) -> bool:
    return values.size < 2 or (values.size == 2 and bool((values == 0).any()))


def segmentation_report(
    truth: Any,
    pred: Any,
    *,
    proba: Any = None,
    foreground: Any = None,
    mask: Any = None,
    ignore: Any = None,
) -> dict[str, Any]:
    """All quality measures of a segmentation in one JSON-ready dictionary.

    This is what ``niseg evaluate --json`` prints. Two binary images (each holding at most the
    values {0, v}, e.g. a 0/255 truth and a 0/1 result) are compared non-zero against zero;
    with ``foreground`` given, ``== foreground`` against the rest. Other images are compared
    class by class: the headline ``dice``, ``iou``, ``precision`` and ``recall`` are then the
    macro averages over the classes and ``per_class`` holds each class.

    Parameters
    ----------
    truth, pred : (M, N[, P]) ndarray
        Ground truth and segmentation of the same shape.
    proba : (M, N[, P]) ndarray, optional
        Foreground probability (or score) map; adds ``roc_auc`` of the binarized truth
        (non-zero, or ``== foreground``), None when that truth has only one class.
    foreground : number, optional
        Foreground value: forces a binary comparison of ``== foreground`` against the rest.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to evaluate.
    ignore : number, optional
        Truth value whose pixels are left out (e.g. 0 = unlabeled in sparse labels). It is
        not scored as a class; pixels predicted as this value count as misses of their class.

    Returns
    -------
    dict
        ``mode`` ("binary" or "multiclass"), ``n_pixels`` (evaluated), ``labels`` and
        ``confusion`` (list of rows = truth, columns = prediction; labels [0, 1] =
        background, foreground in binary mode), ``dice``, ``iou``, ``precision``, ``recall``,
        ``accuracy``, ``balanced_accuracy``, ``ari`` (adjusted Rand index), ``per_class`` (as
        :func:`per_class_scores`) and, with ``proba``, ``roc_auc``. Plain Python numbers.

    Examples
    --------
    >>> truth = np.array([[0, 255, 255], [0, 0, 255]], dtype=np.uint8)
    >>> pred = np.array([[0, 1, 1], [0, 1, 0]], dtype=np.uint8)
    >>> report = segmentation_report(truth, pred)
    >>> report["mode"], report["confusion"], round(report["dice"], 3)
    ('binary', [[2, 1], [1, 2]], 0.667)
    """
    t, p, m = _check_pair(truth, pred, mask)
    foreground = _check_scalar(foreground, "foreground")
    ignore = _check_scalar(ignore, "ignore")
    if ignore is not None:
        kept = t != ignore
        m = kept if m is None else m & kept
        if not m.any():
            raise ValueError(
                f"no pixels left to evaluate: every truth pixel equals ignore={ignore}"
            )
    scores = None
    if proba is not None:
        scores = _as_array(proba, "proba")
        if scores.shape != np.shape(truth):
            raise ValueError(
                f"proba has shape {scores.shape} but truth has shape {np.shape(truth)}; "
                "pass the foreground probability only, e.g. proba[..., 1]"
            )
        scores = scores.reshape(-1)

    classes, counts = _label_counts(t, p, m)
    counts = counts[:-1, :-1]
    in_truth, in_pred = classes[counts.sum(axis=1) > 0], classes[counts.sum(axis=0) > 0]
    binary = foreground is not None or (_is_binary(in_truth) and _is_binary(in_pred))
    if binary:
        side = ((classes != 0) if foreground is None else (classes == foreground)).astype(np.intp)
        folded = np.zeros((2, 2), dtype=np.int64)
        np.add.at(folded, (side[:, None], side[None, :]), counts)
        counts, classes = folded, np.array([0, 1])
        per_class = _per_class(counts, np.arange(2), classes)
        headline = {name: per_class[name][1] for name in ("dice", "iou", "precision", "recall")}
    else:
        scored = np.arange(classes.size) if ignore is None else np.flatnonzero(classes != ignore)
        per_class = _per_class(counts, scored, classes[scored])
        headline = per_class["macro"]
    tp = np.diagonal(counts)
    support = counts.sum(axis=1)
    n = int(counts.sum())
    present = support > 0
    report: dict[str, Any] = {
        "mode": "binary" if binary else "multiclass",
        "n_pixels": n,
        "labels": classes.tolist(),
        "confusion": counts.tolist(),
        **headline,
        "accuracy": int(tp.sum()) / n,
        "balanced_accuracy": float(np.mean(tp[present] / support[present])),
        "ari": _ari(counts, support, counts.sum(axis=0)),
        "per_class": per_class,
    }
    if scores is not None:
        try:
            fpr, tpr, _ = _roc(t, scores, m, foreground)
            report["roc_auc"] = float(trapezoid(tpr, fpr))
        except _OneClassError:
            report["roc_auc"] = None
    return report
