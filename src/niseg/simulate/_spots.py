"""Gamma spots: sharp, bright (and some dark) blobs added to a radiograph, with an exact mask.

Physics. Gamma rays from the source, the sample and the shielding (and fast neutrons) cross
the scintillator and hit the camera sensor directly. Each hit deposits its charge in a few
pixels at once, so a spot is *not* blurred by the scintillator's point-spread function: it
is sharp-edged, 1 to about 10 pixels across, often irregular (the recoil electron's track),
and its amplitude does not depend on the neutron signal underneath. Most hits are small
(here a power law in size, ``P(s) ~ s**-2``); amplitudes span several decades, from barely
above the noise to saturating the pixel. Dead or cold pixels and dark artefacts make a
smaller number of *dark* spots: they lower the reading, at most to zero.

Units. Amplitudes are given in multiples of ``noise_sigma``, the standard deviation of the
spot-free image's noise at its brightest (open-beam) level, in image units. Camera gains
differ, so no single number of detector counts describes a spot on every instrument; what
matters for both its visibility and its harm is its size relative to the noise. The
default weakest change, six standard deviations, is still clearly above the noise at every
pixel (where the signal is lower, Poisson noise is lower too, so the spot stands out more).
A spot weaker than a few standard deviations is indistinguishable from noise: no detector
can find it, and it does not hurt a segmentation more than the noise does, so such spots
would only make recall unmeasurable. Saturation is in image units (the detector's full
scale, e.g. 65535 for a 16-bit camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._phantom import _check_seed
from ._radiograph import _check_number, simulate_radiograph

__all__ = ["SpotsResult", "add_spots", "simulate_spots"]

SIMULATOR = "niseg.simulate.simulate_spots"
SIZE_EXPONENT = 2.0  # P(size) ~ size**-SIZE_EXPONENT: mostly small spots, a few large tracks
TEXTURE_LOW = 0.6  # pixel amplitudes within a spot vary from 0.6 to 1 times its peak
MAX_DENSITY = 0.1
FULL_SCALE_FACTOR = 4.0  # simulate_spots: the open beam fills a quarter of the detector range

_RADIOGRAPH_KEYS = ("pixel_size_um", "beam_falloff", "phantom", "oversample")
_SPOT_KEYS = ("size_range", "amplitude_range", "dark_fraction", "saturation")


@dataclass(frozen=True, eq=False)
class SpotsResult:
    """A simulated spotty radiograph with the spot-free image and the exact spot mask.

    Attributes
    ----------
    raw : (M, N) float32 ndarray
        The radiograph with spots, in detected neutrons per pixel (as the clean image).
    mask : (M, N) uint8 ndarray
        0 = untouched pixel, 1 = bright spot, 2 = dark spot: exactly the pixels that
        differ between ``raw`` and ``clean``.
    clean : (M, N) float32 ndarray
        The same radiograph without spots (the target of a spot cleaner).
    open_beam : (M, N) float32 ndarray
        A spot-free open-beam frame at the same exposure.
    metadata : dict
        JSON-compatible: the radiograph's metadata (``axes``, ``pixel_size``, ``counts``,
        ``blur``, ...) plus ``noise_sigma``, ``amplitude_range``, ``saturation``,
        ``density``, ``size_range``, ``dark_fraction``, ``n_spots``, ``n_bright``,
        ``n_dark``, ``spot_fraction`` and ``simulator``.

    Examples
    --------
    >>> from niseg.simulate import simulate_spots
    >>> sim = simulate_spots(size=64, seed=1)
    >>> sim.raw.shape, sim.mask.dtype
    ((64, 64), dtype('uint8'))
    >>> bool(((sim.raw != sim.clean) == (sim.mask > 0)).all())
    True
    """

    raw: np.ndarray
    mask: np.ndarray
    clean: np.ndarray
    open_beam: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def add_spots(
    image: Any,
    *,
    density: float = 0.003,
    size_range: tuple[int, int] = (1, 10),
    amplitude_range: tuple[float, float] = (6.0, 2000.0),
    noise_sigma: float | None = None,
    dark_fraction: float = 0.1,
    saturation: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Add gamma spots to an image and return it with the exact mask of changed pixels.

    Spots are placed at random until they cover ``density`` of the pixels; they never
    touch each other (one free pixel at least between two spots), so each connected
    region of the mask is one spot. A spot's size ``s`` (its extent in pixels) follows
    ``P(s) ~ s**-2`` on ``size_range``; its shape is a random connected blob grown
    inside an ``s x s`` box; its peak amplitude is log-uniform on ``amplitude_range`` and
    its pixels get 0.6 to 1 times the peak (never less than the range's low end). A dark
    spot lowers pixels, at most to 0; a bright one raises them, at most to
    ``saturation``. A pixel that cannot change by the low end of ``amplitude_range``
    (near zero or near saturation) is left as it is and not marked.

    Parameters
    ----------
    image : (M, N) ndarray
        Spot-free image (any real dtype), e.g. detected counts.
    density : float, optional
        Fraction of pixels covered by spots, in ``[0, 0.1]``.
    size_range : (int, int), optional
        Smallest and largest spot extent in pixels (1 <= low <= high <= 32).
    amplitude_range : (float, float), optional
        Weakest and strongest change of a spot pixel in multiples of ``noise_sigma``
        (see the module notes for why noise units).
    noise_sigma : float, optional
        Standard deviation of the image noise at its brightest level, in image units.
        By default it is estimated from the image: the 90th percentile over 32 x 32
        blocks of the robust (MAD) spread of the image minus its 9 x 9 local mean.
    dark_fraction : float, optional
        Expected fraction of spots that are dark, in ``[0, 1]``.
    saturation : float, optional
        Detector full scale in image units; bright spots are clipped to it. None: no
        clipping.
    seed : int, optional
        Seed of every random step; the same seed gives identical arrays.

    Returns
    -------
    spotty : (M, N) float32 ndarray
        The image with spots.
    mask : (M, N) uint8 ndarray
        0 = unchanged, 1 = bright spot pixel, 2 = dark spot pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.simulate import add_spots
    >>> rng = np.random.default_rng(0)
    >>> image = rng.poisson(1000.0, size=(128, 128)).astype(np.float32)
    >>> spotty, mask = add_spots(image, density=0.01, noise_sigma=31.6, seed=2)
    >>> bool(((spotty != image) == (mask > 0)).all())
    True
    >>> float(np.abs(spotty - image)[mask > 0].min()) >= 6 * 31.6 - 1e-3
    True
    """
    clean = _check_image(image)
    density = _check_fraction("density", density, high=MAX_DENSITY)
    dark_fraction = _check_fraction("dark_fraction", dark_fraction, high=1.0)
    smin, smax = _check_size_range(size_range)
    low, high = _check_amplitude_range(amplitude_range)
    if noise_sigma is None:
        sigma = _estimate_noise_sigma(clean)
    else:
        sigma = _check_number("noise_sigma", noise_sigma, low=0.0, high=math.inf,
                              what="image units")
    if saturation is not None:
        saturation = _check_number("saturation", saturation, low=-math.inf, high=math.inf,
                                   what="image units")
    seed = _check_seed(seed)

    rng = np.random.default_rng(seed)
    shape = clean.shape
    spotty = clean.astype(np.float64, copy=True)
    mask = np.zeros(shape, dtype=np.uint8)
    occupied = np.zeros(shape, dtype=bool)
    sizes = np.arange(smin, smax + 1)
    weights = sizes.astype(float) ** -SIZE_EXPONENT
    weights /= weights.sum()
    target = density * clean.size
    covered = 0
    failures = 0
    min_change = low * sigma
    # Each spot needs a few random numbers; placement retries stop after repeated failures
    # (an image too small or too crowded for more spots).
    while covered < target and failures < 200:
        size = int(rng.choice(sizes, p=weights))
        blob = _blob(rng, size)
        h, w = blob.shape
        if h > shape[0] or w > shape[1]:
            failures += 1
            continue
        y0 = int(rng.integers(0, shape[0] - h + 1))
        x0 = int(rng.integers(0, shape[1] - w + 1))
        guard = occupied[max(y0 - 1, 0):y0 + h + 1, max(x0 - 1, 0):x0 + w + 1]
        peak = low * (high / low) ** rng.random()
        dark = bool(rng.random() < dark_fraction)
        texture = rng.uniform(TEXTURE_LOW, 1.0, size=blob.shape)
        if guard.any():
            failures += 1
            continue
        failures = 0
        region = (slice(y0, y0 + h), slice(x0, x0 + w))
        before = spotty[region]
        change = np.maximum(peak * texture, low) * sigma
        if dark:
            after = np.maximum(before - change, 0.0)
            ok = blob & (before - after >= min_change)
        else:
            after = before + change
            if saturation is not None:
                after = np.minimum(after, saturation)
            ok = blob & (after - before >= min_change)
        before[ok] = after[ok]
        mask[region][ok] = 2 if dark else 1
        occupied[region] |= blob
        covered += int(blob.sum())
    spotty32 = spotty.astype(np.float32)
    # float32 rounding can make a tiny change vanish; the mask follows what was written.
    mask[spotty32 == clean.astype(np.float32)] = 0
    return spotty32, mask


