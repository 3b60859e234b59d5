"""FeatureSpec: which filters at which scales, and the extras, as a small frozen record."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

#: Filter names of the bank, in the order their columns appear.
FILTERS = ("gaussian", "log", "gradient", "dog", "structure", "hessian")

#: ilastik's scales (pixels).
ILASTIK_SCALES = (0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0)

#: Local statistics in a window, in the order their columns appear.
LOCAL_STATS = ("mean", "variance", "min", "max", "median")

#: Ratio of the wider Gaussian of the difference of Gaussians G(s) - G(DOG_RATIO s); the
#: same as :func:`niseg.features.pixel_features` uses, so the two agree.
DOG_RATIO = 1.6

#: SciPy's default Gaussian truncation: kernel radius = int(TRUNCATE * sigma + 0.5).
TRUNCATE = 4.0

_PRESETS = ("ilastik", "fast")
_FAST_SCALES = (1.0, 3.5, 10.0)
_FAST_FILTERS = ("gaussian", "log", "gradient")


def kernel_radius(sigma: float) -> int:
    """Radius in pixels of SciPy's Gaussian kernel (any derivative order) for ``sigma``."""
    return int(TRUNCATE * float(sigma) + 0.5)


def _components(name: str, ndim: int) -> int:
    return ndim if name in ("structure", "hessian") else 1


