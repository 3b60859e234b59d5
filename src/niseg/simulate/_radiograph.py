"""Radiographs: beam, Beer–Lambert attenuation, counting noise, blur, dark current, spots.

Forward model, per pixel ``(y, x)`` of a frame with exposure ``t`` seconds:

1. beam ``I0 = counts * t * profile(y, x)`` (neutrons or photons per pixel), times a
   smooth drift ``g(y, x)`` for the sample frame only (the beam changed between the
   open-beam and the sample acquisitions);
2. transmission ``T = exp(-sum_i mu_i d_i)`` (Beer–Lambert, ``mu`` in 1/cm, ``d`` in cm),
   with thermal-neutron or monochromatic X-ray coefficients;
3. expected counts ``E = I0 * g * T``; detected counts ``N ~ Poisson(E)``;
4. optional detector blur: ``N`` convolved with a Gaussian point-spread function;
5. optional dark signal, added after the blur because it arises in the camera, not in the
   scintillator: ``Poisson(D(y, x)) + Normal(0, read_noise)`` with a fixed-pattern dark
   level ``D`` shared by every frame;
6. optional gamma spots on the sample frame (:func:`niseg.simulate.add_spots`), last and
   unblurred because gamma rays hit the camera sensor directly.

The blur comes after counting because each detected neutron produces a light flash in the
scintillator that spreads over neighbouring pixels: the noise of the image is therefore
spatially correlated and its variance is smaller than its mean (by the sum of squared PSF
weights, ``~1 / (4 pi sigma^2)`` for ``sigma`` of a pixel or more).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._materials import attenuation_coefficient
from ._phantom import Phantom, _check_seed, _mu_table, _truth_from, default_phantom
from ._volume_phantom import VolumePhantom

__all__ = ["Radiograph", "beam_profile", "drift_profile", "simulate_radiograph"]

SIMULATOR = "niseg.simulate.simulate_radiograph"
MIN_SIZE = 8
MAX_COUNTS = 1e12  # far beyond any real exposure; keeps Poisson sampling well defined
MAX_FRAMES = 1000

# Independent random streams, children of SeedSequence(seed); child 0 (sample and open
# beam) is the stream of the first version, so default arguments give the same arrays.
_STREAM_COUNTS, _STREAM_DARK_PATTERN, _STREAM_DARK_NOISE, _STREAM_SPOTS = range(4)


@dataclass(frozen=True, eq=False)
class Radiograph:
    """A simulated radiograph with its exact ground truth.

    Attributes
    ----------
    image : (M, N) float32 ndarray
        Detected counts per pixel of the sample frame (Poisson, then blur, dark signal and
        spots when asked for).
    truth : (M, N) uint8 ndarray
        Class labels: 0 = open beam, ``k`` = ``metadata["classes"][k - 1]``.
    open_beam : (M, N) or (F, M, N) float32 ndarray
        Open-beam (flat-field) frame(s) with their own Poisson noise, the same blur and
        dark signal, no drift and no spots: one ``(M, N)`` frame by default, a stack of
        ``F = n_open_beam`` independent frames when ``n_open_beam`` is given.
    transmission : (M, N) float32 ndarray
        Noiseless transmission ``exp(-sum mu d)`` in [0, 1].
    metadata : dict
        JSON-compatible: ``axes`` ("yx"), ``pixel_size`` ``(py, px)``, ``unit`` ("um"),
        ``classes``, ``counts``, ``exposure_time``, ``open_beam_exposure_time``, ``blur``,
        ``beam_falloff``, ``oversample``, ``seed``, ``radiation``, ``energy_kev``,
        ``mu_per_cm`` (per class), ``dark_current``, ``read_noise``, ``dark_pattern``,
        ``drift``, ``n_open_beam``, ``n_dark``, ``spots``, ``phantom`` (the phantom's
        ``to_dict()``) and ``simulator``.
    dark : (M, N) or (F, M, N) float32 ndarray or None
        Dark-current frame(s) (beam off, same camera): ``None`` when the simulation has no
        dark signal and ``n_dark`` is not given; zeros when ``n_dark`` is given without a
        dark signal.
    spot_mask : (M, N) uint8 ndarray or None
        1 where gamma spots changed the sample frame; ``None`` without ``spots``.
    spot_free : (M, N) float32 ndarray or None
        The sample frame just before the spots were added; ``None`` without ``spots``.

    Examples
    --------
    >>> from niseg.simulate import simulate_radiograph
    >>> rad = simulate_radiograph(size=32, seed=3)
    >>> rad.image.shape, rad.truth.dtype, rad.metadata["axes"], rad.dark
    ((32, 32), dtype('uint8'), 'yx', None)
    """

    image: np.ndarray
    truth: np.ndarray
    open_beam: np.ndarray
    transmission: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    dark: np.ndarray | None = None
    spot_mask: np.ndarray | None = None
    spot_free: np.ndarray | None = None


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




def drift_profile(shape: tuple[int, int], *, scale: float = 1.0,
                  gradient: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Relative beam intensity of a drifted frame: a global factor times a linear ramp.

    ``g(i, j) = scale * (1 + gy * (i + 0.5 - M / 2) / M + gx * (j + 0.5 - N / 2) / N)``: the
    mean over the image is ``scale`` and the intensity changes by the fraction ``gy`` from
    the top edge to the bottom edge (``gx`` from left to right).

    Parameters
    ----------
    shape : (int, int)
        Image size ``(M, N)`` in pixels.
    scale : float, optional
        Global intensity factor (``> 0``), e.g. 0.97 for a dose 3 % lower.
    gradient : (float, float), optional
        ``(gy, gx)``, each in ``(-1, 1)``.

    Returns
    -------
    (M, N) float32 ndarray
        The factor ``g`` applied to the sample frame's beam.

    Examples
    --------
    >>> from niseg.simulate import drift_profile
    >>> g = drift_profile((4, 4), scale=0.9, gradient=(0.4, 0.0))
    >>> round(float(g.mean()), 6), [round(float(v), 3) for v in g[:, 0]]
    (0.9, [0.765, 0.855, 0.945, 1.035])
    """
    dims = _check_size(shape, name="shape", minimum=1)
    scale, gy, gx = _check_drift_values(scale, gradient)
    m, n = dims
    ys = (np.arange(m) + 0.5 - m / 2.0) / m
    xs = (np.arange(n) + 0.5 - n / 2.0) / n
    return (scale * (1.0 + gy * ys[:, None] + gx * xs[None, :])).astype(np.float32)


