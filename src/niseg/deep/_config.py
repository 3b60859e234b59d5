"""Self-configuration of a U-Net from the training data: documented rules, recorded."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._normalize import choose_normalization

#: No patch axis is smaller than this (a depth-2 net then ends at 4 px).
MIN_PATCH = 16
#: Most poolings per device kind, and the smallest bottleneck size the depth rule aims at.
#: A CPU runs a few thousand iterations in a quarter of an hour: a 3-level net on 128^2
#: patches learns in that time (EM mitochondria, 2 cores: Dice 0.874 after 2 minutes), a
#: 5-level net on 256^2 patches does not (Dice 0.323 after 2 minutes, 21 iterations).
MAX_DEPTH = {"cpu": 3, "gpu": 5}
MIN_BOTTLENECK = 4
#: Largest patch, in pixels, per (device kind, spatial dims): small nets on a CPU train
#: on 128^2 or 64^3, so that an iteration takes a fraction of a second; a GPU affords
#: 512^2 and 128^3.
PATCH_PIXELS = {("cpu", 2): 128**2, ("cpu", 3): 64**3,
                ("gpu", 2): 512**2, ("gpu", 3): 128**3}
#: Memory assumed available for one training batch when ``memory_budget_mb`` is not given.
DEFAULT_MEMORY_MB = {"cpu": 2048, "gpu": 8192}
#: Base channels per device kind.
BASE_CHANNELS = {"cpu": 16, "gpu": 32}
#: Batch sizes: at least 2 (batch normalization needs two samples), at most these.
MAX_BATCH = {"cpu": 4, "gpu": 16}
# Training memory per pixel is estimated as ~15 activation maps of `base` channels at full
# resolution (two blocks, their norms and ReLUs, the skip concatenation and the up path),
# in float32, times the sum over levels (channels double while pixels drop 4x in 2-D, 8x in
# 3-D: a factor 2 in 2-D, 4/3 in 3-D). A rough figure, deliberately on the safe side.
_MAPS_PER_PIXEL = 15
_LEVEL_FACTOR = {2: 2.0, 3: 4.0 / 3.0}


@dataclasses.dataclass(frozen=True)
class NetConfig:
    """A U-Net configuration and the rules that produced it (see :func:`configure`).

    Parameters
    ----------
    spatial_dims : int
    n_channels : int
        Input channels.
    n_classes : int
        Output classes.
    patch_size : tuple of int
        Training patch, one size per spatial axis, each a multiple of ``2 ** depth``.
    depth : int
        Poolings of the U-Net.
    base_channels : int
    batch_size : int
    normalization : str
        ``"zscore"`` or ``"percentile"`` (:class:`IntensityNormalizer`).
    spacing : tuple of float or None
        Pixel size per spatial axis used by the rules.
    device : str
    rules : tuple of str
        Each rule that fired, as a plain-English sentence for the model file.

    Examples
    --------
    >>> cfg = NetConfig(2, 1, 2, (64, 64), 3, 16, 4, "zscore", None, "cpu", ("a rule",))
    >>> NetConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> cfg.unet_params()
    {'spatial_dims': 2, 'in_channels': 1, 'out_channels': 2, 'depth': 3, 'base_channels': 16}
    """

    spatial_dims: int
    n_channels: int
    n_classes: int
    patch_size: tuple[int, ...]
    depth: int
    base_channels: int
    batch_size: int
    normalization: str
    spacing: tuple[float, ...] | None
    device: str
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["patch_size"] = list(self.patch_size)
        out["spacing"] = None if self.spacing is None else list(self.spacing)
        out["rules"] = list(self.rules)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetConfig:
        """Rebuild from :meth:`to_dict`'s output."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a NetConfig dict is needed, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"the network configuration is missing '{missing[0]}'")
        values = {n: data[n] for n in names}
        values["patch_size"] = tuple(int(s) for s in values["patch_size"])
        if values["spacing"] is not None:
            values["spacing"] = tuple(float(s) for s in values["spacing"])
        values["rules"] = tuple(str(r) for r in values["rules"])
        return cls(**values)

    def unet_params(self) -> dict[str, int]:
        """Keyword arguments of :class:`UNet` this configuration fixes."""
        return {"spatial_dims": self.spatial_dims, "in_channels": self.n_channels,
                "out_channels": self.n_classes, "depth": self.depth,
                "base_channels": self.base_channels}


