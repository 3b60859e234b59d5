"""Markov random field segmentation: Gaussian classes with a Potts prior, by ICM or graph cuts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

MRF_INITS = ("kmeans", "otsu")
MRF_OPTIMIZERS = ("icm", "graphcut")
# Pixels used to fit the intensity model; the Gaussian parameters are stable long before.
_FIT_SAMPLE = 100_000
_INIT_SAMPLE = 50_000


@dataclass(frozen=True)
class MRFSegmentation:
    """The result of :func:`mrf_segmentation`.

    Attributes
    ----------
    labels : (M, N[, P]) uint8 ndarray
        Class per pixel, 1..K ordered by increasing mean intensity; 0 outside the mask and
        where the image is not finite.
    initial : (M, N[, P]) uint8 ndarray
        The pixel-wise maximum-likelihood classes the optimisation started from.
    means, stds, priors : list of float
        The Gaussian intensity model of each class (after EM), in class order.
    iterations : int
        ICM or alpha-expansion sweeps done (1 for the two-class graph cut).
    energy : list of float
        Total energy after each sweep (unary + Potts), non-increasing.
    """

    labels: np.ndarray
    initial: np.ndarray
    means: list[float]
    stds: list[float]
    priors: list[float]
    iterations: int
    energy: list[float] = field(default_factory=list)


def _check(image: Any, mask: Any, classes: Any, beta: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"image must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be 2D (M, N) or 3D (M, N, P), got shape {arr.shape}")
    valid = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, dtype=bool)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != arr.shape:
            raise ValueError(f"mask has shape {m.shape} but image has shape {arr.shape}")
        valid &= m.astype(bool)
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise ValueError(f"classes must be a whole number >= 2, got {classes!r}")
    n_valid = int(valid.sum())
    if classes > n_valid:
        raise ValueError(f"classes is {classes} but the image has only {n_valid} valid pixels")
    if isinstance(beta, bool) or not isinstance(beta, (Real, np.number)) or not (
        np.isfinite(beta) and beta >= 0
    ):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    values = arr[valid].astype(np.float64)
    if np.unique(values[: min(values.size, 1_000_000)]).size < classes and (
        np.unique(values).size < classes
    ):
        what = "constant" if values.min() == values.max() else f"not {classes}-valued"
        raise ValueError(f"image is {what}; it has fewer than {classes} distinct values")
    return arr, valid


def _neighbour_kernel(ndim: int, connectivity: int) -> np.ndarray:
    from scipy.ndimage import generate_binary_structure

    if connectivity not in (1, ndim):
        raise ValueError(
            f"connectivity must be 1 ({2 * ndim} neighbours) or {ndim} "
            f"({3 ** ndim - 1} neighbours) for a {ndim}D image, got {connectivity!r}"
        )
    kernel = generate_binary_structure(ndim, connectivity).astype(np.float32)
    kernel[(1,) * ndim] = 0
    return kernel


def _offsets(kernel: np.ndarray) -> list[tuple[int, ...]]:
    centre = np.array(kernel.shape) // 2
    return [tuple(int(v) for v in idx - centre) for idx in np.argwhere(kernel > 0)]


def _subgrids(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The 2^ndim strided sub-grids (every other pixel along each axis).

    No two pixels of one sub-grid are neighbours, even with full (8 or 26) connectivity, so
    each sub-grid is a coding set whose pixels ICM can update at once.
    """
    grids = []
    for code in range(2 ** len(shape)):
        start = [(code >> (len(shape) - 1 - axis)) & 1 for axis in range(len(shape))]
        if all(st < n for st, n in zip(start, shape)):
            grids.append(tuple(slice(st, None, 2) for st in start))
    return grids


def _initial_means(values: np.ndarray, classes: int, init: str, seed: int) -> np.ndarray:
    if init == "kmeans":
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        # In 1D, evenly spaced quantiles are a good deterministic start, so one run suffices;
        # one thread, because thread start-up costs more than this small fit.
        start = np.quantile(values, (np.arange(classes) + 0.5) / classes)[:, None]
        with threadpool_limits(1):
            km = KMeans(n_clusters=classes, n_init=1, init=start, random_state=seed)
            km.fit(values[:, None])
        return np.sort(km.cluster_centers_[:, 0])
    from skimage.filters import threshold_multiotsu

    levels = threshold_multiotsu(values, classes=classes)
    bins = np.digitize(values, levels, right=True)
    edges = np.concatenate([[values.min()], levels, [values.max()]])
    # An empty multi-Otsu class starts at the middle of its interval.
    return np.array([values[bins == k].mean() if (bins == k).any()
                     else (edges[k] + edges[k + 1]) / 2 for k in range(classes)])