@dataclass(frozen=True)
class FeatureSpec:
    """Filters x scales and the extra per-pixel features that :func:`compute_features` stacks.

    Parameters
    ----------
    filters : sequence of str
        Names from :data:`FILTERS`: ``gaussian`` (smoothing), ``log`` (Laplacian of
        Gaussian), ``gradient`` (Gaussian gradient magnitude), ``dog`` (difference of
        Gaussians ``G(s) - G(1.6 s)``), ``structure`` (structure-tensor eigenvalues,
        derivatives at ``s``, tensor smoothed at ``structure_outer * s``), ``hessian``
        (Hessian-of-Gaussian eigenvalues). Eigenvalues are sorted descending. Columns follow
        the order of :data:`FILTERS` whatever the order given.
    scales : sequence of float
        Gaussian sigmas in pixels (of the finest axis for anisotropic voxels); ilastik's
        seven by default.
    raw : bool
        Include the intensity itself.
    position : bool
        Include the pixel coordinates (in ``spacing`` units).
    local_stats : sequence of str
        Subset of :data:`LOCAL_STATS` computed in a ``window``-wide cube.
    window : int
        Odd window width in pixels for ``local_stats``.
    neighbourhood : int
        Radius ``r`` of the raw neighbourhood: the intensities at every offset within
        ``r`` pixels along each axis (``(2r + 1)**ndim - 1`` shifted copies).
    structure_outer : float
        Outer (tensor smoothing) sigma of the structure tensor as a multiple of the scale;
        0.5 as in ilastik (inner scale ``s``, outer scale ``0.5 s``).

    Examples
    --------
    >>> from niseg.features import FeatureSpec
    >>> spec = FeatureSpec.preset("fast")
    >>> spec.filters, spec.scales, spec.halo
    (('gaussian', 'log', 'gradient'), (1.0, 3.5, 10.0), 40)
    >>> spec.n_features(n_channels=1, ndim=2)
    10
    >>> FeatureSpec.from_dict(spec.to_dict()) == spec
    True
    """

    filters: tuple[str, ...] = FILTERS
    scales: tuple[float, ...] = ILASTIK_SCALES
    raw: bool = True
    position: bool = False
    local_stats: tuple[str, ...] = ()
    window: int = 5
    neighbourhood: int = 0
    structure_outer: float = 0.5

    def __post_init__(self) -> None:
        filters = _names(self.filters, FILTERS, "filters")
        set_ = object.__setattr__
        set_(self, "filters", tuple(f for f in FILTERS if f in filters))
        set_(self, "local_stats",
             tuple(s for s in LOCAL_STATS if s in _names(self.local_stats, LOCAL_STATS,
                                                         "local_stats")))
        scales = self.scales
        if isinstance(scales, (int, float)):
            scales = (scales,)
        try:
            values = tuple(float(s) for s in scales)
        except (TypeError, ValueError):
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}") from None
        if not all(math.isfinite(s) and s > 0 for s in values):
            raise ValueError(f"scales must be positive numbers, got {self.scales!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"scales lists a scale twice: {self.scales!r}")
        if self.filters and not values:
            raise ValueError("scales is empty but filters are chosen; give at least one scale")
        set_(self, "scales", values)
        for name in ("raw", "position"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
            set_(self, name, bool(getattr(self, name)))
        window = self.window
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or (
                window < 1 or window % 2 == 0):
            raise ValueError(f"window must be an odd positive integer, got {window!r}")
        set_(self, "window", int(window))
        r = self.neighbourhood
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
            raise ValueError(f"neighbourhood must be a non-negative integer radius, got {r!r}")
        set_(self, "neighbourhood", int(r))
        try:
            outer = float(self.structure_outer)
        except (TypeError, ValueError):
            outer = float("nan")
        if not (math.isfinite(outer) and outer > 0):
            raise ValueError(f"structure_outer must be a positive number, got "
                             f"{self.structure_outer!r}")
        set_(self, "structure_outer", outer)
        if not (self.filters or self.raw or self.position or self.local_stats
                or self.neighbourhood):
            raise ValueError("the feature spec selects no feature; choose filters, raw, "
                             "position, local_stats or neighbourhood")

    @classmethod
    def preset(cls, name: str) -> FeatureSpec:
        """A named spec: ``ilastik`` (all filters x all ilastik scales, plus the intensity)
        or ``fast`` (intensity, Gaussian, LoG and gradient magnitude at 1, 3.5 and 10).

        Examples
        --------
        >>> from niseg.features import FeatureSpec
        >>> FeatureSpec.preset("ilastik").n_features(n_channels=1, ndim=2)
        57
        """
        key = str(name).strip().lower()
        if key == "ilastik":
            return cls()
        if key == "fast":
            return cls(filters=_FAST_FILTERS, scales=_FAST_SCALES)
        raise ValueError(f"unknown feature preset {name!r}; choose from {', '.join(_PRESETS)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; :meth:`from_dict` rebuilds an equal spec."""
        d = asdict(self)
        for key in ("filters", "scales", "local_stats"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Spec from a dict written by :meth:`to_dict` (unknown keys are an error)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"feature spec must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"feature spec has unknown keys {unknown}; expected some of "
                             f"{sorted(known)}")
        kwargs = dict(data)
        for key in ("filters", "scales", "local_stats"):
            if key in kwargs:
                value = kwargs[key]
                kwargs[key] = (value,) if isinstance(value, (str, int, float)) else tuple(value)
        return cls(**kwargs)

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels for isotropic pixels (an upper bound per axis
        for any ``spacing``): features of a crop padded by ``halo`` equal the full image's
        features in the crop's core exactly."""
        return max(self.halo_per_axis(None, 1))

    def halo_per_axis(self, spacing: Sequence[float] | None, ndim: int, *,
                      columns: Sequence[int] | None = None,
                      n_channels: int = 1) -> tuple[int, ...]:
        """Receptive-field radius in pixels along each of ``ndim`` axes for voxel ``spacing``
        (sigmas shrink on coarser axes, see :func:`compute_features`).

        Parameters
        ----------
        spacing : sequence of float or None
            Pixel size along each spatial axis (``None``: isotropic).
        ndim : int
            Number of spatial axes, 2 or 3.
        columns : sequence of int, optional
            Only these columns (indices into ``names(n_channels, ndim)``); a subset of
            small-scale columns needs a smaller halo. All columns by default.
        n_channels : int
            Number of channels, to interpret ``columns``.

        Returns
        -------
        tuple of int
            One radius per axis; 0 where no selected column looks at neighbours.

        Examples
        --------
        >>> from niseg.features import FeatureSpec
        >>> FeatureSpec(filters=("gaussian",), scales=(2.0,)).halo_per_axis((2.0, 1.0, 1.0), 3)
        (4, 8, 8)
        >>> spec = FeatureSpec.preset("ilastik")
        >>> spec.halo_per_axis(None, 2), spec.halo_per_axis(None, 2, columns=[0, 1, 8])
        ((64, 64), (1, 1))
        """
        layout = column_layout(self, n_channels, ndim)
        picked = layout if columns is None else [layout[i] for i in
                                                 check_columns(columns, len(layout))]
        relative = relative_spacing(spacing, ndim)
        return tuple(max((self._column_reach(col, axis, relative[axis]) for col in picked),
                         default=0) for axis in range(ndim))

    def _column_reach(self, column: tuple, axis: int, relative: float) -> int:
        kind = column[0]
        if kind == "filter":
            _, _, name, j, _ = column
            sa = self.scales[j] / relative
            if name == "dog":
                return max(kernel_radius(sa), kernel_radius(DOG_RATIO * sa))
            if name == "structure":
                return kernel_radius(sa) + kernel_radius(self.structure_outer * sa)
            return kernel_radius(sa)
        if kind == "stat":
            return self.window // 2
        if kind == "shift":
            return abs(column[2][axis])
        return 0

    def n_features(self, n_channels: int = 1, ndim: int = 2) -> int:
        """Number of feature columns for ``n_channels`` channels of a ``ndim``-D image."""
        return len(self.names(n_channels, ndim))

    def names(self, n_channels: int = 1, ndim: int = 2) -> list[str]:
        """Column names, e.g. ``"raw"``, ``"hessian s=1 e2"``, ``"ch2 log s=3.5"``,
        ``"shift -1,0"``, ``"position y"``."""
        if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or (
                n_channels < 1):
            raise ValueError(f"n_channels must be a positive integer, got {n_channels!r}")
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        out: list[str] = []
        for c in range(n_channels):
            prefix = f"ch{c + 1} " if n_channels > 1 else ""
            if self.raw:
                out.append(f"{prefix}raw")
            for f in self.filters:
                k = _components(f, ndim)
                for s in self.scales:
                    if k == 1:
                        out.append(f"{prefix}{f} s={s:g}")
                    else:
                        out.extend(f"{prefix}{f} s={s:g} e{i + 1}" for i in range(k))
            out.extend(f"{prefix}{stat} w={self.window}" for stat in self.local_stats)
            out.extend(f"{prefix}shift " + ",".join(str(o) for o in off)
                       for off in neighbour_offsets(self.neighbourhood, ndim))
        if self.position:
            out.extend(f"position {a}" for a in "yxz"[:ndim])
        return out


def column_layout(spec: FeatureSpec, n_channels: int, ndim: int) -> list[tuple]:
    """What each column of ``spec.names(n_channels, ndim)`` is, in the same order.

    Entries are ``("raw", c)``, ``("filter", c, name, scale_index, component)``,
    ``("stat", c, stat)``, ``("shift", c, offset)`` and ``("position", axis)``.
    """
    out: list[tuple] = []
    for c in range(n_channels):
        if spec.raw:
            out.append(("raw", c))
        for f in spec.filters:
            k = _components(f, ndim)
            for j in range(len(spec.scales)):
                out.extend(("filter", c, f, j, i) for i in range(k))
        out.extend(("stat", c, stat) for stat in spec.local_stats)
        out.extend(("shift", c, off) for off in neighbour_offsets(spec.neighbourhood, ndim))
    if spec.position:
        out.extend(("position", a) for a in range(ndim))
    return out


def check_columns(columns: Sequence[int], n_features: int) -> list[int]:
    """``columns`` as a list of ints in ``[0, n_features)``, or a ValueError naming them."""
    if isinstance(columns, (str, bytes)) or not hasattr(columns, "__len__"):
        raise TypeError(f"columns must be a sequence of integers, got {columns!r}")
    values = np.asarray(columns)
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise TypeError(f"columns must be a sequence of integers, got {columns!r}")
    if values.size == 0:
        raise ValueError("columns is empty; give at least one feature column")
    if values.min() < 0 or values.max() >= n_features:
        raise ValueError(f"columns must be indices in 0..{n_features - 1} (the spec has "
                         f"{n_features} features), got {values.min()}..{values.max()}")
    return [int(v) for v in values]


def neighbour_offsets(radius: int, ndim: int) -> list[tuple[int, ...]]:
    """All offsets within ``radius`` along each axis except the centre, in C order."""
    if radius <= 0:
        return []
    grid = np.indices((2 * radius + 1,) * ndim).reshape(ndim, -1).T - radius
    return [tuple(int(v) for v in row) for row in grid if np.any(row)]


def relative_spacing(spacing: Sequence[float] | None, ndim: int) -> np.ndarray:
    """Pixel size along each axis relative to the finest axis (all ones when ``None``)."""
    if spacing is None:
        return np.ones(ndim)
    try:
        values = np.asarray(spacing, dtype=float).ravel()
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.size != ndim or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing must be {ndim} positive numbers (one per image axis), "
                         f"got {spacing!r}")
    return values / values.min()


def _names(value: Any, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(str(v).strip().lower() for v in value)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of names, got {value!r}") from None
    for n in names:
        if n not in allowed:
            raise ValueError(f"unknown {what} entry {n!r}; choose from {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} lists a name twice: {value!r}")
    return names
