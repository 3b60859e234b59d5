"""Parallel-beam tomography physics shared by the tomogram and root simulators.

Two ways to get a reconstruction-like volume:

- exact: project each slice with :func:`skimage.transform.radon`, count, and reconstruct
  with :func:`skimage.transform.iradon` (filtered back-projection, FBP); slow (about 0.1 s
  per 128 x 128 slice and 180 angles) but faithful;
- fast surrogate: add to the object the noise and the rings that FBP *would* produce,
  derived from the same quantities (counts, number of angles, detector blur).

The surrogate follows the textbook noise analysis of FBP (Kak & Slaney, *Principles of
Computerized Tomographic Imaging*, ch. 5). skimage's FBP is
``f(x) = pi / (2 n_theta) * sum_theta q_theta(t)`` with ``q = p * h`` the ramp-filtered
projection, evaluated at ``t = x cos(theta) - y sin(theta)`` by linear interpolation.
Independent noise of variance ``v`` in every projection sample therefore gives a pixel
variance

    var(f) = pi^2 / (4 n_theta) * v * mean_f(|H(f)|^2 |B(f)|^2 L(f)),

with ``H`` the discrete ramp filter, ``B`` the transfer of the detector blur and
``L(f) = 1 - (1 - cos 2 pi f) / 3`` the mean power transfer of linear interpolation at a
random sub-sample position. Its noise power spectrum in the slice is radial,
``|k| L(|k|) |B(|k|)|^2`` up to 0.5 cycles per pixel: high-pass (ramp) noise, smoothed at
the highest frequencies by interpolation and blur, so neighbouring voxels are positively
correlated. Along the rotation axis the noise is only correlated through the blur.

A detector pixel whose gain differs between the open beam and the projections adds the
same offset ``delta = -log(gain)`` to its sinogram column at every angle; FBP turns that
into a ring around the rotation axis (over 180 degrees, a half ring per column: the
column on the other side of the axis draws the other half). Rings are the exact FBP of
such offsets, computed for all slices at once.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.fft import fft, ifft, irfftn, rfftn
from scipy import ndimage
from skimage.transform import iradon, radon

__all__: list[str] = []


def padded_size(n: int) -> int:
    """Length to which skimage's iradon zero-pads a projection before filtering."""
    return max(64, int(2 ** math.ceil(math.log2(2 * n))))


def ramp_filter(size: int) -> np.ndarray:
    """Discrete ramp filter in the Fourier domain (Kak & Slaney ch. 3 eq. 61).

    Built from the band-limited spatial kernel ``h(0) = 1/4``, ``h(k) = -1 / (pi k)^2``
    for odd ``k`` and 0 for even ``k``, which removes the DC bias of sampling ``|f|``
    directly; this is the filter skimage's ``iradon(filter_name="ramp")`` applies.
    """
    k = np.arange(size)
    k = np.minimum(k, size - k)
    kernel = np.zeros(size)
    odd = k % 2 == 1
    kernel[odd] = -1.0 / (math.pi * k[odd]) ** 2
    kernel[0] = 0.25
    return 2.0 * np.real(fft(kernel))


