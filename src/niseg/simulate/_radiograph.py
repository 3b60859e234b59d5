"""Neutron radiographs: beam profile, Beer–Lambert attenuation, Poisson counting, blur.

Forward model, per pixel ``(y, x)``:

1. open beam ``I0 = counts * profile(y, x)`` (neutrons per pixel for the exposure);
2. transmission ``T = exp(-sum_i mu_i d_i)`` (Beer–Lambert, ``mu`` in 1/cm, ``d`` in cm);
3. expected counts ``E = I0 * T``; detected counts ``N ~ Poisson(E)``;
4. optional detector blur: ``N`` convolved with a Gaussian point-spread function.

The blur comes after counting because each detected neutron produces a light flash in the
scintillator that spreads over neighbouring pixels: the noise of the image is therefore
spatially correlated and its variance is smaller than its mean (by the sum of squared PSF
weights, ``~1 / (4 pi sigma^2)`` for ``sigma`` of a pixel or more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._materials import get_material
from ._phantom import Phantom, _check_seed, _truth_from, default_phantom

__all__ = ["Radiograph", "beam_profile", "simulate_radiograph"]

SIMULATOR = "niseg.simulate.simulate_radiograph"
MIN_SIZE = 8
MAX_COUNTS = 1e12  # far beyond any real exposure; keeps Poisson sampling well defined


@dataclass(frozen=True, eq=False)
class Radiograph:
    """A simulated radiograph with its exact ground truth.

    Attributes
    ----------
    image : (M, N) float32 ndarray
        Detected neutron counts per pixel (Poisson, then blurred if asked).
    truth : (M, N) uint8 ndarray
        Class labels: 0 = open beam, ``k`` = ``metadata["classes"][k - 1]``.
    open_beam : (M, N) float32 ndarray
        An open-beam (flat-field) frame at the same exposure, with its own Poisson noise
        and the same blur, for normalisation.
    transmission : (M, N) float32 ndarray
        Noiseless transmission ``exp(-sum mu d)`` in [0, 1].
    metadata : dict
        JSON-compatible: ``axes`` ("yx"), ``pixel_size`` ``(py, px)``, ``unit`` ("um"),
        ``classes``, ``counts``, ``blur``, ``beam_falloff``, ``oversample``, ``seed``,
        ``radiation``, ``mu_per_cm`` (per class), ``phantom`` (:meth:`Phantom.to_dict`)
        and ``simulator``.

    Examples
    --------
    >>> from niseg.simulate import simulate_radiograph
    >>> rad = simulate_radiograph(size=32, seed=3)
    >>> rad.image.shape, rad.truth.dtype, rad.metadata["axes"]
    ((32, 32), dtype('uint8'), 'yx')
    """

    image: np.ndarray
    truth: np.ndarray
    open_beam: np.ndarray
    transmission: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def beam_profile(shape: tuple[int, int], *, falloff: float = 0.15) -> np.ndarray:
    """Smooth open-beam intensity profile, 1 at the centre.

    The profile is a Gaussian ``(1 - falloff) ** (r^2 / rc^2)`` of the distance ``r`` from
    the centre of the field of view, where ``rc`` is the distance to its corners: the
    intensity drops by the fraction ``falloff`` at the outer corners (square pixels
    assumed).

    Parameters
    ----------
    shape : (int, int)
        Image size ``(M, N)`` in pixels.
    falloff : float, optional
        Fraction of intensity lost at the corners, in ``[0, 1)``; 0 = flat beam.

    Returns
    -------
    (M, N) float32 ndarray
        Relative intensity in ``(1 - falloff, 1]``.

    Examples
    --------
    >>> from niseg.simulate import beam_profile
    >>> profile = beam_profile((64, 64), falloff=0.2)
    >>> float(profile.max()) > 0.999, round(float(profile.min()), 2)
    (True, 0.81)
    """
    dims = _check_size(shape, name="shape", minimum=1)
    falloff = _check_falloff(falloff)
    m, n = dims
    yy = (np.arange(m) + 0.5 - m / 2.0) ** 2
    xx = (np.arange(n) + 0.5 - n / 2.0) ** 2
    rc2 = (m / 2.0) ** 2 + (n / 2.0) ** 2
    rate = math.log1p(-falloff) / rc2
    # Separable: exp(rate * (y^2 + x^2)) = exp(rate * y^2) * exp(rate * x^2).
    return np.outer(np.exp(rate * yy), np.exp(rate * xx)).astype(np.float32)


def simulate_radiograph(
    *,
    size: int | tuple[int, int] = 256,
    counts: float = 1000.0,
    pixel_size_um: float = 100.0,
    blur: float = 0.0,
    beam_falloff: float = 0.15,
    phantom: Phantom | None = None,
    oversample: int = 1,
    seed: int = 0,
) -> Radiograph:
    """Simulate a thermal-neutron radiograph of a phantom, with exact ground truth.

    The detector grid (``size`` pixels of ``pixel_size_um``) is centred on the phantom's
    field of view. Transmission follows Beer–Lambert with the thermal-neutron attenuation
    coefficients of :data:`niseg.simulate.MATERIALS`; counts are Poisson samples of
    ``counts * beam_profile * transmission``; the optional Gaussian blur (scintillator and
    optics) is applied after counting, so the noise becomes spatially correlated.

    Parameters
    ----------
    size : int or (int, int), optional
        Image size ``(M, N)`` in pixels (at least 8 each); an int gives a square image.
    counts : float, optional
        Expected open-beam neutrons per pixel at the beam centre for the exposure.
    pixel_size_um : float, optional
        Pixel size in micrometres.
    blur : float, optional
        Standard deviation of the Gaussian detector point-spread function in pixels
        (0 = none).
    beam_falloff : float, optional
        Fraction of open-beam intensity lost at the image corners, in ``[0, 1)``.
    phantom : Phantom, optional
        Object to image; by default ``default_phantom(seed=seed, size_cm=...)`` sized to
        the image, so the seed also changes the object. Pass a phantom to vary only the
        noise.
    oversample : int, optional
        Sub-pixels per pixel and axis at which transmission is evaluated and averaged
        (what a pixel integrates); 1 samples the pixel centre only. The truth is always
        taken at pixel centres.
    seed : int, optional
        Seed of every random step; the same seed gives identical arrays.

    Returns
    -------
    Radiograph
        ``image``, ``truth``, ``open_beam``, ``transmission`` and ``metadata``.

    Examples
    --------
    >>> from niseg.simulate import simulate_radiograph
    >>> rad = simulate_radiograph(size=128, counts=500.0, blur=1.0, seed=0)
    >>> rad.image.dtype, rad.image.shape
    (dtype('float32'), (128, 128))
    >>> rad.metadata["classes"]
    ['aluminium', 'iron', 'copper', 'water', 'cadmium']
    >>> normalized = rad.image / rad.open_beam  # flat-field corrected transmission
    """
    dims = _check_size(size)
    counts = _check_number("counts", counts, low=0.0, high=MAX_COUNTS, what="neutrons per pixel")
    pixel_um = _check_number("pixel_size_um", pixel_size_um, low=0.0, high=math.inf,
                             what="micrometres")
    blur = _check_number("blur", blur, low=0.0, high=math.inf, what="pixels", allow_low=True)
    beam_falloff = _check_falloff(beam_falloff, name="beam_falloff")
    if isinstance(oversample, bool) or not isinstance(oversample, (int, np.integer)):
        raise TypeError(f"oversample must be a positive integer, got {type(oversample).__name__}")
    if not 1 <= oversample <= 16:
        raise ValueError(f"oversample must be an integer from 1 to 16, got {oversample}")
    oversample = int(oversample)
    seed = _check_seed(seed)

    pixel_cm = pixel_um * 1e-4
    if phantom is None:
        phantom = default_phantom(seed=seed, size_cm=(dims[0] * pixel_cm, dims[1] * pixel_cm))
    elif not isinstance(phantom, Phantom):
        raise TypeError(f"phantom must be a niseg.simulate.Phantom or None, "
                        f"got {type(phantom).__name__}")

    mu = {name: get_material(name).mu_neutron for name in phantom.classes}
    pixel = (pixel_cm, pixel_cm)
    if oversample == 1:
        pieces = list(phantom._rasterize(dims, pixel))
        truth = _truth_from(phantom, iter(pieces), dims)
        attenuation = _attenuation(pieces, mu, dims)
        transmission = np.exp(-attenuation)
    else:
        truth = _truth_from(phantom, phantom._rasterize(dims, pixel), dims)
        fine = (dims[0] * oversample, dims[1] * oversample)
        sub = (pixel_cm / oversample, pixel_cm / oversample)
        attenuation = _attenuation(phantom._rasterize(fine, sub), mu, fine)
        transmission = np.exp(-attenuation).reshape(
            dims[0], oversample, dims[1], oversample).mean(axis=(1, 3))
    transmission = transmission.astype(np.float32)

    open_expected = counts * beam_profile(dims, falloff=beam_falloff).astype(np.float64)
    # A child stream keeps the noise independent of the phantom placement drawn from `seed`.
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    image = rng.poisson(open_expected * transmission).astype(np.float32)
    open_beam = rng.poisson(open_expected).astype(np.float32)
    if blur > 0:
        image = ndimage.gaussian_filter(image, sigma=blur, mode="reflect")
        open_beam = ndimage.gaussian_filter(open_beam, sigma=blur, mode="reflect")

    metadata: dict[str, Any] = {
        "axes": "yx",
        "pixel_size": (pixel_um, pixel_um),
        "unit": "um",
        "classes": list(phantom.classes),
        "counts": counts,
        "blur": blur,
        "beam_falloff": beam_falloff,
        "oversample": oversample,
        "seed": seed,
        "radiation": "neutron",
        "mu_per_cm": mu,
        "phantom": phantom.to_dict(),
        "simulator": SIMULATOR,
    }
    return Radiograph(image=image, truth=truth, open_beam=open_beam,
                      transmission=transmission, metadata=metadata)


def _attenuation(pieces: Any, mu: dict[str, float], dims: tuple[int, int]) -> np.ndarray:
    total = np.zeros(dims, dtype=np.float64)
    for item, region, local in pieces:
        total[region] += mu[item.material] * local
    return total


def _check_size(size: Any, *, name: str = "size", minimum: int = MIN_SIZE) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        items = tuple(size)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints (M, N), "
                        f"got {type(size).__name__}") from None
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints (M, N), got {size!r}")
    if min(items) < minimum:
        raise ValueError(f"{name} must be at least {minimum} pixels along each axis, "
                         f"got {tuple(int(v) for v in items)}")
    return (int(items[0]), int(items[1]))


def _check_number(name: str, value: Any, *, low: float, high: float, what: str,
                  allow_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number of {what}, got {type(value).__name__}")
    value = float(value)
    above = value >= low if allow_low else value > low
    if not (math.isfinite(value) and above and value <= high):
        bound = f"at least {low:g}" if allow_low else f"greater than {low:g}"
        upper = f" and at most {high:g}" if math.isfinite(high) else ""
        raise ValueError(f"{name} must be a finite number of {what} {bound}{upper}, got {value!r}")
    return value


def _check_falloff(falloff: Any, name: str = "falloff") -> float:
    if isinstance(falloff, bool) or not isinstance(falloff, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a fraction in [0, 1), got {type(falloff).__name__}")
    if not 0.0 <= falloff < 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1), got {falloff!r}")
    return float(falloff)
