"""Neutron tomography: 3D phantoms, parallel-beam projections, reconstructions and artefacts.

Geometry (see docs/simulate.md): a volume of ``(P, M, M)`` cubic voxels, axes ``zyx``;
the rotation axis is parallel to ``z`` through pixel ``(M // 2, M // 2)`` of every slice,
which is where :func:`skimage.transform.radon` and :func:`~skimage.transform.iradon` put
it. Projection ``t`` at angle ``t * 180 / n_angles`` degrees is a ``(P, M)`` detector
image (axes ``tyx``: detector rows are the slices, columns the radial coordinate).
Attenuation coefficients are the thermal-neutron values of the materials table (1/cm);
voxel sizes are in µm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ._materials import get_material
from ._phantom import _check_seed
from ._radiograph import MAX_COUNTS, _check_number
from ._reconstruction import (
    angles_deg,
    blur_frames,
    fbp_noise,
    fbp_noise_std,
    mean_inverse_transmission,
    project_slices,
    reconstruct_slices,
    ring_volume,
)

__all__ = ["Tomography", "simulate_tomography"]

SIMULATOR = "niseg.simulate.simulate_tomography"
PHANTOMS = ("spheres", "cylinders", "porous")
MODES = ("volume", "projections")
MIN_SIZE = 8
# Each detector pixel's gain error is rings * (a column part shared by all rows + a part of
# its own): scintillator and camera defects are often larger than a pixel, so rings
# persist over neighbouring slices without being identical.
COLUMN_SHARE = 0.8
MIN_COUNT = 0.5  # a zero count would make -log infinite; 0.5 is the usual stand-in


@dataclass(frozen=True, eq=False)
class Tomography:
    """A simulated tomography experiment with its exact ground truth.

    Attributes
    ----------
    truth : (P, M, M) uint8 ndarray
        Class labels per voxel, axes ``zyx``: 0 = air, ``k`` = ``metadata["classes"][k - 1]``.
    mu : (P, M, M) float32 ndarray
        The object: attenuation coefficient of each voxel's material in 1/cm.
    volume : (P, M, M) float32 ndarray or None
        Grey values in 1/cm: the reconstruction-like volume (``mode="volume"``) or the
        filtered back-projection (``mode="projections"``, ``reconstruct=True``); else None.
    projections : (T, P, M) float32 ndarray or None
        Detected neutrons per detector pixel, axes ``tyx`` (``mode="projections"``).
    open_beam : (P, M) float32 ndarray or None
        Mean of the open-beam frames, same exposure per frame as a projection.
    line_integrals : (T, P, M) float32 ndarray or None
        Noiseless ``sum mu d`` along each ray (dimensionless).
    angles : (T,) float64 ndarray or None
        Projection angles in degrees.
    metadata : dict
        JSON-compatible description; see :func:`simulate_tomography`.

    Examples
    --------
    >>> from niseg.simulate import simulate_tomography
    >>> tomo = simulate_tomography(shape=(8, 32, 32), seed=1)
    >>> tomo.volume.shape, tomo.truth.dtype, tomo.metadata["axes"]
    ((8, 32, 32), dtype('uint8'), 'zyx')
    """

    truth: np.ndarray
    mu: np.ndarray
    volume: np.ndarray | None = None
    projections: np.ndarray | None = None
    open_beam: np.ndarray | None = None
    line_integrals: np.ndarray | None = None
    angles: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def simulate_tomography(
    *,
    shape: tuple[int, int, int] = (64, 128, 128),
    phantom: str | tuple[np.ndarray, Sequence[str]] = "spheres",
    mode: str = "volume",
    n_angles: int = 180,
    counts: float = 5000.0,
    noise: bool = True,
    rings: float = 0.005,
    blur: float = 0.5,
    flat_frames: int = 10,
    pixel_size_um: float = 100.0,
    reconstruct: bool = False,
    seed: int = 0,
) -> Tomography:
    """Simulate a neutron tomogram of a 3D phantom, or its projections, with exact truth.

    ``mode="volume"`` returns, fast, what a filtered back-projection (FBP) of a scan would
    look like: the object's attenuation coefficients, blurred by the detector, plus noise
    with the variance and spatial correlation FBP gives for ``counts``, ``n_angles`` and
    the blur, plus the (half) rings that detector gain errors and open-beam noise make.
    ``mode="projections"`` simulates the scan itself: parallel-beam line integrals of each
    slice (:func:`skimage.transform.radon`), Beer–Lambert, Poisson counting, detector blur
    and per-pixel gain errors (stripes in the sinogram); ``reconstruct=True`` adds the FBP
    (:func:`skimage.transform.iradon`, ramp filter), about 0.15 s per 128 x 128 slice at
    180 angles.

    Parameters
    ----------
    shape : (int, int, int), optional
        Volume size ``(P, M, M)`` in voxels: ``P`` slices (1 or more) of ``M x M`` voxels
        (``M`` at least 8; the porous phantom needs ``P`` of at least 4).
    phantom : {"spheres", "cylinders", "porous"} or (labels, classes), optional
        An aluminium tube around the rotation axis holding: spheres of iron, copper, lead
        and water (two each); rods along the axis of iron, copper, titanium and water; or
        a porous medium (grains, water, air; needs ``niseg.simulate``'s porous-media
        generator). Or your own ``(labels, classes)``: a ``(P, M, M)`` integer array,
        0 = air, ``k`` = material name ``classes[k - 1]``, zero outside the inscribed
        circle of each slice.
    mode : {"volume", "projections"}, optional
        What to simulate (see above).
    n_angles : int, optional
        Number of projections over 180 degrees (at ``k * 180 / n_angles``); in volume mode
        it sets the noise level and ring pattern of the surrogate.
    counts : float, optional
        Expected open-beam neutrons per detector pixel and projection.
    noise : bool, optional
        Draw the counting noise (projections and open beam); False gives expected counts
        and, in volume mode, no noise and no open-beam rings.
    rings : float, optional
        Standard deviation of the relative gain error of detector pixels between the open
        beam and the projections (0.005 = 0.5 %), in ``[0, 0.5)``.
    blur : float, optional
        Detector blur sigma in pixels (also the partial-volume blur of the volume mode).
    flat_frames : int, optional
        Number of open-beam frames averaged into ``open_beam``.
    pixel_size_um : float, optional
        Voxel (and detector pixel) size in micrometres.
    reconstruct : bool, optional
        In projection mode, also return the FBP reconstruction as ``volume``.
    seed : int, optional
        Seed of every random step; the same arguments give identical arrays.

    Returns
    -------
    Tomography
        Arrays and ``metadata``: ``axes`` ("zyx"), ``projection_axes`` ("tyx"),
        ``pixel_size`` (µm, per axis), ``unit`` ("um"), ``value_unit`` ("1/cm"),
        ``classes``, ``mu_per_cm``, ``mode``, ``phantom``, ``shapes`` (geometry in cm),
        ``rotation_axis_yx`` (pixel), ``n_angles``, ``counts``, ``noise``,
        ``noise_std_per_cm`` (volume mode), ``rings``, ``blur``, ``flat_frames``,
        ``reconstruct``, ``seed``, ``radiation`` and ``simulator``.

    Examples
    --------
    >>> from niseg.simulate import simulate_tomography
    >>> tomo = simulate_tomography(shape=(16, 64, 64), seed=0)
    >>> tomo.metadata["classes"]
    ['aluminium', 'iron', 'copper', 'lead', 'water']
    >>> scan = simulate_tomography(shape=(4, 32, 32), mode="projections", n_angles=45,
    ...                            reconstruct=True, seed=0)
    >>> scan.projections.shape, scan.volume.shape
    ((45, 4, 32), (4, 32, 32))
    """
    dims = _check_shape(shape)
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    n_angles = _check_int("n_angles", n_angles, low=2, high=100_000)
    counts = _check_number("counts", counts, low=0.0, high=MAX_COUNTS, what="neutrons per pixel")
    noise = _check_bool("noise", noise)
    rings = _check_number("rings", rings, low=0.0, high=0.5, what="relative gain error",
                          allow_low=True)
    if rings >= 0.5:
        raise ValueError(f"rings must be a relative gain error in [0, 0.5), got {rings!r}")
    blur = _check_number("blur", blur, low=0.0, high=20.0, what="pixels", allow_low=True)
    flat_frames = _check_int("flat_frames", flat_frames, low=1, high=100_000)
    pixel_um = _check_number("pixel_size_um", pixel_size_um, low=0.0, high=math.inf,
                             what="micrometres")
    reconstruct = _check_bool("reconstruct", reconstruct)
    if reconstruct and mode != "projections":
        raise ValueError("reconstruct=True needs mode='projections'; mode='volume' already "
                         "returns a reconstruction-like volume")
    seed = _check_seed(seed)

    streams = np.random.SeedSequence(seed).spawn(4)
    phantom_rng, gain_rng, noise_rng, flat_rng = (np.random.default_rng(s) for s in streams)
    labels, classes, name, description = _make_phantom(phantom, dims, pixel_um * 1e-4,
                                                       phantom_rng)
    mu_per_cm = {c: get_material(c).mu_neutron for c in classes}
    lookup = np.array([0.0] + [mu_per_cm[c] for c in classes])
    mu = lookup[labels]
    pixel_cm = pixel_um * 1e-4
    nz, n, _ = dims

    # Gains are drawn whatever `rings` is, so changing `rings` rescales the same pattern.
    parts = gain_rng.standard_normal((2, nz, n))
    share = math.sqrt(1.0 - COLUMN_SHARE**2)
    gain = np.maximum(1.0 + rings * (COLUMN_SHARE * parts[0, :1] + share * parts[1]), 0.05)

    metadata: dict[str, Any] = {
        "axes": "zyx",
        "projection_axes": "tyx",
        "pixel_size": (pixel_um, pixel_um, pixel_um),
        "unit": "um",
        "value_unit": "1/cm",
        "classes": list(classes),
        "mu_per_cm": mu_per_cm,
        "mode": mode,
        "phantom": name,
        "shapes": description,
        "rotation_axis_yx": (n // 2, n // 2),
        "n_angles": n_angles,
        "counts": counts,
        "noise": noise,
        "rings": rings,
        "blur": blur,
        "flat_frames": flat_frames,
        "reconstruct": reconstruct,
        "seed": seed,
        "radiation": "neutron",
        "simulator": SIMULATOR,
    }
    if mode == "volume":
        volume, sigma = _volume_mode(mu, gain, counts=counts, noise=noise, blur=blur,
                                     n_angles=n_angles, flat_frames=flat_frames,
                                     pixel_cm=pixel_cm, noise_rng=noise_rng, flat_rng=flat_rng)
        metadata["noise_std_per_cm"] = sigma
        return Tomography(truth=labels.astype(np.uint8), mu=mu.astype(np.float32),
                          volume=volume, metadata=metadata)

    angles = angles_deg(n_angles)
    line = project_slices(mu * pixel_cm, angles)
    expected = counts * np.exp(-line)
    if noise:
        projections = noise_rng.poisson(expected).astype(np.float64)
        # The sum of k Poisson(c) frames is Poisson(k c).
        open_beam = flat_rng.poisson(counts * flat_frames, size=(nz, n)) / flat_frames
    else:
        projections = expected
        open_beam = np.full((nz, n), counts)
    projections = blur_frames(projections, blur) * gain
    open_beam = blur_frames(open_beam, blur)
    volume = None
    if reconstruct:
        measured = -np.log(np.maximum(projections, MIN_COUNT) / open_beam)
        volume = (reconstruct_slices(measured, angles) / pixel_cm).astype(np.float32)
    return Tomography(truth=labels.astype(np.uint8), mu=mu.astype(np.float32), volume=volume,
                      projections=projections.astype(np.float32),
                      open_beam=open_beam.astype(np.float32),
                      line_integrals=line.astype(np.float32), angles=angles, metadata=metadata)


def _volume_mode(mu: np.ndarray, gain: np.ndarray, *, counts: float, noise: bool, blur: float,
                 n_angles: int, flat_frames: int, pixel_cm: float,
                 noise_rng: np.random.Generator, flat_rng: np.random.Generator
                 ) -> tuple[np.ndarray, float]:
    nz, n, _ = mu.shape
    volume = ndimage.gaussian_filter(mu, sigma=blur, mode="nearest") if blur > 0 else mu.copy()
    offsets = -np.log(gain)
    sigma = 0.0
    if noise:
        inverse_t = mean_inverse_transmission(mu, pixel_cm, counts)
        sigma = fbp_noise_std(n, n_angles, inverse_t / counts, blur) / pixel_cm
        volume += sigma * fbp_noise(mu.shape, blur, noise_rng)
        flat = flat_rng.standard_normal((nz, n)) / math.sqrt(counts * flat_frames)
        offsets = offsets + blur_frames(flat, blur)
    if np.any(offsets):
        volume += ring_volume(offsets, n_angles) / pixel_cm
    grid = np.arange(n) - n // 2
    volume[:, np.hypot(grid[:, None], grid[None, :]) > n // 2] = 0.0  # as iradon(circle=True)
    return volume.astype(np.float32), float(sigma)


# --------------------------------------------------------------------------------------------
# phantoms (voxel coordinates: index i is the voxel centre; positions in cm are (i + 0.5) p)


def _make_phantom(phantom: Any, dims: tuple[int, int, int], pixel_cm: float,
                  rng: np.random.Generator
                  ) -> tuple[np.ndarray, tuple[str, ...], str, list[dict[str, Any]]]:
    if isinstance(phantom, str):
        if phantom not in PHANTOMS:
            raise ValueError(f"phantom must be one of {', '.join(map(repr, PHANTOMS))} or a "
                             f"(labels, classes) pair, got {phantom!r}")
        n = dims[1]
        axis = n // 2
        outer = 0.44 * n
        inner = outer - max(1.5, 0.03 * n)
        labels = np.zeros(dims, dtype=np.int64)
        r_plane = np.hypot(*np.meshgrid(np.arange(n) - axis, np.arange(n) - axis, indexing="ij"))
        labels[:, (r_plane < outer) & (r_plane >= inner)] = 1
        shapes: list[dict[str, Any]] = [{
            "type": "tube", "material": "aluminium",
            "axis_yx_cm": _cm((axis, axis), pixel_cm), "outer_radius_cm": outer * pixel_cm,
            "inner_radius_cm": inner * pixel_cm}]
        if phantom == "spheres":
            classes = ("aluminium", "iron", "copper", "lead", "water")
            shapes += _add_spheres(labels, classes[1:], inner, axis, rng, pixel_cm)
        elif phantom == "cylinders":
            classes = ("aluminium", "iron", "copper", "titanium", "water")
            shapes += _add_rods(labels, classes[1:], inner, axis, rng, pixel_cm)
        else:
            classes, entry = _add_porous(labels, inner, r_plane, rng)
            shapes.append(entry)
        return labels, classes, phantom, shapes
    return (*_custom_phantom(phantom, dims), "custom", [])


def _cm(position: Sequence[float], pixel_cm: float) -> list[float]:
    return [(float(v) + 0.5) * pixel_cm for v in position]


def _add_spheres(labels: np.ndarray, materials: Sequence[str], inner: float, axis: int,
                 rng: np.random.Generator, pixel_cm: float) -> list[dict[str, Any]]:
    nz = labels.shape[0]
    placed: list[tuple[np.ndarray, float]] = []
    shapes = []
    z = np.arange(nz)[:, None, None]
    y = np.arange(labels.shape[1])[None, :, None]
    x = np.arange(labels.shape[2])[None, None, :]
    for copy in range(2):
        for k, material in enumerate(materials, start=2):
            radius = float(rng.uniform(0.15, 0.26)) * inner
            radius = min(radius, max(1.5, nz / 2.0 - 1.0))
            centre = _place_sphere(rng, radius, inner, axis, nz, placed)
            placed.append((centre, radius))
            inside = ((z - centre[0]) ** 2 + (y - centre[1]) ** 2
                      + (x - centre[2]) ** 2) < radius**2
            labels[inside] = k
            shapes.append({"type": "sphere", "material": material,
                           "centre_zyx_cm": _cm(centre, pixel_cm), "radius_cm": radius * pixel_cm})
    return shapes


def _place_sphere(rng: np.random.Generator, radius: float, inner: float, axis: int, nz: int,
                  placed: list[tuple[np.ndarray, float]]) -> np.ndarray:
    best, best_gap = None, -math.inf
    for _ in range(400):
        # Uniform in the disc of radius inner - radius - 1 (one voxel clear of the wall).
        reach = max(inner - radius - 1.0, 0.0)
        r, phi = reach * math.sqrt(rng.uniform()), rng.uniform(0.0, 2.0 * math.pi)
        lo, hi = radius, nz - 1.0 - radius
        cz = rng.uniform(lo, hi) if hi > lo else (nz - 1) / 2.0
        centre = np.array([cz, axis + r * math.sin(phi), axis + r * math.cos(phi)])
        gap = min((np.linalg.norm(centre - c) - radius - rc for c, rc in placed), default=math.inf)
        if gap >= 1.0:
            return centre
        if gap > best_gap:
            best, best_gap = centre, gap
    return best  # a crowded container: the least overlapping position (later sphere wins)


def _add_rods(labels: np.ndarray, materials: Sequence[str], inner: float, axis: int,
              rng: np.random.Generator, pixel_cm: float) -> list[dict[str, Any]]:
    n = labels.shape[1]
    y = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    placed: list[tuple[np.ndarray, float]] = []
    shapes = []
    for k, material in enumerate(materials, start=2):
        radius = float(rng.uniform(0.18, 0.26)) * inner
        best, best_gap = None, -math.inf
        for _ in range(400):
            reach = max(inner - radius - 1.0, 0.0)
            r, phi = reach * math.sqrt(rng.uniform()), rng.uniform(0.0, 2.0 * math.pi)
            centre = np.array([axis + r * math.sin(phi), axis + r * math.cos(phi)])
            gap = min((np.linalg.norm(centre - c) - radius - rc for c, rc in placed),
                      default=math.inf)
            if gap > best_gap:
                best, best_gap = centre, gap
            if gap >= 1.0:
                break
        placed.append((best, radius))
        labels[:, ((y - best[0]) ** 2 + (x - best[1]) ** 2) < radius**2] = k
        shapes.append({"type": "rod", "material": material, "axis_yx_cm": _cm(best, pixel_cm),
                       "radius_cm": radius * pixel_cm})
    return shapes


def _add_porous(labels: np.ndarray, inner: float, r_plane: np.ndarray,
                rng: np.random.Generator) -> tuple[tuple[str, ...], dict[str, Any]]:
    from ._porous import porous_volume

    params = {"porosity": 0.35, "grain_radius": max(2.0, labels.shape[1] / 32.0),
              "saturation": 0.5, "seed": int(rng.integers(2**31))}
    porous, names = porous_volume(labels.shape, **params)
    classes = ("aluminium", *(get_material(name).name for name in names))
    # Porous labels are 0 = air-filled pore (stays 0, like the air outside), k = names[k-1].
    region = np.broadcast_to(r_plane < inner, labels.shape)
    shifted = np.where(porous > 0, porous.astype(np.int64) + 1, 0)
    labels[region] = shifted[region]
    entry = {"type": "porous", "generator": "niseg.simulate.porous_volume",
             "fills": "inside of the tube", **params}
    return classes, entry


def _custom_phantom(phantom: Any, dims: tuple[int, int, int]
                    ) -> tuple[np.ndarray, tuple[str, ...]]:
    expected = ("phantom must be 'spheres', 'cylinders', 'porous' or a (labels, classes) pair "
                "of an integer (P, M, M) array and material names")
    if not isinstance(phantom, (tuple, list)) or len(phantom) != 2:
        raise TypeError(f"{expected}, got {type(phantom).__name__}")
    labels, classes = np.asarray(phantom[0]), phantom[1]
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise TypeError(f"{expected}; classes is {type(classes).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"phantom labels must be an integer array, got dtype {labels.dtype}")
    if labels.shape != dims:
        raise ValueError(f"phantom labels have shape {labels.shape} but shape is {dims}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > len(classes):
        raise ValueError(f"phantom labels must lie in 0..{len(classes)} (one class per name in "
                         f"classes), got {labels.min()}..{labels.max()}")
    names = tuple(get_material(str(c)).name for c in classes)
    grid = np.arange(dims[1]) - dims[1] // 2
    outside = np.hypot(grid[:, None], grid[None, :]) > dims[1] // 2
    if np.any(labels[:, outside]):
        raise ValueError("phantom labels must be 0 outside the circle of radius M // 2 around "
                         "the rotation axis at pixel (M // 2, M // 2), as parallel-beam "
                         "tomography reconstructs only that circle")
    return labels.astype(np.int64), names


# --------------------------------------------------------------------------------------------
# argument checks


def _check_shape(shape: Any) -> tuple[int, int, int]:
    expected = "shape must be three voxel counts (P, M, M) with square slices"
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{expected}, got {shape!r}") from None
    if len(items) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{expected}, got {shape!r}")
    dims = tuple(int(v) for v in items)
    if dims[0] < 1 or min(dims[1:]) < MIN_SIZE:
        raise ValueError(f"shape must have at least 1 slice of at least {MIN_SIZE} x {MIN_SIZE} "
                         f"voxels, got {dims}")
    if dims[1] != dims[2]:
        raise ValueError(f"shape must have square slices (M, M) for tomography, got {dims}")
    return dims  # type: ignore[return-value]


def _check_int(name: str, value: Any, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)
