"""`threshold`: one entry point for every threshold method, with correction and clean-up."""

from __future__ import annotations

from typing import Any

import numpy as np

from niseg.threshold._apply import (
    _image,
    apply_levels,
    clean_binary,
    correct_background,
    guarded_multilevel,
    hysteresis_threshold,
    local_threshold,
)
from niseg.threshold._levels import (
    AUTOMATIC_METHODS,
    auto_hysteresis_levels,
    check_foreground,
    finite_values,
    multi_level_threshold,
    results_based_threshold,
    threshold_value,
)

__all__ = ["METHODS", "threshold", "try_all_thresholds"]

#: Every method accepted by :func:`threshold`.
METHODS = ("manual", *AUTOMATIC_METHODS, "local", "multiotsu", "hysteresis", "results")


def threshold(
    image: Any,
    *,
    method: str = "otsu",
    foreground: str = "bright",
    value: float | None = None,
    classes: int | None = None,
    block_size: int | None = None,
    offset: float = 0.0,
    low: float | None = None,
    high: float | None = None,
    object_size: tuple[float, float] | None = None,
    background: float | None = None,
    background_mode: str = "divide",
    background_estimate: str = "morphological",
    fill_holes: bool = False,
    min_size: int = 0,
    opening: int = 0,
    closing: int = 0,
    guard_edges: bool = False,
    levels: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Segment an image by a threshold, with optional background correction and clean-up.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image (2D or 3D); NaN pixels get label 0.
    method : str
        ``manual`` (needs ``value``), an automatic level (``otsu``, ``isodata``, ``li``,
        ``mean``, ``minimum``, ``triangle``, ``yen``, ``intermodes``), ``local`` (needs
        ``block_size``), ``multiotsu`` (``classes`` K, labels 1..K), ``hysteresis`` (``low``
        and ``high``, or both chosen by :func:`auto_hysteresis_levels`) or ``results``
        (needs ``object_size``; see :func:`results_based_threshold` for its bias).
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background. For multi-level labels,
        class K is the most foreground class (the darkest with ``dark``).
    value : float, optional
        The level of ``manual``.
    classes : int, optional
        Number of classes of ``multiotsu`` (default 3); ``otsu`` with ``classes > 2`` means
        ``multiotsu``.
    block_size, offset : int, float
        Neighbourhood side and offset of ``local``.
    low, high : float, optional
        Levels of ``hysteresis`` (see :func:`hysteresis_threshold`).
    object_size : (float, float), optional
        Expected object sizes in pixels for ``results``.
    background : float, optional
        σ in pixels of a background correction applied first (see :func:`correct_background`).
    background_mode, background_estimate : str
        ``divide`` or ``subtract``; ``morphological`` or ``gaussian``.
    fill_holes, min_size, opening, closing
        Clean-up of binary results (see :func:`clean_binary`).
    guard_edges : bool
        For multi-level results: fill high-gradient pixels from their neighbours (see
        :func:`guarded_multilevel`).
    levels : sequence of float, optional
        Use these levels instead of computing them (e.g. the ``levels`` of an earlier
        sample's info, so a series is segmented consistently); not for ``local``.

    Returns
    -------
    labels : (M, N[, P]) ndarray of uint8
        Binary methods: 0/1. ``multiotsu``: classes 1..K with 0 for NaN pixels.
    info : dict
        ``method``, ``foreground``, ``levels`` (image units, after background correction),
        ``level_names``, ``classes`` (names) and the options used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(0.2, 0.05, (64, 64)); image[16:48, 16:48] += 0.6
    >>> labels, info = threshold(image, method="otsu")
    >>> int(labels.sum()), info["level_names"]
    (1024, ['level'])
    >>> labels, info = threshold(image, method="multiotsu", classes=3)
    >>> sorted(np.unique(labels).tolist())
    [1, 2, 3]
    """
    check_foreground(foreground)
    array = _image(image)
    finite_values(array)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "otsu" and classes is not None and classes > 2:
        method = "multiotsu"
    if classes is not None and method not in ("multiotsu", "otsu"):
        raise ValueError(f"classes applies to the multiotsu method, not to {method!r}")
    info: dict[str, Any] = {"method": method, "foreground": foreground}
    work = array
    if background is not None:
        work, _ = correct_background(array, sigma=background, mode=background_mode,
                                     estimate=background_estimate, foreground=foreground)
        info["background"] = {"sigma": float(background), "mode": background_mode,
                              "estimate": background_estimate}
    given = None if levels is None else [float(v) for v in np.ravel(levels)]

    if method == "local":
        if given is not None:
            raise ValueError("levels cannot be reused with the local method, whose level "
                             "changes from pixel to pixel")
        if block_size is None:
            raise ValueError("the local method needs block_size, an odd number of pixels")
        labels = local_threshold(work, block_size=block_size, offset=offset,
                                 foreground=foreground)
        info.update(levels=[], level_names=[], block_size=int(block_size), offset=float(offset))
    elif method == "multiotsu":
        k = 3 if classes is None else int(classes)
        found = given if given is not None else multi_level_threshold(work, classes=k).tolist()
        if given is not None and len(given) != k - 1 and classes is not None:
            raise ValueError(f"levels holds {len(given)} values but {k} classes need {k - 1}")
        k = len(found) + 1
        if guard_edges:
            labels = guarded_multilevel(work, found, foreground=foreground)
        else:
            labels = apply_levels(work, found, foreground=foreground)
        info.update(levels=list(found), level_names=[f"level {i + 1}" for i in range(k - 1)],
                    guard_edges=bool(guard_edges))
        info["classes"] = [f"class {i + 1}" for i in range(k)]
        return labels, info
    elif method == "hysteresis":
        if given is not None:
            _need(len(given) == 2, "levels must hold two values (low, high) for hysteresis")
            low, high = given
        elif low is None and high is None:
            low, high = auto_hysteresis_levels(work, foreground=foreground)
            info["automatic_levels"] = True
        elif low is None or high is None:
            raise ValueError("hysteresis needs both low and high, or neither for automatic "
                             "levels")
        labels = hysteresis_threshold(work, low=low, high=high, foreground=foreground)
        info.update(levels=[float(low), float(high)], level_names=["low", "high"])
    else:
        if given is not None:
            _need(len(given) == 1, f"levels must hold one value for the {method} method")
            level = given[0]
        elif method == "manual":
            if value is None:
                raise ValueError("the manual method needs value, the threshold level")
            level = float(value)
        elif method == "results":
            if object_size is None:
                raise ValueError("the results method needs object_size, the smallest and "
                                 "largest expected object size in pixels")
            level, _ = results_based_threshold(work, object_size=object_size,
                                               foreground=foreground)
            info["object_size"] = [float(v) for v in object_size]
        else:
            sign = 1.0 if foreground == "bright" else -1.0
            level = sign * threshold_value(sign * np.asarray(work, np.float64), method=method)
        labels = apply_levels(work, [level], foreground=foreground) - 1
        labels[~np.isfinite(work)] = 0
        info.update(levels=[float(level)], level_names=["level"])
    labels = clean_binary(labels, fill_holes=fill_holes, min_size=min_size, opening=opening,
                          closing=closing)
    info.update(fill_holes=bool(fill_holes), min_size=int(min_size), opening=int(opening),
                closing=int(closing), classes=["background", "foreground"])
    return labels, info


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def try_all_thresholds(image: Any, *, foreground: str = "bright"
                       ) -> dict[str, tuple[np.ndarray | None, float | None, str | None]]:
    """Every automatic single-level method on one image, for comparing them side by side.

    Parameters
    ----------
    image : (M, N[, P]) ndarray
        Image; NaN pixels are ignored.
    foreground : {"bright", "dark"}
        Whether objects are brighter or darker than the background.

    Returns
    -------
    dict
        For each method of :data:`AUTOMATIC_METHODS`: ``(labels, level, None)`` or, where the
        method fails on this image (e.g. ``minimum`` on a histogram without two peaks),
        ``(None, None, reason)``.

    Examples
    --------
    >>> image = np.r_[np.zeros(60), np.ones(40)].reshape(10, 10)
    >>> results = try_all_thresholds(image)
    >>> int(results["otsu"][0].sum())
    40
    """
    array = _image(image)
    finite_values(array)
    out: dict[str, tuple[np.ndarray | None, float | None, str | None]] = {}
    for method in AUTOMATIC_METHODS:
        try:
            labels, info = threshold(array, method=method, foreground=foreground)
        except ValueError as exc:
            out[method] = (None, None, str(exc))
        else:
            out[method] = (labels, info["levels"][0], None)
    return out