def gaussian_transfer(frequency: np.ndarray, sigma: float) -> np.ndarray:
    """Transfer function of scipy's sampled Gaussian filter (radius ``int(4 sigma + 0.5)``)."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if sigma <= 0:
        return np.ones_like(frequency)
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(1, radius + 1)
    weights = np.exp(-0.5 * (np.arange(0, radius + 1) / sigma) ** 2)
    weights /= weights[0] + 2.0 * weights[1:].sum()
    return weights[0] + 2.0 * np.sum(
        weights[1:] * np.cos(2.0 * math.pi * frequency[..., None] * taps), axis=-1)


def _interpolation_power(frequency: np.ndarray) -> np.ndarray:
    # Linear interpolation at offset u has |1 - u + u e^{-2 pi i f}|^2; mean over u in [0, 1).
    return 1.0 - (1.0 - np.cos(2.0 * math.pi * frequency)) / 3.0


def fbp_noise_std(n: int, n_angles: int, variance: float, blur: float) -> float:
    """Standard deviation of FBP pixel noise, in units of the projections per pixel.

    Parameters
    ----------
    n : int
        Detector columns (= slice width).
    n_angles : int
        Number of projection angles over 180 degrees.
    variance : float
        Variance of the noise of one projection sample (``1 / (counts * T)`` for Poisson
        counts normalised by a noiseless open beam).
    blur : float
        Detector blur sigma in pixels (along rows and columns).
    """
    size = padded_size(math.ceil(math.sqrt(2.0) * n))  # as iradon(circle=True) pads
    f = np.fft.fftfreq(size)
    column = np.mean(ramp_filter(size) ** 2 * gaussian_transfer(f, blur) ** 2
                     * _interpolation_power(f))
    return math.sqrt(math.pi**2 / (4.0 * n_angles) * variance * column)


def mean_inverse_transmission(mu: np.ndarray, pixel_cm: float, counts: float) -> float:
    """Mean of ``1 / T`` over the rays at 0 and 90 degrees of a ``(P, M, N)`` volume.

    Poisson noise of ``-log(N / N0)`` has variance ``1 / (counts T)``; the rays along
    ``y`` and ``x`` stand for all angles. ``1 / T`` is capped at ``counts / 0.5``, where a
    ray is starved (no neutron arrives) and the projection is clipped before the log.
    """
    cap = math.log(counts / 0.5) if counts > 0.5 else 0.0
    means = [np.mean(np.exp(np.minimum(mu.sum(axis=axis) * pixel_cm, cap))) for axis in (1, 2)]
    return float(0.5 * (means[0] + means[1]))


def fbp_noise(shape: tuple[int, int, int], blur: float,
              rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance noise with the spatial correlation of FBP noise.

    Parameters
    ----------
    shape : (int, int, int)
        ``(P, M, N)`` volume, slices along axis 0 (the rotation axis).
    blur : float
        Detector blur sigma in pixels.
    rng : numpy.random.Generator
        Source of the white noise.

    Returns
    -------
    (P, M, N) float32 ndarray
    """
    nz, ny, nx = shape
    fz = np.fft.fftfreq(nz)[:, None, None]
    fy = np.fft.fftfreq(ny)[None, :, None]
    fx = np.fft.rfftfreq(nx)[None, None, :]
    radial = np.sqrt(fy**2 + fx**2)
    power = radial * _interpolation_power(radial) * gaussian_transfer(radial, blur) ** 2
    power = np.where(radial <= 0.5, power, 0.0) * gaussian_transfer(fz, blur) ** 2
    # Power of the full (two-sided) spectrum from the half spectrum of rfftn: the
    # columns other than 0 and Nyquist stand for two frequencies each.
    weight = np.full(fx.shape, 2.0)
    weight[..., 0] = 1.0
    if nx % 2 == 0:
        weight[..., -1] = 1.0
    total = float(np.sum(power * weight)) / (nz * ny * nx)
    white = rng.standard_normal(shape)
    field = irfftn(rfftn(white) * np.sqrt(power / total), s=shape, axes=(0, 1, 2))
    return field.astype(np.float32)