def simulate_radiograph(
    *,
    size: int | tuple[int, int] = 256,
    counts: float = 1000.0,
    pixel_size_um: float = 100.0,
    blur: float = 0.0,
    beam_falloff: float = 0.15,
    phantom: Phantom | VolumePhantom | None = None,
    oversample: int = 1,
    seed: int = 0,
    radiation: str = "neutron",
    energy_kev: float | None = None,
    exposure: float = 1.0,
    open_beam_exposure: float | None = None,
    dark_current: float = 0.0,
    read_noise: float = 0.0,
    dark_pattern: float = 0.1,
    drift: float | Mapping[str, Any] | None = None,
    n_open_beam: int | None = None,
    n_dark: int | None = None,
    spots: Mapping[str, Any] | None = None,
) -> Radiograph:
    """Simulate a neutron or X-ray radiograph of a phantom, with exact ground truth.

    The detector grid (``size`` pixels of ``pixel_size_um``) is centred on the phantom's
    field of view. Transmission follows Beer–Lambert with the attenuation coefficients of
    :data:`niseg.simulate.MATERIALS` (thermal neutrons, or monochromatic X-rays of
    ``energy_kev``); counts are Poisson samples of
    ``counts * exposure * beam_profile * drift * transmission``; the optional Gaussian blur
    (scintillator and optics) is applied after counting, so the noise becomes spatially
    correlated; dark signal and gamma spots come from the camera and are added after the
    blur. With the default arguments the arrays are those of the first version of the
    simulator (pure counting noise and blur).

    Parameters
    ----------
    size : int or (int, int), optional
        Image size ``(M, N)`` in pixels (at least 8 each); an int gives a square image.
    counts : float, optional
        Expected open-beam counts per pixel at the beam centre per second of exposure (with
        the default ``exposure`` of 1 s: per frame).
    pixel_size_um : float, optional
        Pixel size in micrometres.
    blur : float, optional
        Standard deviation of the Gaussian detector point-spread function in pixels
        (0 = none).
    beam_falloff : float, optional
        Fraction of open-beam intensity lost at the image corners, in ``[0, 1)``.
    phantom : Phantom or VolumePhantom, optional
        Object to image; by default ``default_phantom(seed=seed, size_cm=...)`` sized to
        the image, so the seed also changes the object. Pass a phantom to vary only the
        noise; a :class:`VolumePhantom` (e.g. :func:`porous_phantom`) is projected along
        its first axis.
    oversample : int, optional
        Sub-pixels per pixel and axis at which transmission is evaluated and averaged
        (what a pixel integrates); 1 samples the pixel centre only. The truth is always
        taken at pixel centres.
    seed : int, optional
        Seed of every random step; the same seed gives identical arrays.
    radiation : {"neutron", "xray"}, optional
        Thermal neutrons, or X-rays in the monochromatic approximation (one photon energy,
        no beam hardening); X-ray counts are detected photons, Poisson as for neutrons.
    energy_kev : float, optional
        Photon energy in keV (10 to 200); required for X-rays.
    exposure : float, optional
        Exposure time of the sample frame and the dark frames in seconds (``> 0``).
    open_beam_exposure : float, optional
        Exposure time of the open-beam frames in seconds; default ``exposure``.
    dark_current : float, optional
        Mean dark signal in counts per pixel per frame (0 = none). Each pixel has its own
        level ``D = dark_current * (1 + dark_pattern * z)``, ``z`` a fixed standard normal
        pattern shared by all frames of the camera; each frame adds ``Poisson(D)``.
    read_noise : float, optional
        Standard deviation of the Gaussian read-out noise in counts per frame (0 = none).
        Frames with read noise are clipped at 0 as an analogue-to-digital converter does;
        keep ``dark_current`` well above ``read_noise`` to avoid the clipping bias.
    dark_pattern : float, optional
        Relative standard deviation of the fixed-pattern dark level, in ``[0, 1)``.
    drift : float or dict, optional
        Change of the beam in the sample frame relative to the open beam:
        ``{"scale": s, "gradient": (gy, gx)}`` (see :func:`drift_profile`); a number is
        the scale alone. Recorded in ``metadata["drift"]``; default none.
    n_open_beam : int, optional
        Return a stack of this many independent open-beam frames (the first equals the
        single frame of the default); default one ``(M, N)`` frame.
    n_dark : int, optional
        Return a stack of this many independent dark frames; default one ``(M, N)`` frame
        when there is a dark signal, else ``None``.
    spots : dict, optional
        Add gamma spots to the sample frame with
        ``add_spots(image, seed=<derived from seed>, **spots)`` (keys as the keyword
        arguments of :func:`niseg.simulate.add_spots`, e.g. ``{"density": 0.002}``; ``{}``
        uses its defaults); fills ``spot_mask`` and ``spot_free``.

    Returns
    -------
    Radiograph
        ``image``, ``truth``, ``open_beam``, ``transmission``, ``metadata``, ``dark``,
        ``spot_mask`` and ``spot_free``.

    Examples
    --------
    >>> from niseg.simulate import simulate_radiograph
    >>> rad = simulate_radiograph(size=128, counts=500.0, blur=1.0, seed=0)
    >>> rad.image.dtype, rad.image.shape
    (dtype('float32'), (128, 128))
    >>> rad.metadata["classes"]
    ['aluminium', 'iron', 'copper', 'water', 'cadmium']
    >>> normalized = rad.image / rad.open_beam  # flat-field corrected transmission

    An X-ray exposure with a dark current, read noise and three open-beam frames:

    >>> xray = simulate_radiograph(size=64, radiation="xray", energy_kev=80.0, exposure=2.0,
    ...                            dark_current=100.0, read_noise=3.0, n_open_beam=3, seed=1)
    >>> xray.open_beam.shape, xray.dark.shape, xray.metadata["exposure_time"]
    ((3, 64, 64), (64, 64), 2.0)
    """
    dims = _check_size(size)
    counts = _check_number("counts", counts, low=0.0, high=MAX_COUNTS,
                           what="neutrons or photons per pixel per second")
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
    exposure = _check_number("exposure", exposure, low=0.0, high=math.inf, what="seconds")
    if open_beam_exposure is None:
        open_beam_exposure = exposure
    open_beam_exposure = _check_number("open_beam_exposure", open_beam_exposure, low=0.0,
                                       high=math.inf, what="seconds")
    for name, t in (("exposure", exposure), ("open_beam_exposure", open_beam_exposure)):
        if counts * t > MAX_COUNTS:
            raise ValueError(f"counts * {name} must be at most {MAX_COUNTS:g} counts per pixel, "
                             f"got {counts * t:g}")
    dark_current = _check_number("dark_current", dark_current, low=0.0, high=MAX_COUNTS,
                                 what="counts per pixel per frame", allow_low=True)
    read_noise = _check_number("read_noise", read_noise, low=0.0, high=MAX_COUNTS,
                               what="counts per frame", allow_low=True)
    if isinstance(dark_pattern, bool) or not isinstance(dark_pattern, (int, float, np.integer,
                                                                       np.floating)):
        raise TypeError(f"dark_pattern must be a fraction in [0, 1), "
                        f"got {type(dark_pattern).__name__}")
    if not 0.0 <= dark_pattern < 1.0:
        raise ValueError(f"dark_pattern must be a fraction in [0, 1), got {dark_pattern!r}")
    dark_pattern = float(dark_pattern)
    drift_spec = _check_drift(drift)
    n_open = _check_frames("n_open_beam", n_open_beam)
    n_dark_frames = _check_frames("n_dark", n_dark)
    spots_spec = _check_spots(spots)
    if radiation not in ("neutron", "xray"):
        raise ValueError(f"radiation must be 'neutron' or 'xray', got {radiation!r}")
    # Checked here as well as per material, so that a phantom without materials is no
    # way around a missing or stray photon energy.
    attenuation_coefficient("air", radiation=radiation, energy_kev=energy_kev)

    pixel_cm = pixel_um * 1e-4
    if phantom is None:
        phantom = default_phantom(seed=seed, size_cm=(dims[0] * pixel_cm, dims[1] * pixel_cm))
    elif not isinstance(phantom, (Phantom, VolumePhantom)):
        raise TypeError(f"phantom must be a niseg.simulate.Phantom, VolumePhantom or None, "
                        f"got {type(phantom).__name__}")
    mu = _mu_table(phantom.classes, radiation, energy_kev)

    pixel = (pixel_cm, pixel_cm)
    if oversample == 1:
        pieces = list(phantom._rasterize(dims, pixel))
        truth = _truth_from(phantom, iter(pieces), dims, mu=mu)
        attenuation = _attenuation(pieces, mu, dims)
        transmission = np.exp(-attenuation)
    else:
        truth = _truth_from(phantom, phantom._rasterize(dims, pixel), dims, mu=mu)
        fine = (dims[0] * oversample, dims[1] * oversample)
        sub = (pixel_cm / oversample, pixel_cm / oversample)
        attenuation = _attenuation(phantom._rasterize(fine, sub), mu, fine)
        transmission = np.exp(-attenuation).reshape(
            dims[0], oversample, dims[1], oversample).mean(axis=(1, 3))
    transmission = transmission.astype(np.float32)

    profile = beam_profile(dims, falloff=beam_falloff).astype(np.float64)
    sample_beam = counts * exposure * profile
    open_expected = counts * open_beam_exposure * profile
    if drift_spec is not None:
        sample_beam = sample_beam * drift_profile(dims, scale=drift_spec["scale"],
                                                  gradient=drift_spec["gradient"])
    streams = np.random.SeedSequence(seed).spawn(4)
    # Child 0 keeps the noise independent of the phantom placement drawn from `seed`.
    rng = np.random.default_rng(streams[_STREAM_COUNTS])
    image = rng.poisson(sample_beam * transmission).astype(np.float32)
    open_frames = [rng.poisson(open_expected).astype(np.float32)
                   for _ in range(1 if n_open is None else n_open)]
    if blur > 0:
        image = ndimage.gaussian_filter(image, sigma=blur, mode="reflect")
        open_frames = [ndimage.gaussian_filter(f, sigma=blur, mode="reflect")
                       for f in open_frames]

    has_dark = dark_current > 0 or read_noise > 0
    dark_frames: list[np.ndarray] | None = None
    if has_dark:
        level = _dark_level(dims, dark_current, dark_pattern, streams[_STREAM_DARK_PATTERN])
        dark_rng = np.random.default_rng(streams[_STREAM_DARK_NOISE])

        def camera(frame: np.ndarray) -> np.ndarray:
            out = frame.astype(np.float64) + dark_rng.poisson(level)
            if read_noise > 0:
                out += dark_rng.normal(0.0, read_noise, size=dims)
                np.maximum(out, 0.0, out=out)
            return out.astype(np.float32)

        image = camera(image)
        open_frames = [camera(f) for f in open_frames]
        dark_frames = [camera(np.zeros(dims)) for _ in range(n_dark_frames or 1)]
    elif n_dark_frames is not None:
        dark_frames = [np.zeros(dims, dtype=np.float32) for _ in range(n_dark_frames)]

    spot_mask = spot_free = None
    if spots_spec is not None:
        from ._spots import add_spots  # written alongside; imported when spots are asked for

        spot_seed = int(streams[_STREAM_SPOTS].generate_state(1)[0])
        spot_free = image
        image, spot_mask = add_spots(image, **{"seed": spot_seed, **spots_spec})
        image = np.asarray(image, dtype=np.float32)
        spot_mask = np.asarray(spot_mask, dtype=np.uint8)

    open_beam = open_frames[0] if n_open is None else np.stack(open_frames)
    dark = None
    if dark_frames is not None:
        dark = dark_frames[0] if n_dark_frames is None else np.stack(dark_frames)

    metadata: dict[str, Any] = {
        "axes": "yx",
        "pixel_size": (pixel_um, pixel_um),
        "unit": "um",
        "classes": list(phantom.classes),
        "counts": counts,
        "exposure_time": exposure,
        "open_beam_exposure_time": open_beam_exposure,
        "blur": blur,
        "beam_falloff": beam_falloff,
        "oversample": oversample,
        "seed": seed,
        "radiation": radiation,
        "energy_kev": None if energy_kev is None else float(energy_kev),
        "mu_per_cm": mu,
        "dark_current": dark_current,
        "read_noise": read_noise,
        "dark_pattern": dark_pattern,
        "drift": drift_spec,
        "n_open_beam": n_open,
        "n_dark": n_dark_frames,
        "spots": _jsonable(spots_spec),
        "phantom": phantom.to_dict(),
        "simulator": SIMULATOR,
    }
    return Radiograph(image=image, truth=truth, open_beam=open_beam,
                      transmission=transmission, metadata=metadata, dark=dark,
                      spot_mask=spot_mask, spot_free=spot_free)


