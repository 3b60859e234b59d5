"""Robustness of a segmentation method: how often it meets a criterion on simulated data.

The model-based check of a method: simulate ``n`` realizations with known truth (new noise,
new object layout, new illumination each time), segment each one, score it against the truth
and report the fraction of realizations that meet a criterion, e.g. "in 97 % of 100
realizations Dice >= 0.9". It lives beside :mod:`niseg.metrics` (which scores one result)
because it drives the simulator and a method, not just a comparison.

- :func:`robustness` runs any ``method(image) -> labels`` on any ``simulate(seed) ->
  (image, truth)``;
- :func:`scenario` makes built-in simulators from :mod:`niseg.simulate` (:data:`SCENARIOS`);
- :func:`threshold_method` makes built-in methods from :mod:`niseg.threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "SCENARIOS",
    "RobustnessReport",
    "robustness",
    "scenario",
    "threshold_method",
]

#: Scores accepted in a criterion; binary ones compare non-zero against zero.
METRICS = ("dice", "iou", "precision", "recall", "accuracy", "ari")

#: Built-in scenarios of :func:`scenario`.
SCENARIOS = {
    "radiograph": "flat-field corrected neutron radiograph: counting noise and blur only",
    "falloff": "no flat-field correction: the beam falls off towards the corners",
    "drift": "flat-field corrected, but the beam drifted (random scale and linear gradient)",
    "cupping": "flat-field corrected with a smooth bowl-shaped offset, as from beam hardening",
}


@dataclass(frozen=True)
class RobustnessReport:
    """Scores of a method on ``n`` simulated realizations, and how many met the criterion.

    Attributes
    ----------
    scores : (n,) float64 ndarray
        Score of each realization.
    seeds : (n,) int64 ndarray
        Seed given to ``simulate`` for each realization.
    metric : str
        Name of the score.
    threshold : float
        The criterion is ``score >= threshold``.
    fraction : float
        Fraction of realizations meeting the criterion.
    info : dict
        Extra JSON-compatible facts (method, scenario, options).
    """

    scores: np.ndarray
    seeds: np.ndarray
    metric: str
    threshold: float
    fraction: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of realizations."""
        return int(self.scores.size)

    @property
    def summary(self) -> str:
        """One sentence, e.g. ``"in 97 % of 100 realizations Dice >= 0.9"``."""
        name = {"dice": "Dice", "iou": "IoU", "ari": "ARI"}.get(self.metric, self.metric)
        percent = 100.0 * self.fraction
        text = f"{percent:.0f}" if float(percent).is_integer() else f"{percent:.1f}"
        return f"in {text} % of {self.n} realizations {name} >= {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible summary with per-realization scores and quantiles."""
        finite = self.scores[np.isfinite(self.scores)]
        quantiles = ({f"q{q:02d}": float(np.percentile(finite, q)) for q in (5, 25, 50, 75, 95)}
                     if finite.size else {})
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "n": self.n,
            "fraction_meeting": self.fraction,
            "summary": self.summary,
            "mean": float(finite.mean()) if finite.size else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            **quantiles,
            "seeds": [int(s) for s in self.seeds],
            "scores": [float(s) for s in self.scores],
            **self.info,
        }


def _score(metric: str, truth: np.ndarray, pred: np.ndarray) -> float:
    from niseg import metrics

    if metric == "ari":
        return metrics.adjusted_rand_index(truth, pred)
    if metric == "accuracy":
        return metrics.accuracy(truth, pred)
    func = getattr(metrics, metric)
    return func(np.asarray(truth) > 0, np.asarray(pred) > 0)