def configure(
    shapes: Sequence[Sequence[int]],
    *,
    spatial_dims: int,
    n_channels: int = 1,
    n_classes: int = 2,
    spacing: Sequence[float] | None = None,
    device: str = "cpu",
    memory_budget_mb: float | None = None,
    images: Any = None,
) -> NetConfig:
    """Choose patch size, depth, width, batch size and normalization for the training data.

    The rules, sized for small data sets and CPUs (each one that fires is recorded in
    ``NetConfig.rules``):

    1. *Memory.* Training needs about ``15 * base_channels * 4`` bytes per pixel times 2
       (2-D) or 4/3 (3-D) for the deeper levels. The batch budget is
       ``memory_budget_mb`` (default 2048 MB on a CPU, 8192 MB on a GPU).
    2. *Patch size.* Start from the smallest training extent per axis and shrink, 16 px at a
       time, the axis of largest physical extent (pixels times ``spacing``; on ties the
       coarser axis) until the patch has at most 128^2 (2-D) or 64^3 (3-D) pixels on a
       CPU, 512^2 or 128^3 on a GPU, and half the batch budget. Coarse axes of anisotropic
       data thus get fewer pixels. No axis goes below 16 px; an image smaller than that is
       refused.
    3. *Depth.* Pool while the smallest patch axis stays at least 4 px at the bottleneck,
       at most 3 times on a CPU (a shallow net learns within a CPU's few thousand
       iterations) and 5 times on a GPU; then round every patch axis down to a multiple of
       ``2 ** depth``.
    4. *Width.* 16 base channels on a CPU, 32 on a GPU.
    5. *Batch size.* As many patches as the budget holds, at least 2, at most 4 on a CPU
       (more samples per step do not make a CPU faster) and 16 on a GPU.
    6. *Normalization.* :func:`choose_normalization` on ``images`` when given (percentile
       clipping for floating-point data with heavy tails, z-score otherwise); z-score
       without images.

    Parameters
    ----------
    shapes : sequence of tuple of int
        Spatial shape of every training image (``spatial_dims`` sizes each); one tuple of
        ints is read as one image.
    spatial_dims : {2, 3}
    n_channels : int
        Input channels.
    n_classes : int
        Output classes (at least 2).
    spacing : sequence of float, optional
        Pixel size per spatial axis (any unit); ``None`` means isotropic.
    device : str
        ``"cpu"``, or a GPU device (``"cuda"``, ``"cuda:1"``, ``"mps"``).
    memory_budget_mb : float, optional
        Memory for one training batch in MB (default per device, rule 1).
    images : ndarray or list of ndarray, optional
        The training images, for the normalization rule.

    Returns
    -------
    NetConfig

    Examples
    --------
    >>> cfg = configure([(768, 512)], spatial_dims=2)
    >>> cfg.patch_size, cfg.depth, cfg.base_channels, cfg.batch_size, cfg.normalization
    ((128, 128), 3, 16, 4, 'zscore')
    >>> configure([(64, 256, 256)], spatial_dims=3, spacing=(4, 1, 1)).patch_size
    (16, 128, 128)
    """
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    shape_list = _shapes(shapes, spatial_dims)
    for name, value, low in (("n_channels", n_channels, 1), ("n_classes", n_classes, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    spacing_t = _spacing(spacing, spatial_dims)
    if not isinstance(device, str) or not device:
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    kind = "cpu" if device.split(":")[0] == "cpu" else "gpu"
    if memory_budget_mb is not None and (isinstance(memory_budget_mb, bool)
                                         or not isinstance(memory_budget_mb, (int, float))
                                         or not memory_budget_mb > 0):
        raise ValueError(f"memory_budget_mb must be a positive number, got "
                         f"{memory_budget_mb!r}")
    rules: list[str] = []

    base = BASE_CHANNELS[kind]
    rules.append(f"base channels {base}: the default for a {kind.upper()}")
    budget_mb = DEFAULT_MEMORY_MB[kind] if memory_budget_mb is None else float(memory_budget_mb)
    bytes_per_pixel = _MAPS_PER_PIXEL * base * 4 * _LEVEL_FACTOR[spatial_dims]
    batch_pixels = budget_mb * 2**20 / bytes_per_pixel
    rules.append(f"memory: about {bytes_per_pixel / 1024:.3g} kB per training pixel, "
                 f"{budget_mb:g} MB per batch ({'given' if memory_budget_mb else 'default'} "
                 f"for a {kind.upper()})")

    extent = tuple(min(s[a] for s in shape_list) for a in range(spatial_dims))
    small = [a for a in range(spatial_dims) if extent[a] < MIN_PATCH]
    if small:
        raise ValueError(f"the training images are only {extent[small[0]]} px along axis "
                         f"{small[0]} (smallest shape {extent}) but a U-Net patch needs at "
                         f"least {MIN_PATCH} px per axis")
    cap = min(PATCH_PIXELS[kind, spatial_dims], batch_pixels / 2)
    patch = list(extent)
    physical = spacing_t or (1.0,) * spatial_dims
    while math.prod(patch) > cap:
        shrinkable = [a for a in range(spatial_dims) if patch[a] > MIN_PATCH]
        if not shrinkable:
            break
        axis = max(shrinkable, key=lambda a: (patch[a] * physical[a], physical[a], -a))
        patch[axis] = max(MIN_PATCH, (patch[axis] - 1) // MIN_PATCH * MIN_PATCH)
    cap_text = "^".join([str(round(PATCH_PIXELS[kind, spatial_dims] ** (1 / spatial_dims))),
                         str(spatial_dims)])
    if tuple(patch) == extent:
        rules.append(f"patch: the whole smallest training extent {extent} fits the "
                     f"{cap_text}-pixel limit and the memory budget")
    else:
        how = (" shrinking the axis of largest physical extent (spacing "
               f"{spacing_t}) first" if spacing_t else " shrinking the longest axis first")
        rules.append(f"patch: smallest training extent {extent} reduced to {tuple(patch)} "
                     f"to fit {min(cap, PATCH_PIXELS[kind, spatial_dims]):.0f} pixels "
                     f"(limit {cap_text} on a {kind.upper()}, half the batch budget),{how}")

    smallest = min(patch)
    most = MAX_DEPTH[kind]
    depth = 1
    while depth < most and smallest // 2 ** (depth + 1) >= MIN_BOTTLENECK:
        depth += 1
    multiple = 2**depth
    rounded = tuple(p // multiple * multiple for p in patch)
    rules.append(f"depth {depth}: pooling stops when the smallest patch axis ({smallest} px) "
                 f"would fall below {MIN_BOTTLENECK} px at the bottleneck, or at {most} "
                 f"poolings on a {kind.upper()}; patch rounded to multiples of {multiple}: "
                 f"{rounded}")

    per_patch = math.prod(rounded)
    fit = int(batch_pixels // per_patch)
    batch = max(2, min(MAX_BATCH[kind], fit))
    rules.append(f"batch size {batch}: {fit} patches fit the memory budget, at least 2 and "
                 f"at most {MAX_BATCH[kind]} on a {kind.upper()}")

    if images is None:
        method = "zscore"
        rules.append("normalization z-score: no training images given to the rule")
    else:
        method, reason = choose_normalization(images)
        rules.append(f"normalization {reason}")
    return NetConfig(spatial_dims=int(spatial_dims), n_channels=int(n_channels),
                     n_classes=int(n_classes), patch_size=rounded, depth=depth,
                     base_channels=base, batch_size=batch, normalization=method,
                     spacing=spacing_t, device=device, rules=tuple(rules))


def _shapes(shapes: Any, spatial_dims: int) -> list[tuple[int, ...]]:
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or not shapes:
        raise TypeError("shapes must be a list of image shapes (tuples of ints)")
    if all(isinstance(s, (int, np.integer)) for s in shapes):
        shapes = [shapes]
    out = []
    for i, shape in enumerate(shapes):
        if not isinstance(shape, Sequence) or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
            raise TypeError(f"shapes[{i}] must be a tuple of ints, got {shape!r}")
        if len(shape) != spatial_dims:
            raise ValueError(f"shapes[{i}] is {tuple(shape)} but spatial_dims is "
                             f"{spatial_dims}")
        out.append(tuple(int(s) for s in shape))
    return out


def _spacing(spacing: Any, spatial_dims: int) -> tuple[float, ...] | None:
    if spacing is None:
        return None
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise TypeError(f"spacing must be a sequence of {spatial_dims} numbers, got "
                        f"{spacing!r}") from None
    if len(values) != spatial_dims or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be {spatial_dims} positive numbers, got {spacing!r}")
    return values
