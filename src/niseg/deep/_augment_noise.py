"""Intensity and physics-aware noise augmentations (torch, on the batch's device).

These act on the image only, on each channel of each sample (a "plane"); a sample decides
once per transform whether it gets it, and its channels share the drawn strength while
random fields (counting noise, spot positions, ring and stripe patterns) differ per
channel, as separate exposures would.

Order, and why:

1. brightness, contrast, gamma: the object and illumination could have looked different;
2. rings and stripes: detector gain errors, fixed in detector coordinates;
3. Poisson counting noise: the detected neutrons or photons;
4. Gaussian blur: the scintillator spreads light after the counting (as in
   :func:`niseg.simulate.simulate_radiograph`), so it also correlates the noise;
5. gamma spots: gamma hits on the camera sensor bypass the scintillator, so they are not
   blurred (as in :func:`niseg.simulate.simulate_spots`).

Scale. Strengths are relative to each plane's robust range, from its 0.5th to its 99.5th
percentile, so they mean the same on raw counts, transmission, attenuation or z-scored
data. A constant plane has no range; its scale is then ``max(|value|, 1)``.

Poisson model. The plane is read as transmission ``T = (x - low) / range`` (0 at the robust
minimum, 1 at the robust maximum: open beam). With ``N`` counts per pixel in the open beam,
drawn log-uniformly from ``poisson_counts_range``, the detected count is
``Poisson(N * T)`` and the noisy transmission ``Poisson(N * T) / N`` (mean ``T``, variance
``T / N``), mapped back with the same ``low`` and ``range``. Pixels below the robust
minimum (``T < 0``) are treated as ``T = 0`` (no counts, no noise) and keep their offset,
and pixels above the maximum keep theirs plus noise, so no value is clipped. The added
noise is independent of noise already in the image, so the result is at least as noisy
as ``N`` counts.

Real count units (``poisson_units="transmission"``). When the images are transmission
(open beam = 1) and the caller passes the map from the network's input back to it (the
training's z-score statistics), ``T`` is the real transmission and ``N`` real open-beam
counts: 300 counts then give the noise of a 300-count measurement, however little of the
range a patch spans (relative to a patch's own range, the same ``N`` meant anything from a
few hundred to a few thousand real counts on soil radiographs). With the data's own count
level ``N0`` (``poisson_data_counts``) the added noise has ``1 / (1/N - 1/N0)`` counts, so
the sum is exactly ``N``; samples drawn at ``N >= N0`` stay as they are.

Gamma spots. As in :func:`niseg.simulate.add_spots`: blobs 1 to ``max`` pixels across
(``P(size) ~ size**-2``, irregular: an ellipse with about a third of its pixels missing,
centre always kept), each pixel changed by 0.6 to 1 times a peak amplitude that is
log-uniform in noise standard deviations; a fraction of spots is dark (lowering at most to
the robust minimum), bright ones are clipped at a saturation level of four times the range
above the robust minimum (the open beam filling a quarter of the detector's range). The
noise standard deviation is estimated per plane (median absolute difference from the
3-pixel local mean), and taken as at least 1 % of the range so spots stay visible on clean
images. In 3D, each spot lies in one z slice (a hit on one frame of a stack).

Rings and stripes. Rings: every pixel gets an offset that depends only on its distance
from a random centre in the (y, x) plane; about one radius in five carries a ring of
Gaussian random strength (linearly interpolated between integer radii), identical in
every z slice (a detector column's error persists through the slices). Stripes: one
pixel wide constant offsets along random columns or rows (each plane chooses one
direction), about one line in twenty. Amplitudes are standard deviations as a fraction of
the range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ._augment_config import AugmentConfig

LOW_QUANTILE, HIGH_QUANTILE = 0.005, 0.995
RING_DENSITY = 0.2
STRIPE_DENSITY = 0.05
SPOT_TEXTURE_LOW = 0.6
SPOT_HOLES = 0.3  # fraction of an ellipse's pixels left out, for irregular spot shapes
SATURATION_RANGES = 4.0
MIN_SIGMA = 0.01  # noise floor for spot amplitudes, as a fraction of the range
BLUR_TRUNCATE = 3.0


def intensity_and_noise(x: torch.Tensor, config: AugmentConfig, g: torch.Generator, *,
                        intensity: Sequence[tuple[float, float]] | None = None
                        ) -> torch.Tensor:
    """Apply the image-only transforms of ``config`` to (B, C, *spatial) float32 ``x``.

    ``intensity`` holds per channel the ``(offset, scale)`` with ``units = x * scale +
    offset``; ``poisson_units="transmission"`` needs it.
    """
    batch, channels = x.shape[:2]
    planes = x.reshape(batch * channels, *x.shape[2:])

    def flags(p: float) -> torch.Tensor:
        return _per_plane(_rand(g, batch, x.device) < p, channels)

    def draw(bounds: tuple[float, float], log: bool = False) -> torch.Tensor:
        low, high = (math.log(b) for b in bounds) if log else bounds
        value = low + (high - low) * _rand(g, batch, x.device)
        return _per_plane(value.exp() if log else value, channels)

    if config.brightness_p > 0:
        do, shift = flags(config.brightness_p), draw(config.brightness_range)
        _, scale = robust_range(planes)
        planes = torch.where(_view(do, planes), planes + _view(shift * scale, planes), planes)
    if config.contrast_p > 0:
        do, factor = flags(config.contrast_p), draw(config.contrast_range)
        mean = _view(planes.flatten(1).mean(1), planes)
        changed = mean + _view(factor, planes) * (planes - mean)
        planes = torch.where(_view(do, planes), changed, planes)
    if config.gamma_p > 0:
        do, gamma = flags(config.gamma_p), draw(config.gamma_range, log=True)
        planes = _gamma(planes, do, gamma)
    if config.rings_p > 0:
        do, amplitude = flags(config.rings_p), draw(config.rings_amplitude_range)
        planes = _apply(planes, do, lambda sub, sel: sub + _rings(sub, amplitude[sel], g))
    if config.stripes_p > 0:
        do, amplitude = flags(config.stripes_p), draw(config.stripes_amplitude_range)
        planes = _apply(planes, do, lambda sub, sel: sub + _stripes(sub, amplitude[sel], g))
    if config.poisson_p > 0:
        do, counts = flags(config.poisson_p), draw(config.poisson_counts_range, log=True)
        if config.poisson_units == "transmission":
            offset, scale = (torch.tensor([pair[i] for pair in intensity] * batch,
                                          dtype=planes.dtype, device=planes.device)
                             for i in (0, 1))
            planes = _apply(planes, do, lambda sub, sel: poisson_noise(
                sub, counts[sel], g, units=(offset[sel], scale[sel]),
                data_counts=config.poisson_data_counts))
        else:
            planes = _apply(planes, do, lambda sub, sel: poisson_noise(sub, counts[sel], g))
    if config.blur_p > 0:
        do, sigma = flags(config.blur_p), draw(config.blur_sigma_range)
        planes = _apply(planes, do, lambda sub, sel: gaussian_blur(sub, sigma[sel]))
    if config.spots_p > 0:
        do = flags(config.spots_p)
        planes = _apply(planes, do, lambda sub, sel: add_spots(sub, config, g)[0])
    return planes.reshape(x.shape)


def robust_range(planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-plane robust minimum (0.5th percentile) and scale (to the 99.5th), shape (P,)."""
    flat = planes.flatten(1)
    n = flat.shape[1]
    low = flat.kthvalue(_rank(LOW_QUANTILE, n), dim=1).values
    high = flat.kthvalue(_rank(HIGH_QUANTILE, n), dim=1).values
    span = high - low
    fallback = high.abs().clamp(min=1.0)
    return low, torch.where(span > 1e-6 * fallback, span, fallback)


