"""Training-time augmentation on the training device: geometry, intensity and detector physics.

Everything here is torch operations on the batch where it lives (CPU or CUDA); nothing goes
through NumPy. Each transform is decided per sample with its own probability, and every
random number comes from the caller's ``torch.Generator``, so a seed fixes the output.

Geometry keeps image and target aligned: flips and 90 degree rotations are exact index
permutations of both; rotation, zoom and elastic distortion are composed into one sampling
grid that is applied once (bilinear for the image, nearest for the target), so the image is
interpolated a single time however many of them a sample gets. Target pixels whose source
lies outside the image become ignore (-1); image pixels there are filled by reflection by
default (``padding``).

The intensity and physics-aware noise transforms live in :mod:`._augment_noise`; their
order, model and units are described there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ._augment_config import AugmentConfig
from ._augment_noise import _rand, intensity_and_noise

__all__ = ["AugmentConfig", "augment"]


def augment(
    image: torch.Tensor,
    target: torch.Tensor | None,
    config: AugmentConfig,
    *,
    generator: torch.Generator,
    intensity: Sequence[tuple[float, float]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a batch of images and their label maps on the device they live on.

    Order: flips, 90 degree rotations, then one resampling for rotation + zoom + elastic
    distortion (these change image and target alike); then, on the image only, brightness,
    contrast, gamma, rings, stripes, Poisson noise, blur and spots (see
    :mod:`niseg.deep._augment_noise`). Each sample draws its own transforms and
    parameters from ``generator``.

    Parameters
    ----------
    image : (B, C, Y, X) or (B, C, Z, Y, X) float tensor
        Images; computed in float32, returned in the input dtype. Not modified.
    target : (B, Y, X) or (B, Z, Y, X) integer tensor or None
        Class indices, ``-1`` = unlabelled (ignored by the loss). Pixels whose source lies
        outside the image after rotation, zoom or elastic distortion become -1. Not
        modified.
    config : AugmentConfig
        What to apply and how often.
    generator : torch.Generator
        Source of every random number; it must be on the same kind of device as
        ``image`` (``torch.Generator(device=image.device)``). Same seed, same output.
    intensity : sequence of (offset, scale), optional
        Per channel, how ``image`` maps back to the data's own units:
        ``units = image * scale + offset`` (for z-scored inputs, the mean and standard
        deviation). Needed only by ``poisson_units="transmission"``.

    Returns
    -------
    image : float tensor, same shape, dtype and device as the input
    target : int64 tensor, same shape and device as the input, or None

    Examples
    --------
    >>> import torch
    >>> from niseg.deep._augment import AugmentConfig, augment
    >>> image = torch.rand(2, 1, 32, 32)
    >>> target = (image[:, 0] > 0.5).long()
    >>> g = torch.Generator().manual_seed(0)
    >>> out, labels = augment(image, target, AugmentConfig(), generator=g)
    >>> out.shape, labels.shape, labels.dtype
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 32, 32]), torch.int64)

    Flips and 90 degree rotations permute image and labels alike:

    >>> exact = AugmentConfig.preset("none", flip_p=0.5, rot90_p=1.0)
    >>> out, labels = augment(image, target, exact, generator=g)
    >>> torch.equal(labels, (out[:, 0] > 0.5).long()), torch.equal(out, image)
    (True, False)
    """
    target = _check_inputs(image, target, config, generator)
    if intensity is not None:
        intensity = _check_intensity(intensity, image.shape[1])
    elif config.poisson_p > 0 and config.poisson_units == "transmission":
        raise ValueError("poisson_units 'transmission' needs intensity, the (offset, scale) "
                         "per channel that maps the image back to transmission")
    dtype = image.dtype
    x = image.float()
    y = None if target is None else target.long()
    x, y = _flips(x, y, config, generator)
    x, y = _rot90(x, y, config, generator)
    x, y = _resample(x, y, config, generator)
    x = intensity_and_noise(x, config, generator, intensity=intensity)
    return x.to(dtype), y