def _fit_gaussians(values: np.ndarray, classes: int, init: str, seed: int,
                   em_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM for a 1D Gaussian mixture, started from the k-means or multi-Otsu classes.

    Written out because in 1D it is a few vector operations per step, many times faster
    than scikit-learn's general GaussianMixture on the same sample.
    """
    rng = np.random.default_rng(seed)
    if values.size > _FIT_SAMPLE:
        values = rng.choice(values, _FIT_SAMPLE, replace=False)
    sample = values if values.size <= _INIT_SAMPLE else rng.choice(values, _INIT_SAMPLE,
                                                                     replace=False)
    start = _initial_means(sample, classes, init, seed)
    # Hard assignment to the nearest start gives the first variances and priors.
    nearest = np.argmin(np.abs(values[:, None] - start[None, :]), axis=1)
    floor = 1e-6 * float(values.var()) + 1e-12
    resp = np.zeros((values.size, classes))
    resp[np.arange(values.size), nearest] = 1.0
    means = start.astype(np.float64)
    for _ in range(em_iter):
        weight = resp.sum(axis=0) + 1e-12
        priors = weight / values.size
        means = (resp * values[:, None]).sum(axis=0) / weight
        var = (resp * (values[:, None] - means) ** 2).sum(axis=0) / weight + floor
        log_p = (-0.5 * (values[:, None] - means) ** 2 / var - 0.5 * np.log(var)
                 + np.log(priors + 1e-300))
        log_p -= log_p.max(axis=1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(axis=1, keepdims=True)
    weight = resp.sum(axis=0) + 1e-12
    priors = weight / values.size
    means = (resp * values[:, None]).sum(axis=0) / weight
    stds = np.sqrt((resp * (values[:, None] - means) ** 2).sum(axis=0) / weight + floor)
    order = np.argsort(means)
    return means[order], stds[order], priors[order]


def _unary(values: np.ndarray, means: np.ndarray, stds: np.ndarray,
           priors: np.ndarray) -> np.ndarray:
    """Negative log of prior x Gaussian likelihood, per class on the last axis (float32)."""
    v = values[..., None].astype(np.float32)
    return ((v - means.astype(np.float32)) ** 2 / (2 * stds.astype(np.float32) ** 2)
            + np.log(stds / priors).astype(np.float32))


def _forward_pairs(shape: tuple[int, ...], offsets: list[tuple[int, ...]]
                   ) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]]:
    """(offset, slice of p, slice of q = p + offset) for each neighbour pair direction once."""
    for off in offsets:
        if off <= (0,) * len(off):
            continue
        a = tuple(slice(0, n - d) if d >= 0 else slice(-d, n) for d, n in zip(off, shape))
        b = tuple(slice(d, n) if d >= 0 else slice(0, n + d) for d, n in zip(off, shape))
        yield off, a, b


def _energy(labels: np.ndarray, unary: np.ndarray, valid: np.ndarray, beta: float,
            offsets: list[tuple[int, ...]]) -> float:
    idx = np.clip(labels.astype(np.int64) - 1, 0, None)[..., None]
    total = float(np.take_along_axis(unary, idx, axis=-1)[..., 0][valid].sum(dtype=np.float64))
    disagree = 0
    for _, a, b in _forward_pairs(labels.shape, offsets):
        disagree += int(np.count_nonzero(valid[a] & valid[b] & (labels[a] != labels[b])))
    return total + beta * disagree


def _icm(labels: np.ndarray, unary: np.ndarray, valid: np.ndarray, beta: float,
         kernel: np.ndarray, max_iter: int) -> tuple[np.ndarray, int, list[float]]:
    from scipy.ndimage import correlate

    classes = unary.shape[-1]
    shape = labels.shape
    offsets = _offsets(kernel)
    inner = tuple(slice(1, n + 1) for n in shape)
    # One-hot labels with a zero border, so neighbour counts are sums of shifted views.
    onehot = np.zeros((classes,) + tuple(n + 2 for n in shape), dtype=np.float32)
    for k in range(classes):
        onehot[(k,) + inner] = labels == k + 1
    n_neighbours = correlate(valid.astype(np.float32), kernel, mode="constant")
    energies: list[float] = []
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        changed = 0
        for sub in _subgrids(shape):
            sub_shape = labels[sub].shape
            same = np.zeros((classes,) + sub_shape, dtype=np.float32)
            for off in offsets:
                view = tuple(slice(1 + s.start + d, 1 + s.start + d + 2 * (n - 1) + 1, 2)
                             for s, d, n in zip(sub, off, sub_shape))
                same += onehot[(slice(None),) + view]
            # Potts cost of class k: beta x (valid neighbours not of class k).
            cost = unary[sub] + beta * (n_neighbours[sub][..., None] - np.moveaxis(same, 0, -1))
            new = np.where(valid[sub], np.argmin(cost, axis=-1) + 1, 0).astype(labels.dtype)
            changed += int(np.count_nonzero(new != labels[sub]))
            labels[sub] = new
            target = tuple(slice(1 + s.start, None, 2) for s in sub)
            target = tuple(slice(t.start, t.start + 2 * (n - 1) + 1, 2)
                           for t, n in zip(target, sub_shape))
            for k in range(classes):
                onehot[(k,) + target] = new == k + 1
        energies.append(_energy(labels, unary, valid, beta, offsets))
        if changed == 0:
            break
    return labels, sweeps, energies


def _import_maxflow() -> Any:
    try:
        import maxflow
    except ImportError:
        raise ImportError(
            "the graph-cut optimizer needs PyMaxflow, which is not installed; install it with "
            "'pip install PyMaxflow' or use the icm optimizer"
        ) from None
    return maxflow


def _binary_move(maxflow: Any, keep: np.ndarray, switch: np.ndarray, unary: np.ndarray,
                 valid: np.ndarray, beta: float, kernel: np.ndarray) -> np.ndarray:
    """Exact best choice, per pixel, between the labels ``keep`` and ``switch`` (1..K).

    Each neighbour pair's Potts cost over the four choices (A = both keep, B = only q
    switches, C = only p switches, D = both switch) is rewritten, with x = 1 for a switch
    and lam = (B + C - A - D) / 2, as A + (C - A - lam) x_p + (D - C + lam) x_q
    + lam |x_p - x_q|: two unary terms and one symmetric edge. The edge is non-negative
    (the move is submodular) because Potts obeys the triangle inequality, for an
    alpha-expansion (switch = alpha everywhere) as for the two-class cut (keep = 1,
    switch = 2; there lam = beta and the linear terms vanish). Returns a bool array, True
    where ``switch`` wins.
    """
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(valid.shape)

    def cost(lab: np.ndarray) -> np.ndarray:
        idx = np.clip(lab.astype(np.int64) - 1, 0, None)[..., None]
        return np.where(valid, np.take_along_axis(unary, idx, axis=-1)[..., 0],
                        0.0).astype(np.float64)

    cost_keep, cost_switch = cost(keep), cost(switch)
    centre = (1,) * valid.ndim
    for off, a, b in _forward_pairs(valid.shape, _offsets(kernel)):
        # Masked pixels do not act as neighbours: no terms for a pair with one of them.
        w = beta * (valid[a] & valid[b])
        t_a = w * (keep[a] != keep[b])
        t_b = w * (keep[a] != switch[b])
        t_c = w * (switch[a] != keep[b])
        t_d = w * (switch[a] != switch[b])
        lam = (t_b + t_c - t_a - t_d) / 2
        cost_switch[a] += t_c - t_a - lam
        cost_switch[b] += t_d - t_c + lam
        capacity = np.zeros(valid.shape)
        capacity[a] = lam
        structure = np.zeros(kernel.shape)
        structure[tuple(c + d for c, d in zip(centre, off))] = 1
        graph.add_grid_edges(nodes, weights=capacity, structure=structure, symmetric=True)
    low = np.minimum(cost_keep, cost_switch)
    # A node on the sink side (segment True) cuts its source edge, so the source edge
    # carries the cost of switching and the sink edge the cost of keeping.
    graph.add_grid_tedges(nodes, cost_switch - low, cost_keep - low)
    graph.maxflow()
    return graph.get_grid_segments(nodes) & valid


def _graphcut(labels: np.ndarray, unary: np.ndarray, valid: np.ndarray, beta: float,
              kernel: np.ndarray, max_iter: int) -> tuple[np.ndarray, int, list[float]]:
    """One exact cut for two classes; alpha-expansion sweeps from ``labels`` for more."""
    maxflow = _import_maxflow()
    classes = unary.shape[-1]
    offsets = _offsets(kernel)
    if classes == 2:
        ones = valid.astype(np.uint8)
        second = _binary_move(maxflow, ones, 2 * ones, unary, valid, beta, kernel)
        labels = np.where(second, 2, ones).astype(np.uint8)
        return labels, 1, [_energy(labels, unary, valid, beta, offsets)]
    # Alpha-expansion (Boykov, Veksler & Zabih 2001): each move lets every pixel keep its
    # label or take alpha, solved exactly by one cut; the result is within twice the global
    # minimum for Potts.
    energy = _energy(labels, unary, valid, beta, offsets)
    energies: list[float] = []
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        changed = False
        for alpha in range(1, classes + 1):
            target = np.where(valid, alpha, 0).astype(np.uint8)
            take = _binary_move(maxflow, labels, target, unary, valid, beta, kernel)
            candidate = np.where(take, target, labels)
            if np.array_equal(candidate, labels):
                continue
            # Checked on the exact energy, so float round-off in the flow cannot let a move
            # raise it.
            new_energy = _energy(candidate, unary, valid, beta, offsets)
            if new_energy < energy:
                labels, energy, changed = candidate, new_energy, True
        energies.append(energy)
        if not changed:
            break
    return labels, sweeps, energies


def mrf_segmentation(
    image: Any,
    *,
    classes: int = 2,
    beta: float = 1.0,
    init: str = "kmeans",
    optimizer: str = "icm",
    connectivity: int = 1,
    max_iter: int = 30,
    em_iter: int = 20,
    mask: Any = None,
    seed: int = 0,
) -> MRFSegmentation:
    """Segment an image into K classes with a Markov random field (Potts prior).

    Each class has a prior probability and a Gaussian intensity distribution, started by
    k-means or multi-Otsu and refined by EM on the pixel values. The labels then minimise

        sum_p [ (x_p - mu_c)^2 / (2 sigma_c^2) + log sigma_c - log pi_c ]
        + beta * (number of neighbouring pixel pairs with different classes)

    by iterated conditional modes, updating all pixels of one coding set (no two
    neighbours) at once, or by graph cuts (PyMaxflow): for two classes one cut gives the
    exact minimum; for more, alpha-expansion (Boykov, Veksler & Zabih, 2001) repeats, for
    each class alpha, the best move in which every pixel keeps its class or takes alpha,
    until a sweep over all classes changes nothing (within twice the minimum). The
    smoothness ``beta`` is in units of the data term (nats per disagreeing neighbour): 0
    gives the pixel-wise maximum-likelihood classes, about 1 suits noisy images.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Grayscale image or volume.
    classes : int, optional
        Number of classes K (at least 2).
    beta : float, optional
        Potts weight (>= 0).
    init : {'kmeans', 'otsu'}, optional
        Start of the intensity model: k-means centres or multi-Otsu classes.
    optimizer : {'icm', 'graphcut'}, optional
        ``'graphcut'`` needs PyMaxflow; it finds the global minimum for two classes and a
        lower energy than ICM (usually) by alpha-expansion for more.
    connectivity : int, optional
        1: 4 neighbours in 2D, 6 in 3D; ``image.ndim``: 8 in 2D, 26 in 3D.
    max_iter : int, optional
        Most ICM or alpha-expansion sweeps; they stop earlier when no label changes.
    em_iter : int, optional
        Most EM iterations of the intensity model.
    mask : (M, N[, P]) bool ndarray, optional
        Pixels to segment; others (and non-finite pixels) get 0 and do not act as neighbours.
    seed : int, optional
        Seed of k-means and of the pixel sample the intensity model is fitted on.

    Returns
    -------
    MRFSegmentation
        ``labels`` 1..K by increasing mean, the ``initial`` labels, the class model, the
        number of sweeps and the energy after each.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> truth = np.zeros((64, 64), dtype=np.uint8)
    >>> truth[16:48, 20:44] = 1
    >>> image = truth + rng.normal(0, 0.6, truth.shape)
    >>> result = mrf_segmentation(image, classes=2, beta=1.5)
    >>> pixelwise = float(np.mean((result.initial == 2) == (truth == 1)))
    >>> smoothed = float(np.mean((result.labels == 2) == (truth == 1)))
    >>> smoothed > pixelwise + 0.1
    True
    """
    arr, valid = _check(image, mask, classes, beta)
    if init not in MRF_INITS:
        raise ValueError(f"init must be one of {', '.join(MRF_INITS)}, got {init!r}")
    if optimizer not in MRF_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(MRF_OPTIMIZERS)}, got {optimizer!r}")
    for name, value in (("max_iter", max_iter), ("em_iter", em_iter)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)):
        raise TypeError(f"connectivity must be 1 or {arr.ndim}, got {connectivity!r}")
    kernel = _neighbour_kernel(arr.ndim, int(connectivity))

    values = np.where(valid, arr, 0).astype(np.float32)
    means, stds, priors = _fit_gaussians(values[valid].astype(np.float64), classes, init, seed,
                                         em_iter)
    unary = _unary(values, means, stds, priors)
    initial = np.where(valid, np.argmin(unary, axis=-1) + 1, 0).astype(np.uint8)
    optimize = _graphcut if optimizer == "graphcut" else _icm
    labels, sweeps, energies = optimize(initial.copy(), unary, valid, float(beta), kernel,
                                            int(max_iter))
    return MRFSegmentation(
        labels=labels,
        initial=initial,
        means=[float(v) for v in means],
        stds=[float(v) for v in stds],
        priors=[float(v) for v in priors],
        iterations=sweeps,
        energy=energies,
    )