def _dark_level(dims: tuple[int, int], dark_current: float, dark_pattern: float,
                stream: np.random.SeedSequence) -> np.ndarray:
    """Per-pixel mean dark signal: the camera's fixed pattern, the same in every frame."""
    pattern = np.random.default_rng(stream).standard_normal(dims)
    return np.maximum(dark_current * (1.0 + dark_pattern * pattern), 0.0)


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


def _check_drift_values(scale: Any, gradient: Any) -> tuple[float, float, float]:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"drift scale must be a positive number, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"drift scale must be a positive finite number, got {scale!r}")
    scale = float(scale)
    try:
        gy, gx = gradient
    except (TypeError, ValueError):
        raise ValueError(f"drift gradient must be a pair (gy, gx) of fractions in (-1, 1), "
                         f"got {gradient!r}") from None
    values = []
    for v in (gy, gx):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
                not -1.0 < float(v) < 1.0:
            raise ValueError(f"drift gradient must be a pair (gy, gx) of fractions in (-1, 1), "
                             f"got {gradient!r}")
        values.append(float(v))
    return scale, values[0], values[1]


def _check_drift(drift: Any) -> dict[str, Any] | None:
    if drift is None:
        return None
    if isinstance(drift, Mapping):
        unknown = set(drift) - {"scale", "gradient"}
        if unknown:
            raise ValueError(f"drift accepts the keys 'scale' and 'gradient', got "
                             f"{', '.join(sorted(map(repr, unknown)))}")
        scale, gradient = drift.get("scale", 1.0), drift.get("gradient", (0.0, 0.0))
    elif isinstance(drift, (int, float, np.integer, np.floating)) and not isinstance(drift, bool):
        scale, gradient = drift, (0.0, 0.0)
    else:
        raise TypeError(f"drift must be a number (scale), a dict with 'scale' and 'gradient', "
                        f"or None, got {type(drift).__name__}")
    scale, gy, gx = _check_drift_values(scale, gradient)
    return {"scale": scale, "gradient": [gy, gx]}


def _check_frames(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer number of frames or None, "
                        f"got {type(value).__name__}")
    if not 1 <= value <= MAX_FRAMES:
        raise ValueError(f"{name} must be a number of frames from 1 to {MAX_FRAMES}, got {value}")
    return int(value)


def _check_spots(spots: Any) -> dict[str, Any] | None:
    if spots is None:
        return None
    if not isinstance(spots, Mapping) or not all(isinstance(k, str) for k in spots):
        raise TypeError("spots must be a dict of add_spots keyword arguments or None, "
                        f"got {type(spots).__name__}")
    return dict(spots)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