def simulate_spots(
    *,
    size: int | tuple[int, int] = 256,
    counts: float = 1000.0,
    blur: float = 1.0,
    density: float = 0.003,
    seed: int = 0,
    **kw: Any,
) -> SpotsResult:
    """Simulate a neutron radiograph with gamma spots, the spot-free image and the spot mask.

    The spot-free radiograph comes from :func:`simulate_radiograph` (Poisson counting
    noise, then Gaussian detector blur); spots are added by :func:`add_spots` *after* the
    blur, because gamma hits on the sensor bypass the scintillator. The noise unit of the
    amplitudes is the exact standard deviation of the blurred Poisson noise at the open-beam
    centre, ``sqrt(counts * sum(psf**2))``; the detector's full scale (``saturation``)
    defaults to four times ``counts`` (the open beam uses a quarter of the camera's range,
    leaving headroom), so the strongest spots saturate.

    Parameters
    ----------
    size : int or (int, int), optional
        Image size in pixels (at least 8 each).
    counts : float, optional
        Expected open-beam neutrons per pixel at the beam centre.
    blur : float, optional
        Detector point-spread function (Gaussian standard deviation, pixels).
    density : float, optional
        Fraction of pixels covered by spots.
    seed : int, optional
        Seed of the phantom, the counting noise and the spots.
    **kw
        ``size_range``, ``amplitude_range``, ``dark_fraction``, ``saturation`` for
        :func:`add_spots`; ``pixel_size_um``, ``beam_falloff``, ``phantom``,
        ``oversample`` for :func:`simulate_radiograph`.

    Returns
    -------
    SpotsResult
        ``raw``, ``mask``, ``clean``, ``open_beam`` and ``metadata``.

    Examples
    --------
    >>> from niseg.simulate import simulate_spots
    >>> sim = simulate_spots(size=128, counts=100.0, seed=0)
    >>> sim.metadata["n_spots"] > 0, round(sim.metadata["noise_sigma"], 2)
    (True, 2.82)
    >>> bool((sim.mask == 2).any() or (sim.mask == 1).any())
    True
    """
    unknown = sorted(set(kw) - set(_RADIOGRAPH_KEYS) - set(_SPOT_KEYS))
    if unknown:
        raise TypeError(f"simulate_spots got unexpected keyword argument(s) {', '.join(unknown)}; "
                        f"expected some of {', '.join(_RADIOGRAPH_KEYS + _SPOT_KEYS)}")
    counts = _check_number("counts", counts, low=0.0, high=1e12, what="neutrons per pixel")
    blur = _check_number("blur", blur, low=0.0, high=math.inf, what="pixels", allow_low=True)
    seed = _check_seed(seed)
    rad = simulate_radiograph(size=size, counts=counts, blur=blur, seed=seed,
                              **{k: kw[k] for k in _RADIOGRAPH_KEYS if k in kw})
    sigma = math.sqrt(counts * _psf_power(blur))
    saturation = kw.get("saturation", FULL_SCALE_FACTOR * counts)
    spot_kw = {k: kw[k] for k in ("size_range", "amplitude_range", "dark_fraction") if k in kw}
    # A child stream of the seed keeps spots independent of the radiograph's noise.
    spot_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    raw, mask = add_spots(rad.image, density=density, noise_sigma=sigma, saturation=saturation,
                          seed=spot_seed, **spot_kw)
    _, n_bright = ndimage.label(mask == 1, structure=np.ones((3, 3)))
    _, n_dark = ndimage.label(mask == 2, structure=np.ones((3, 3)))
    used = {
        "size_range": [int(v) for v in kw.get("size_range", (1, 10))],
        "amplitude_range": [float(v) for v in kw.get("amplitude_range", (6.0, 2000.0))],
        "dark_fraction": float(kw.get("dark_fraction", 0.1)),
    }
    metadata = {
        **rad.metadata,
        "noise_sigma": sigma,
        "saturation": None if saturation is None else float(saturation),
        "density": float(density),
        **used,
        "n_spots": int(n_bright + n_dark),
        "n_bright": int(n_bright),
        "n_dark": int(n_dark),
        "spot_fraction": float((mask > 0).mean()),
        "spot_seed": spot_seed,
        "simulator": SIMULATOR,
    }
    return SpotsResult(raw=raw, mask=mask, clean=rad.image, open_beam=rad.open_beam,
                       metadata=metadata)