def _check_criterion(criterion: Any) -> tuple[str, float]:
    if isinstance(criterion, str):
        name, sep, value = criterion.partition(":")
        if not sep:
            raise ValueError(f"criterion must look like 'dice:0.9', got {criterion!r}")
        try:
            criterion = (name, float(value))
        except ValueError:
            raise ValueError(f"criterion {criterion!r} must end with a number, e.g. "
                             f"'dice:0.9'") from None
    if not isinstance(criterion, (tuple, list)) or len(criterion) != 2:
        raise ValueError(f"criterion must be (metric, threshold), e.g. ('dice', 0.9), "
                         f"got {criterion!r}")
    name, value = str(criterion[0]).strip().lower(), criterion[1]
    if name not in METRICS:
        raise ValueError(f"criterion metric must be one of {', '.join(METRICS)}, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"criterion threshold must be a number from -1 to 1, got {value!r}")
    return name, float(value)


def robustness(
    method: Callable[[np.ndarray], np.ndarray],
    simulate: Callable[[int], tuple[np.ndarray, np.ndarray]],
    *,
    n: int = 100,
    criterion: tuple[str, float] | str = ("dice", 0.9),
    seed: int = 0,
    progress: Callable[[int, int], Any] | None = None,
) -> RobustnessReport:
    """Apply a method to ``n`` simulated realizations and count how often it is good enough.

    Parameters
    ----------
    method : callable
        ``method(image) -> labels``: the segmentation to test (binary 0/1 or classes).
    simulate : callable
        ``simulate(seed) -> (image, truth)``: one realization with its exact truth, e.g.
        from :func:`scenario`.
    n : int, optional
        Number of realizations.
    criterion : (str, float) or str, optional
        ``(metric, threshold)`` or ``"metric:threshold"``; a realization meets it when its
        score is at least the threshold. Metrics: :data:`METRICS` (dice, iou, precision and
        recall compare non-zero against zero).
    seed : int, optional
        Master seed; realization ``i`` gets its own seed derived from it, so the same
        ``seed`` gives the same report.
    progress : callable, optional
        Called as ``progress(done, n)`` after each realization.

    Returns
    -------
    RobustnessReport
        Scores, seeds, and the fraction meeting the criterion (``report.summary``).

    Examples
    --------
    >>> rep = robustness(threshold_method("otsu"), scenario("radiograph", size=48), n=4)
    >>> rep.summary
    'in 100 % of 4 realizations Dice >= 0.9'
    """
    if not callable(method) or not callable(simulate):
        raise TypeError("method and simulate must be callables: method(image) -> labels and "
                        "simulate(seed) -> (image, truth)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a whole number of realizations >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
    metric, threshold = _check_criterion(criterion)
    seeds = np.random.SeedSequence(int(seed)).generate_state(int(n), dtype=np.uint32)
    seeds = seeds.astype(np.int64)
    scores = np.empty(int(n), dtype=np.float64)
    for i, s in enumerate(seeds):
        result = simulate(int(s))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError("simulate(seed) must return a pair (image, truth)")
        image, truth = result
        pred = np.asarray(method(image))
        truth = np.asarray(truth)
        if pred.shape != truth.shape:
            raise ValueError(f"method returned labels of shape {pred.shape} but the truth has "
                             f"shape {truth.shape}")
        scores[i] = _score(metric, truth, pred)
        if progress is not None:
            progress(i + 1, int(n))
    met = np.isfinite(scores) & (scores >= threshold)
    info = {
        "method": getattr(method, "description", getattr(method, "__name__", repr(method))),
        "scenario": getattr(simulate, "description",
                            getattr(simulate, "__name__", repr(simulate))),
        "seed": int(seed),
    }
    return RobustnessReport(scores=scores, seeds=seeds, metric=metric, threshold=threshold,
                            fraction=float(met.mean()), info=info)


def threshold_method(
    name: str = "otsu",
    *,
    foreground: str = "bright",
    sigma: float = 0.0,
) -> Callable[[np.ndarray], np.ndarray]:
    """A built-in method: optional Gaussian smoothing, then an automatic threshold.

    Parameters
    ----------
    name : str, optional
        One of :data:`niseg.threshold.AUTOMATIC_METHODS` ("otsu", "li", ...).
    foreground : {"bright", "dark"}, optional
        Whether objects are above or below the level.
    sigma : float, optional
        Gaussian smoothing in pixels before thresholding (0 = none).

    Returns
    -------
    callable
        ``method(image) -> (M, N) uint8`` labels (1 = foreground), with a ``description``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.0, 0.2, 0.8, 1.0]] * 2)
    >>> threshold_method("otsu")(image)
    array([[0, 0, 1, 1],
           [0, 0, 1, 1]], dtype=uint8)
    """
    from scipy import ndimage as ndi

    from niseg.threshold import AUTOMATIC_METHODS, threshold_value

    if name not in AUTOMATIC_METHODS:
        raise ValueError(f"method must be one of {', '.join(AUTOMATIC_METHODS)}, got {name!r}")
    if foreground not in ("bright", "dark"):
        raise ValueError(f"foreground must be 'bright' or 'dark', got {foreground!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or \
            not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a non-negative number of pixels, got {sigma!r}")

    def method(image: np.ndarray) -> np.ndarray:
        values = np.asarray(image, dtype=np.float32)
        if sigma > 0:
            values = ndi.gaussian_filter(values, sigma)
        level = threshold_value(values, method=name)
        above = values > level if foreground == "bright" else values < level
        return above.astype(np.uint8)

    method.description = f"{name} threshold, {foreground} foreground" + (  # type: ignore[attr-defined]
        f", sigma {sigma:g}" if sigma > 0 else "")
    return method


def _disc_phantom(rng: np.random.Generator, size_cm: float, n_objects: int) -> Any:
    from niseg.simulate import Cylinder, Phantom

    shapes = []
    centres: list[tuple[float, float, float]] = []
    for _ in range(200):
        if len(shapes) == n_objects:
            break
        r = float(rng.uniform(0.06, 0.14)) * size_cm
        cy, cx = (float(v) for v in rng.uniform(r + 0.05 * size_cm, size_cm - r - 0.05 * size_cm,
                                                size=2))
        if all(math.hypot(cy - y, cx - x) > r + q + 0.03 * size_cm for y, x, q in centres):
            centres.append((cy, cx, r))
            shapes.append(Cylinder(material="iron", centre=(cy, cx), radius=r, thickness=1.0))
    return Phantom(shapes=shapes, field_of_view_cm=size_cm)


def scenario(
    name: str = "radiograph",
    *,
    size: int = 96,
    counts: float = 1000.0,
    blur: float = 1.0,
    n_objects: int = 4,
    strength: float | None = None,
) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """A built-in simulator: neutron radiographs of iron rods with exact binary truth.

    Each realization (seed) places ``n_objects`` iron discs (1 cm thick, seen along their
    axis) at new positions and draws new counting noise with
    :func:`niseg.simulate.simulate_radiograph`. The image is the attenuation
    ``-log(counts / reference)``, so the rods are bright; the reference depends on the
    scenario (:data:`SCENARIOS`):

    - ``"radiograph"``: the open-beam frame (flat-field correction);
    - ``"falloff"``: a constant (no flat field), with a beam that loses ``strength``
      (default 0.4) of its intensity towards the corners;
    - ``"drift"``: the open beam, while the sample frame's beam changed by a random scale
      and linear gradient of up to ``strength`` (default 0.3);
    - ``"cupping"``: the open beam, plus a bowl-shaped offset of ``strength`` (default 0.5)
      times the rods' attenuation, highest at the edge of the field.

    Parameters
    ----------
    name : str, optional
        Scenario name, a key of :data:`SCENARIOS`.
    size : int, optional
        Image side in pixels (at least 32).
    counts : float, optional
        Open-beam counts per pixel; fewer counts mean more noise.
    blur : float, optional
        Detector blur σ in pixels.
    n_objects : int, optional
        Number of rods (1 to 10).
    strength : float, optional
        Strength of the scenario's illumination defect (see above).

    Returns
    -------
    callable
        ``simulate(seed) -> (image, truth)`` with a float32 ``(size, size)`` image and a
        uint8 truth (1 = iron); it has a ``description``.

    Examples
    --------
    >>> image, truth = scenario("drift", size=48)(seed=1)
    >>> image.shape, truth.dtype, int(truth.max())
    ((48, 48), dtype('uint8'), 1)
    """
    from niseg.simulate import simulate_radiograph

    if name not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {name!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size must be a whole number of pixels >= 32, got {size!r}")
    if isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) \
            or not 1 <= n_objects <= 10:
        raise ValueError(f"n_objects must be a whole number from 1 to 10, got {n_objects!r}")
    for label, value in (("counts", counts), ("blur", blur)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)) \
                or not math.isfinite(value) or value < 0 or (label == "counts" and value == 0):
            raise ValueError(f"{label} must be a {'positive' if label == 'counts' else 'non-negative'}"
                             f" number, got {value!r}")
    defaults = {"radiograph": 0.0, "falloff": 0.4, "drift": 0.3, "cupping": 0.5}
    amount = defaults[name] if strength is None else strength
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) \
            or not 0.0 <= amount < 1.0:
        raise ValueError(f"strength must be a number from 0 to below 1, got {strength!r}")
    pixel_um = 100.0
    size_cm = size * pixel_um * 1e-4

    def simulate(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        phantom = _disc_phantom(rng, size_cm, n_objects)
        options: dict[str, Any] = {"beam_falloff": amount if name == "falloff" else 0.15}
        if name == "drift":
            options["drift"] = {"scale": float(1.0 + rng.uniform(-amount, amount)),
                                "gradient": tuple(float(g) for g in
                                                  rng.uniform(-amount, amount, size=2))}
        rad = simulate_radiograph(size=size, counts=counts, blur=blur, phantom=phantom,
                                  seed=seed, pixel_size_um=pixel_um, **options)
        sample = np.maximum(rad.image.astype(np.float64), 0.5)
        reference = (np.maximum(rad.open_beam.astype(np.float64), 0.5)
                     if name != "falloff" else float(counts))
        image = -np.log(sample / reference)
        truth = (rad.truth > 0).astype(np.uint8)
        if name == "cupping":
            mu_d = 1.0 * float(rad.metadata["mu_per_cm"]["iron"])
            yy, xx = np.mgrid[:size, :size]
            r2 = ((yy + 0.5 - size / 2) ** 2 + (xx + 0.5 - size / 2) ** 2) / (size / 2) ** 2
            image = image + amount * mu_d * np.minimum(r2, 2.0) / 2.0
        return image.astype(np.float32), truth

    simulate.description = (  # type: ignore[attr-defined]
        f"{name} scenario ({SCENARIOS[name]}), {size}x{size} px, {counts:g} counts, "
        f"blur {blur:g}, {n_objects} rods" + (f", strength {amount:g}" if name != "radiograph"
                                              else ""))
    return simulate