def poisson_noise(planes: torch.Tensor, counts: torch.Tensor, g: torch.Generator, *,
                  units: tuple[torch.Tensor, torch.Tensor] | None = None,
                  data_counts: float | None = None) -> torch.Tensor:
    """Poisson counting noise at ``counts`` open-beam counts per pixel for each plane.

    Without ``units`` the open beam is each plane's robust maximum; with ``units =
    (offset, scale)`` (per plane) the plane is transmission ``planes * scale + offset``.
    ``data_counts`` (transmission only): the planes already hold noise of that many counts;
    the noise added brings them to ``counts`` (variances add: ``1/N = 1/N0 + 1/N_add``), and
    planes at or above ``data_counts`` are returned unchanged.
    """
    keep = None
    if units is not None:
        # Transmission: open beam at 1, nothing detected at 0 and below.
        low, scale = -units[0] / units[1], 1.0 / units[1]
        if data_counts is not None:
            keep = counts >= data_counts
            counts = torch.where(keep, torch.ones_like(counts),
                                 1.0 / (1.0 / counts - 1.0 / data_counts).clamp(min=1e-12))
    else:
        low, scale = robust_range(planes)
    n = _view(counts, planes)
    transmission = (planes - _view(low, planes)) / _view(scale, planes)
    expected = transmission.clamp(min=0.0)
    detected = torch.poisson(expected * n, generator=g) / n
    noisy = planes + (detected - expected) * _view(scale, planes)
    return noisy if keep is None else torch.where(_view(keep, planes), planes, noisy)