# --------------------------------------------------------------------------------- helpers


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random 4-connected blob grown pixel by pixel inside a size x size box."""
    if size == 1:
        return np.ones((1, 1), dtype=bool)
    fill = rng.uniform(0.35, 0.75)
    area = max(2, round(fill * size * size))
    box = np.zeros((size, size), dtype=bool)
    start = (int(rng.integers(size // 4, size - size // 4)),
             int(rng.integers(size // 4, size - size // 4)))
    box[start] = True
    frontier: list[tuple[int, int]] = []
    seen = {start}

    def push(y: int, x: int) -> None:
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            p = (y + dy, x + dx)
            if 0 <= p[0] < size and 0 <= p[1] < size and p not in seen:
                seen.add(p)
                frontier.append(p)

    push(*start)
    grown = 1
    while grown < area and frontier:
        # Swap-remove a random frontier pixel: Eden growth, irregular but compact.
        i = int(rng.integers(len(frontier)))
        frontier[i], frontier[-1] = frontier[-1], frontier[i]
        p = frontier.pop()
        box[p] = True
        grown += 1
        push(*p)
    rows = np.flatnonzero(box.any(axis=1))
    cols = np.flatnonzero(box.any(axis=0))
    return box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _psf_power(blur: float) -> float:
    """Sum of squared weights of the Gaussian PSF as scipy applies it (noise variance factor)."""
    if blur == 0:
        return 1.0
    radius = int(4.0 * blur + 0.5)
    delta = np.zeros((2 * radius + 1, 2 * radius + 1))
    delta[radius, radius] = 1.0
    psf = ndimage.gaussian_filter(delta, sigma=blur, mode="constant")
    return float((psf ** 2).sum())


def _estimate_noise_sigma(image: np.ndarray) -> float:
    data = image.astype(np.float64)
    residual = data - ndimage.uniform_filter(data, size=9, mode="reflect")
    block = max(8, min(32, min(data.shape) // 4))
    m, n = (data.shape[0] // block) * block, (data.shape[1] // block) * block
    if m == 0 or n == 0:
        raise ValueError(f"image of shape {data.shape} is too small to estimate its noise; "
                         f"pass noise_sigma")
    tiles = residual[:m, :n].reshape(m // block, block, n // block, block).swapaxes(1, 2)
    tiles = tiles.reshape(-1, block * block)
    centred = tiles - np.median(tiles, axis=1, keepdims=True)
    spread = 1.4826 * np.median(np.abs(centred), axis=1) * math.sqrt(81.0 / 80.0)
    sigma = float(np.percentile(spread, 90))
    if not sigma > 0:
        raise ValueError("image has no measurable noise to scale spot amplitudes to; "
                         "pass noise_sigma in image units")
    return sigma


def _check_image(image: Any) -> np.ndarray:
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError):
        raise TypeError(f"image must be a 2D numeric array, got {type(image).__name__}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"image must be a 2D array of real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"image must be 2D (M, N), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("image is empty")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("image has NaN or infinite values; spots are added to finite images only")
    return arr


def _check_fraction(name: str, value: Any, *, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number from 0 to {high:g}, got {type(value).__name__}")
    if not 0.0 <= float(value) <= high:
        raise ValueError(f"{name} must be a number from 0 to {high:g}, got {value!r}")
    return float(value)


def _check_size_range(size_range: Any) -> tuple[int, int]:
    try:
        items = tuple(size_range)
    except TypeError:
        raise TypeError(f"size_range must be a pair of integers (low, high), "
                        f"got {size_range!r}") from None
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"size_range must be a pair of integers (low, high), got {size_range!r}")
    low, high = int(items[0]), int(items[1])
    if not 1 <= low <= high <= 32:
        raise ValueError(f"size_range must satisfy 1 <= low <= high <= 32 pixels, "
                         f"got {(low, high)}")
    return low, high


def _check_amplitude_range(amplitude_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in amplitude_range)
    except (TypeError, ValueError):
        raise TypeError(f"amplitude_range must be a pair of numbers (low, high) in noise "
                        f"standard deviations, got {amplitude_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ValueError(f"amplitude_range must satisfy 0 < low <= high (noise standard "
                         f"deviations), got {(low, high)}")
    return low, high