def ring_volume(offsets: np.ndarray, n_angles: int) -> np.ndarray:
    """FBP of sinograms whose columns carry constant offsets, one slice per row of offsets.

    Equal, to rounding, to ``skimage.transform.iradon`` (ramp filter, linear
    interpolation, ``circle=True``) of each slice's sinogram ``offsets[z]`` repeated at
    every angle, but computed for all slices at once: the back-projection is linear, so it
    is a fixed (pixels x detector columns) matrix applied to the filtered offsets of
    every slice. Over 180 degrees a column at distance ``s`` from the axis draws a *half*
    ring of radius ``s``; the opposite column draws the other half.

    Parameters
    ----------
    offsets : (P, N) ndarray
        Offset of each detector column (in projection units) for each slice.
    n_angles : int
        Number of projection angles, ``k * 180 / n_angles`` degrees.

    Returns
    -------
    (P, N, N) float32 ndarray
        Ring image in projection units per pixel, rotation axis at pixel ``N // 2``;
        0 outside the reconstruction circle.
    """
    nz, n = offsets.shape
    # iradon(circle=True) first pads the sinogram to the image diagonal, so the filtered
    # projection spills beyond the detector; do the same to match it.
    diagonal = math.ceil(math.sqrt(2.0) * n)
    before = diagonal // 2 - n // 2
    extended = np.zeros((nz, diagonal))
    extended[:, before:before + n] = offsets
    padded = padded_size(diagonal)
    filtered = np.real(ifft(fft(extended, n=padded, axis=1) * ramp_filter(padded), axis=1))
    filtered = filtered[:, :diagonal]

    theta = np.deg2rad(np.arange(n_angles) * 180.0 / n_angles)
    cos, sin = np.cos(theta), np.sin(theta)
    grid = np.arange(n) - n // 2
    out = np.empty((n * n, nz))
    rows_per_chunk = max(1, 2_000_000 // (n * n_angles))  # bounds the memory per chunk
    for r0 in range(0, n, rows_per_chunk):
        rows = grid[r0:r0 + rows_per_chunk]
        row = np.repeat(rows, n)[:, None]
        col = np.tile(grid, rows.size)[:, None]
        t = col * cos - row * sin + diagonal // 2
        valid = (t >= 0) & (t <= diagonal - 1)
        base = np.minimum(np.floor(t).astype(np.intp), diagonal - 2)
        frac = t - base
        start = np.arange(t.shape[0])[:, None] * diagonal + base
        index = np.concatenate([start[valid], start[valid] + 1])
        weight = np.concatenate([(1.0 - frac)[valid], frac[valid]])
        matrix = np.bincount(index, weight, minlength=t.shape[0] * diagonal)
        out[r0 * n:(r0 + rows.size) * n] = matrix.reshape(t.shape[0], diagonal) @ filtered.T
    rings = out.T.reshape(nz, n, n) * (math.pi / (2.0 * n_angles))
    rings[:, np.hypot(grid[:, None], grid[None, :]) > n // 2] = 0.0
    return rings.astype(np.float32)


def angles_deg(n_angles: int) -> np.ndarray:
    """Projection angles ``k * 180 / n_angles`` degrees, ``k = 0 .. n_angles - 1``."""
    return np.arange(n_angles) * (180.0 / n_angles)


def project_slices(volume: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Parallel-beam line integrals of each slice (``skimage.transform.radon``).

    Parameters
    ----------
    volume : (P, N, N) ndarray
        Attenuation per pixel (``mu * pixel size``), zero outside the inscribed circle.
    angles : (T,) ndarray
        Angles in degrees.

    Returns
    -------
    (T, P, N) float64 ndarray
        ``[t, z, s]``: line integral at angle ``t``, detector row ``z``, column ``s``.
    """
    nz, n, _ = volume.shape
    out = np.empty((angles.size, nz, n))
    for z in range(nz):
        if np.any(volume[z]):
            out[:, z, :] = radon(volume[z], theta=angles, circle=True).T
        else:
            out[:, z, :] = 0.0
    return out


def reconstruct_slices(sinograms: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Filtered back-projection of ``(T, P, N)`` projections, slice by slice (``iradon``).

    Returns
    -------
    (P, N, N) float64 ndarray
        In the units of the projections per pixel; 0 outside the reconstruction circle.
    """
    _, nz, n = sinograms.shape
    out = np.empty((nz, n, n))
    for z in range(nz):
        out[z] = iradon(sinograms[:, z, :].T, theta=angles, circle=True, filter_name="ramp")
    return out


def blur_frames(frames: np.ndarray, blur: float) -> np.ndarray:
    """Gaussian detector blur of each frame over its last two axes (mirror boundaries)."""
    if blur <= 0:
        return frames
    sigma = (0.0,) * (frames.ndim - 2) + (blur, blur)
    return ndimage.gaussian_filter(frames, sigma=sigma, mode="reflect")