# --------------------------------------------------------------------------------- geometry


def _flips(x: torch.Tensor, y: torch.Tensor | None, config: AugmentConfig,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    batch, dims = x.shape[0], x.ndim - 2
    for axis in range(dims):
        do = _rand(g, batch, x.device) < config.flip_p
        if do.any():
            x = torch.where(_per_sample(do, x), x.flip(2 + axis), x)
            if y is not None:
                y = torch.where(_per_sample(do, y), y.flip(1 + axis), y)
    return x, y


def _rot90(x: torch.Tensor, y: torch.Tensor | None, config: AugmentConfig,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    batch, dims = x.shape[0], x.ndim - 2
    # Spatial axis pairs counted from the first spatial axis; (y, x) is the last pair.
    planes = [(dims - 2, dims - 1)]
    if dims == 3 and config.isotropic:
        planes = [(0, 1), (0, 2), (1, 2)]
    for a, b in planes:
        do = _rand(g, batch, x.device) < config.rot90_p
        square = x.shape[2 + a] == x.shape[2 + b]
        # A quarter turn of a non-square plane changes the shape; only half turns are kept.
        turns = torch.randint(1, 4 if square else 2, (batch,), generator=g, device=g.device)
        turns = turns.to(x.device) * (1 if square else 2)
        turns = torch.where(do, turns, 0)
        for k in (1, 2, 3):
            pick = turns == k
            if pick.any():
                x = torch.where(_per_sample(pick, x), torch.rot90(x, k, (2 + a, 2 + b)), x)
                if y is not None:
                    y = torch.where(_per_sample(pick, y), torch.rot90(y, k, (1 + a, 1 + b)), y)
    return x, y


def _resample(x: torch.Tensor, y: torch.Tensor | None, config: AugmentConfig,
              g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    batch, dims, spatial = x.shape[0], x.ndim - 2, tuple(x.shape[2:])
    device = x.device
    rotate = _rand(g, batch, device) < config.rotate_p
    zoom = _rand(g, batch, device) < config.zoom_p
    elastic = _rand(g, batch, device) < config.elastic_p
    todo = rotate | zoom | elastic
    if not todo.any():
        return x, y
    # The sampling map sends each output pixel (centred pixel units, axes z, y, x) to
    # matrix @ position in the input: the inverse of rotating and zooming the content.
    n_angles = 3 if dims == 3 and config.isotropic else 1
    angles = torch.deg2rad(_uniform(g, (batch, n_angles), config.rotate_range, device))
    angles = angles * rotate[:, None]
    factor = torch.exp(_uniform(g, batch, _log(config.zoom_range), device))
    factor = torch.where(zoom, factor, 1.0)
    matrix = _rotation(angles, dims) / factor[:, None, None]
    half = torch.tensor(spatial, dtype=torch.float32, device=device) / 2
    # affine_grid wants normalized coordinates ordered (x, y[, z]); with align_corners=False
    # a normalized unit is half the axis length in pixels.
    matrix = matrix.flip(1, 2) * half.flip(0)[None, None, :] / half.flip(0)[None, :, None]
    theta = torch.cat([matrix, torch.zeros(batch, dims, 1, device=device)], dim=2)
    grid = F.affine_grid(theta, [batch, 1, *spatial], align_corners=False)
    if elastic.any():
        shift = _elastic_field(g, batch, spatial, config, device) * elastic.view(-1, 1, *[1] * dims)
        shift = shift / half.view(1, dims, *[1] * dims)
        grid = grid + shift.flip(1).movedim(1, -1)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode=config.padding,
                           align_corners=False)
    x = torch.where(_per_sample(todo, x), warped, x)
    if y is not None:
        # Shifting labels by one makes both "ignore" and "outside the image" read as 0.
        moved = F.grid_sample((y + 1).unsqueeze(1).float(), grid, mode="nearest",
                              padding_mode="zeros", align_corners=False)
        moved = moved.squeeze(1).round().long() - 1
        y = torch.where(_per_sample(todo, y), moved, y)
    return x, y


def _rotation(angles: torch.Tensor, dims: int) -> torch.Tensor:
    """(B, dims, dims) rotation matrices acting on (z,) y, x pixel coordinates."""
    batch = angles.shape[0]
    eye = torch.eye(dims, device=angles.device).expand(batch, dims, dims)
    matrix = eye.clone()
    planes = [(dims - 2, dims - 1)] if angles.shape[1] == 1 else [(1, 2), (0, 2), (0, 1)]
    for i, (a, b) in enumerate(planes):
        c, s = torch.cos(angles[:, i]), torch.sin(angles[:, i])
        step = eye.clone()
        step[:, a, a], step[:, a, b], step[:, b, a], step[:, b, b] = c, -s, s, c
        matrix = step @ matrix
    return matrix


def _elastic_field(g: torch.Generator, batch: int, spatial: tuple[int, ...],
                   config: AugmentConfig, device: torch.device) -> torch.Tensor:
    """(B, dims, *spatial) smooth random displacement in pixels, axes (z,) y, x."""
    dims = len(spatial)
    coarse = [max(2, math.ceil(n / config.elastic_spacing) + 1) for n in spatial]
    nodes = torch.randn((batch, dims, *coarse), generator=g, device=g.device).to(device)
    magnitude = _uniform(g, batch, config.elastic_magnitude_range, device)
    # Bicubic (2D) keeps the field smooth between control points; 3D has only trilinear.
    mode = "bicubic" if dims == 2 else "trilinear"
    field = F.interpolate(nodes, size=spatial, mode=mode, align_corners=True)
    return field * magnitude.view(-1, 1, *[1] * dims)


# --------------------------------------------------------------------------------- helpers


def _uniform(g: torch.Generator, shape: int | tuple[int, ...], bounds: tuple[float, float],
             device: torch.device) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * _rand(g, shape, device)


def _log(bounds: tuple[float, float]) -> tuple[float, float]:
    return math.log(bounds[0]), math.log(bounds[1])


def _per_sample(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return flags.view(-1, *[1] * (like.ndim - 1))


def _check_intensity(intensity: Any, channels: int) -> list[tuple[float, float]]:
    try:
        pairs = [(float(a), float(b)) for a, b in intensity]
    except (TypeError, ValueError):
        pairs = []
    if len(pairs) != channels or not all(math.isfinite(a) and math.isfinite(b) and b > 0
                                         for a, b in pairs):
        raise ValueError(f"intensity must hold one (offset, scale > 0) pair per channel "
                         f"({channels}), got {intensity!r}")
    return pairs


def _check_inputs(image: Any, target: Any, config: Any, generator: Any) -> torch.Tensor | None:
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        raise TypeError(f"image must be a floating-point torch tensor (B, C, *spatial), "
                        f"got {getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim not in (4, 5) or image.numel() == 0:
        raise ValueError(f"image must have shape (B, C, Y, X) or (B, C, Z, Y, X), "
                         f"got {tuple(image.shape)}")
    if target is not None:
        if not isinstance(target, torch.Tensor) or target.is_floating_point() \
                or target.dtype == torch.bool or target.is_complex():
            raise TypeError(f"target must be an integer torch tensor of class indices, "
                            f"got {getattr(target, 'dtype', type(target).__name__)}")
        expected = (image.shape[0], *image.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(f"target has shape {tuple(target.shape)} but image "
                             f"{tuple(image.shape)} needs {expected}")
        if target.device != image.device:
            raise ValueError(f"target is on {target.device} but image is on {image.device}")
    if not isinstance(config, AugmentConfig):
        raise TypeError(f"config must be an AugmentConfig, got {type(config).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != image.device.type:
        raise ValueError(f"generator is on {generator.device.type} but image is on "
                         f"{image.device.type}; create it with "
                         f"torch.Generator(device=image.device)")
    return target