def gaussian_blur(planes: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each plane with its own ``sigma`` (pixels, every axis)."""
    count, dims = planes.shape[0], planes.ndim - 1
    radius = max(1, math.ceil(BLUR_TRUNCATE * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, device=planes.device, dtype=planes.dtype)
    s = sigma.clamp(min=1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets / s) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    conv = F.conv2d if dims == 2 else F.conv3d
    out = planes.unsqueeze(0)  # (1, P, *spatial): one group per plane
    for axis in range(dims):
        shape = [count, 1] + [1] * dims
        shape[2 + axis] = 2 * radius + 1
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = pad[2 * (dims - 1 - axis) + 1] = radius
        # Replicate padding works for planes smaller than the kernel, unlike reflection.
        out = conv(F.pad(out, pad, mode="replicate"), kernel.view(shape), groups=count)
    return out.squeeze(0)


def noise_sigma(planes: torch.Tensor) -> torch.Tensor:
    """Per-plane noise standard deviation, from deviations from the 3-pixel local mean."""
    dims = planes.ndim - 1
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    local = pool(planes.unsqueeze(1), 3, stride=1, padding=1, count_include_pad=False)
    residual = (planes - local.squeeze(1)).flatten(1)
    # For white noise the residual's variance is (1 - 1/3**dims) of the noise variance.
    factor = 1.4826 / math.sqrt(1.0 - 3.0 ** -dims)
    return factor * residual.abs().median(dim=1).values


def add_spots(planes: torch.Tensor, config: AugmentConfig,
              g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gamma spots on every plane; returns the planes and the mask of spot pixels."""
    count, spatial = planes.shape[0], tuple(planes.shape[1:])
    height, width = spatial[-2:]
    depth = spatial[0] if len(spatial) == 3 else 1
    device = planes.device
    smin, smax = config.spots_size_range
    nmin, nmax = config.spots_number_range
    low, high = config.spots_amplitude_range
    k = nmax
    number = torch.randint(nmin, nmax + 1, (count, 1), generator=g, device=g.device).to(device)
    active = torch.arange(k, device=device)[None] < number
    sizes = torch.arange(smin, smax + 1, dtype=torch.float32, device=g.device)
    pick = torch.multinomial(sizes ** -2.0, count * k, replacement=True, generator=g)
    size = sizes[pick].to(device).view(count, k, 1, 1)
    u = torch.arange(smax, dtype=torch.float32, device=device)
    centre = (size - 1) / 2
    radii = size.unsqueeze(2) / 2 * (0.6 + 0.4 * _rand(g, (count, k, 2, 1, 1), device))
    inside = ((u.view(-1, 1) - centre) / radii[:, :, 0]) ** 2 \
        + ((u.view(1, -1) - centre) / radii[:, :, 1]) ** 2 <= 1.0
    core = (u.view(-1, 1) == centre.floor()) & (u.view(1, -1) == centre.floor())
    blob = (inside & (_rand(g, (count, k, smax, smax), device) >= SPOT_HOLES)) | core
    top = (_rand(g, (count, k, 1, 1), device) * (height - size + 1)).floor().clamp(min=0)
    left = (_rand(g, (count, k, 1, 1), device) * (width - size + 1)).floor().clamp(min=0)
    slice_ = (_rand(g, (count, k, 1, 1), device) * depth).floor()
    rows, cols = top + u.view(-1, 1), left + u.view(1, -1)
    valid = blob & active[..., None, None] & (rows < height) & (cols < width)
    peak = torch.exp(math.log(low) + math.log(high / low) * _rand(g, (count, k, 1, 1), device))
    texture = SPOT_TEXTURE_LOW + (1 - SPOT_TEXTURE_LOW) * _rand(g, (count, k, smax, smax), device)
    dark = (_rand(g, (count, k, 1, 1), device) < config.spots_dark_fraction).expand_as(valid)
    base, scale = robust_range(planes)
    sigma = torch.maximum(noise_sigma(planes), MIN_SIGMA * scale)
    change = (peak * texture).clamp(min=low) * sigma.view(-1, 1, 1, 1)
    per_plane = height * width * depth
    # Indices in int64: float32 is not exact beyond 2**24 pixels.
    index = (torch.arange(count, device=device).view(-1, 1, 1, 1) * per_plane
             + slice_.long() * (height * width) + rows.long() * width + cols.long())
    # A max over overlapping spots is order-independent, so CUDA scatter stays deterministic.
    raised = torch.zeros(planes.numel(), device=device)
    lowered = torch.zeros(planes.numel(), device=device)
    raised.scatter_reduce_(0, index[valid & ~dark], change.expand_as(valid)[valid & ~dark],
                           reduce="amax")
    lowered.scatter_reduce_(0, index[valid & dark], change.expand_as(valid)[valid & dark],
                            reduce="amax")
    raised, lowered = raised.view_as(planes), lowered.view_as(planes)
    saturation = _view(base + SATURATION_RANGES * scale, planes)
    floor = _view(base, planes)
    out = torch.where(raised > 0, torch.minimum(planes + raised,
                                                torch.maximum(planes, saturation)), planes)
    out = torch.where(lowered > 0, torch.maximum(out - lowered, torch.minimum(out, floor)), out)
    # A spot on a pixel already at saturation (bright) or the floor (dark) changes nothing
    # and is not marked, as in niseg.simulate.add_spots.
    return out, out != planes


# --------------------------------------------------------------------------------- helpers


def _gamma(planes: torch.Tensor, do: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    flat = planes.flatten(1)
    low, high = _view(flat.min(1).values, planes), _view(flat.max(1).values, planes)
    span = high - low
    ok = _view(do, planes) & (span > 0)
    unit = ((planes - low) / torch.where(span > 0, span, 1.0)).clamp(0.0, 1.0)
    return torch.where(ok, low + unit ** _view(gamma, planes) * span, planes)


def _rings(planes: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    count, device = planes.shape[0], planes.device
    height, width = planes.shape[-2:]
    centre = _rand(g, (count, 2), device) * torch.tensor([height, width], device=device)
    n_radii = math.ceil(math.hypot(height, width)) + 2
    _, scale = robust_range(planes)
    strength = torch.randn((count, n_radii), generator=g, device=g.device).to(device)
    present = _rand(g, (count, n_radii), device) < RING_DENSITY
    profile = strength * present * (amplitude * scale).view(-1, 1)
    rings = ring_offsets(profile, centre, (height, width))
    return rings.unsqueeze(1) if planes.ndim == 4 else rings


def ring_offsets(profile: torch.Tensor, centre: torch.Tensor,
                 shape: tuple[int, int]) -> torch.Tensor:
    """(P, Y, X) offsets ``profile[p](distance to centre[p])``, linear between radii."""
    rows = torch.arange(shape[0], device=profile.device, dtype=profile.dtype).view(1, -1, 1)
    cols = torch.arange(shape[1], device=profile.device, dtype=profile.dtype).view(1, 1, -1)
    radius = torch.sqrt((rows - centre[:, 0].view(-1, 1, 1)) ** 2
                        + (cols - centre[:, 1].view(-1, 1, 1)) ** 2)
    first = radius.floor().long().clamp(max=profile.shape[1] - 2)
    frac = radius - first
    flat = first.flatten(1)
    inner = profile.gather(1, flat).view_as(radius)
    outer = profile.gather(1, flat + 1).view_as(radius)
    return inner * (1 - frac) + outer * frac


def _stripes(planes: torch.Tensor, amplitude: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    count, device = planes.shape[0], planes.device
    height, width = planes.shape[-2:]
    length = max(height, width)
    _, scale = robust_range(planes)
    strength = torch.randn((count, length), generator=g, device=g.device).to(device)
    present = _rand(g, (count, length), device) < STRIPE_DENSITY
    profile = strength * present * (amplitude * scale).view(-1, 1)
    columns = _rand(g, count, device) < 0.5
    stripes = torch.where(columns.view(-1, 1, 1), profile[:, None, :width],
                          profile[:, :height, None])
    return stripes.unsqueeze(1) if planes.ndim == 4 else stripes


def _apply(planes: torch.Tensor, do: torch.Tensor,
           fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run ``fn(selected_planes, selection)`` on the selected planes only."""
    selected = torch.nonzero(do).squeeze(1)
    if selected.numel() == 0:
        return planes
    return planes.index_copy(0, selected, fn(planes[selected], selected))


def _rank(quantile: float, n: int) -> int:
    return min(n, max(1, round(quantile * (n - 1)) + 1))


def _rand(g: torch.Generator, shape: int | tuple[int, ...], device: torch.device) -> torch.Tensor:
    size = (shape,) if isinstance(shape, int) else shape
    return torch.rand(size, generator=g, device=g.device).to(device)


def _per_plane(values: torch.Tensor, channels: int) -> torch.Tensor:
    return values.repeat_interleave(channels)


def _view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *[1] * (like.ndim - 1))
