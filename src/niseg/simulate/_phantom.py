"""Phantoms: simple solids in physical units, their projected thickness maps and exact truth.

Geometry conventions (all lengths in cm):

- The beam travels along the viewing direction; a shape's *projected thickness* ``d(y, x)``
  is the length of the beam path inside it.
- Positions are ``(y, x)`` in the phantom's field of view, measured from its top-left
  corner, ``y`` down (rows) and ``x`` right (columns), as an image is displayed.
- A detector grid of ``(M, N)`` pixels of size ``(py, px)`` is centred on the centre of the
  field of view; pixel ``(i, j)`` samples the point
  ``(cy + (i + 0.5 - M / 2) * py, cx + (j + 0.5 - N / 2) * px)``. When
  ``M * py`` equals the field-of-view height this is ``((i + 0.5) * py, ...)``.
- Shapes are open sets: a point exactly on an outline is outside (thickness 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._materials import attenuation_coefficient, get_material

__all__ = ["Cylinder", "Phantom", "Plate", "Sphere", "default_phantom"]


def _positive(owner: str, name: str, value: Any) -> float:
    name = f"{owner} {name}".strip()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number of cm, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number of cm, got {value!r}")
    return float(value)


def _pair(owner: str, name: str, value: Any, *, positive: bool) -> tuple[float, float]:
    label = f"{owner} {name}".strip()
    kind = "positive finite" if positive else "finite"
    expected = f"{label} must be a pair of {kind} numbers (y, x) in cm"
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{expected}, got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"{expected}, got {value!r}")
    try:
        y, x = (float(v) for v in items)
    except (TypeError, ValueError):
        raise TypeError(f"{expected}, got {value!r}") from None
    if not (math.isfinite(y) and math.isfinite(x)) or (positive and (y <= 0 or x <= 0)):
        raise ValueError(f"{expected}, got {value!r}")
    return (y, x)


def _init_common(shape: Any) -> None:
    # Frozen dataclasses: normalise fields in place once, at construction.
    owner = type(shape).__name__
    object.__setattr__(shape, "material", get_material(shape.material).name)
    object.__setattr__(shape, "centre", _pair(owner, "centre", shape.centre, positive=False))


def _inner_radius(owner: str, inner: Any, radius: float) -> float:
    if isinstance(inner, bool) or not isinstance(inner, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner} inner_radius must be a number of cm, got {type(inner).__name__}")
    if not (math.isfinite(inner) and 0 <= inner < radius):
        raise ValueError(f"{owner} inner_radius must be at least 0 and smaller than the radius "
                         f"{radius!r} cm, got {inner!r}")
    return float(inner)


@dataclass(frozen=True, kw_only=True)
class Cylinder:
    """A cylinder (or tube) seen along its axis: a disc (or ring) of constant thickness.

    Parameters
    ----------
    material : str
        Material name (see :data:`niseg.simulate.MATERIALS`).
    centre : (float, float)
        Position ``(y, x)`` of the axis in the field of view, in cm.
    radius : float
        Outer radius in cm.
    thickness : float
        Length of the cylinder along the beam in cm.
    inner_radius : float, optional
        Radius of a coaxial bore in cm (0 = solid); the bore is empty.

    Examples
    --------
    >>> from niseg.simulate import Cylinder
    >>> rod = Cylinder(material="iron", centre=(1.0, 1.0), radius=0.5, thickness=2.0)
    >>> rod.projected_thickness([1.0, 1.4, 1.6], [1.0, 1.0, 1.0])
    array([2., 2., 0.])
    """

    material: str
    centre: tuple[float, float]
    radius: float
    thickness: float
    inner_radius: float = 0.0

    def __post_init__(self) -> None:
        _init_common(self)
        object.__setattr__(self, "radius", _positive("Cylinder", "radius", self.radius))
        object.__setattr__(self, "thickness", _positive("Cylinder", "thickness", self.thickness))
        object.__setattr__(self, "inner_radius",
                           _inner_radius("Cylinder", self.inner_radius, self.radius))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(ymin, ymax, xmin, xmax)`` of the outline in cm."""
        cy, cx = self.centre
        return (cy - self.radius, cy + self.radius, cx - self.radius, cx + self.radius)

    def projected_thickness(self, y: Any, x: Any) -> np.ndarray:
        """Beam path length in cm through the cylinder at points ``(y, x)`` (broadcast, cm)."""
        r2 = (np.asarray(y, dtype=np.float64) - self.centre[0]) ** 2 + (
            np.asarray(x, dtype=np.float64) - self.centre[1]) ** 2
        inside = (r2 < self.radius**2) & (r2 >= self.inner_radius**2)
        return np.where(inside, self.thickness, 0.0)


@dataclass(frozen=True, kw_only=True)
class Sphere:
    """A sphere (or spherical shell): projected thickness ``2 sqrt(R^2 - r^2)``.

    Parameters
    ----------
    material : str
        Material name (see :data:`niseg.simulate.MATERIALS`).
    centre : (float, float)
        Position ``(y, x)`` of the centre in the field of view, in cm.
    radius : float
        Outer radius ``R`` in cm.
    inner_radius : float, optional
        Radius ``Ri`` of an empty concentric cavity in cm (0 = solid); a shell projects to
        ``2 sqrt(R^2 - r^2) - 2 sqrt(max(Ri^2 - r^2, 0))``. Fill the cavity with a second
        sphere of radius ``Ri`` to model a filled container.

    Examples
    --------
    >>> from niseg.simulate import Sphere
    >>> ball = Sphere(material="water", centre=(0.0, 0.0), radius=0.5)
    >>> ball.projected_thickness([0.0, 0.3, 0.5], 0.0)
    array([1. , 0.8, 0. ])
    """

    material: str
    centre: tuple[float, float]
    radius: float
    inner_radius: float = 0.0

    def __post_init__(self) -> None:
        _init_common(self)
        object.__setattr__(self, "radius", _positive("Sphere", "radius", self.radius))
        object.__setattr__(self, "inner_radius",
                           _inner_radius("Sphere", self.inner_radius, self.radius))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(ymin, ymax, xmin, xmax)`` of the outline in cm."""
        cy, cx = self.centre
        return (cy - self.radius, cy + self.radius, cx - self.radius, cx + self.radius)

    def projected_thickness(self, y: Any, x: Any) -> np.ndarray:
        """Beam path length in cm through the sphere at points ``(y, x)`` (broadcast, cm)."""
        r2 = (np.asarray(y, dtype=np.float64) - self.centre[0]) ** 2 + (
            np.asarray(x, dtype=np.float64) - self.centre[1]) ** 2
        outer = 2.0 * np.sqrt(np.maximum(self.radius**2 - r2, 0.0))
        if self.inner_radius == 0.0:
            return outer
        return outer - 2.0 * np.sqrt(np.maximum(self.inner_radius**2 - r2, 0.0))


@dataclass(frozen=True, kw_only=True)
class Plate:
    """A rectangular plate (box) facing the beam: a rectangle of constant thickness.

    Parameters
    ----------
    material : str
        Material name (see :data:`niseg.simulate.MATERIALS`).
    centre : (float, float)
        Position ``(y, x)`` of the centre in the field of view, in cm.
    half_size : (float, float)
        Half height and half width ``(hy, hx)`` of the rectangle in cm, before rotation.
    thickness : float
        Thickness along the beam in cm.
    angle_deg : float, optional
        Rotation of the rectangle in degrees, counter-clockwise as the image is displayed
        (``y`` pointing down).

    Examples
    --------
    >>> from niseg.simulate import Plate
    >>> bar = Plate(material="aluminium", centre=(1.0, 1.0), half_size=(0.1, 0.5),
    ...             thickness=0.3, angle_deg=90.0)
    >>> bar.projected_thickness([1.0, 1.4, 1.0], [1.0, 1.0, 1.4])
    array([0.3, 0.3, 0. ])
    """

    material: str
    centre: tuple[float, float]
    half_size: tuple[float, float]
    thickness: float
    angle_deg: float = 0.0

    def __post_init__(self) -> None:
        _init_common(self)
        object.__setattr__(self, "half_size",
                           _pair("Plate", "half_size", self.half_size, positive=True))
        object.__setattr__(self, "thickness", _positive("Plate", "thickness", self.thickness))
        angle = self.angle_deg
        if isinstance(angle, bool) or not isinstance(angle, (int, float, np.integer, np.floating)):
            raise TypeError(f"Plate angle_deg must be a number of degrees, "
                            f"got {type(angle).__name__}")
        if not math.isfinite(angle):
            raise ValueError(f"Plate angle_deg must be a finite number of degrees, got {angle!r}")
        object.__setattr__(self, "angle_deg", float(angle))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(ymin, ymax, xmin, xmax)`` of the rotated outline in cm."""
        (cy, cx), (hy, hx) = self.centre, self.half_size
        theta = math.radians(self.angle_deg)
        c, s = abs(math.cos(theta)), abs(math.sin(theta))
        ey, ex = hx * s + hy * c, hx * c + hy * s
        return (cy - ey, cy + ey, cx - ex, cx + ex)

    def projected_thickness(self, y: Any, x: Any) -> np.ndarray:
        """Beam path length in cm through the plate at points ``(y, x)`` (broadcast, cm)."""
        dy = np.asarray(y, dtype=np.float64) - self.centre[0]
        dx = np.asarray(x, dtype=np.float64) - self.centre[1]
        theta = math.radians(self.angle_deg)
        c, s = math.cos(theta), math.sin(theta)
        # Local axes of the plate; with y pointing down a counter-clockwise turn maps the
        # plate's width axis to (dx, dy) = (cos, -sin).
        u = dx * c - dy * s
        v = dx * s + dy * c
        inside = (np.abs(u) < self.half_size[1]) & (np.abs(v) < self.half_size[0])
        return np.where(inside, self.thickness, 0.0)


Shape = Cylinder | Sphere | Plate
_SHAPE_TYPES: dict[str, type] = {"Cylinder": Cylinder, "Sphere": Sphere, "Plate": Plate}


def _grid_spec(shape: Any, pixel_size_cm: Any) -> tuple[tuple[int, int], tuple[float, float]]:
    try:
        dims = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair of pixel counts (M, N), got {shape!r}") from None
    if len(dims) != 2 or min(dims) < 1 or dims != tuple(shape):
        raise ValueError(f"shape must be a pair of positive pixel counts (M, N), got {shape!r}")
    if isinstance(pixel_size_cm, (int, float, np.integer, np.floating)):
        pixel = (_positive("", "pixel_size_cm", pixel_size_cm),) * 2
    else:
        pixel = _pair("", "pixel_size_cm", pixel_size_cm, positive=True)
    return (dims[0], dims[1]), pixel


@dataclass(frozen=True, kw_only=True)
class Phantom:
    """A set of solids in a field of view, with exact projected thickness and truth.

    Parameters
    ----------
    shapes : sequence of Cylinder, Sphere or Plate
        The solids; overlapping shapes lie at different depths along the beam, so their
        thicknesses add (Beer–Lambert sums ``mu * d`` over shapes).
    field_of_view_cm : float or (float, float)
        Height and width of the field of view in cm; a detector grid is centred on it.

    Notes
    -----
    Classes ``1..K`` are the distinct materials in order of first appearance in
    ``shapes`` (:attr:`classes`); 0 is open beam. The truth label of a pixel is the class
    of the shape whose projected thickness at the pixel *centre* is > 0 and whose
    attenuation ``mu * d`` there is the largest; ties go to the shape listed first.

    Examples
    --------
    >>> from niseg.simulate import Cylinder, Phantom, Plate
    >>> phantom = Phantom(shapes=[
    ...     Plate(material="aluminium", centre=(0.5, 0.5), half_size=(0.4, 0.4), thickness=1.0),
    ...     Cylinder(material="iron", centre=(0.5, 0.5), radius=0.2, thickness=1.0)],
    ...     field_of_view_cm=1.0)
    >>> phantom.classes
    ('aluminium', 'iron')
    >>> labels, names = phantom.truth((10, 10), 0.1)
    >>> labels[5, 5].item(), labels[2, 2].item(), labels[0, 0].item()
    (2, 1, 0)
    """

    shapes: tuple[Shape, ...] = field(default=())
    field_of_view_cm: tuple[float, float] = (2.56, 2.56)

    def __post_init__(self) -> None:
        shapes = self.shapes
        if isinstance(shapes, (Cylinder, Sphere, Plate)) or not isinstance(shapes, Sequence):
            raise TypeError("Phantom shapes must be a sequence of Cylinder, Sphere or Plate, "
                            f"got {type(shapes).__name__}")
        for item in shapes:
            if not isinstance(item, (Cylinder, Sphere, Plate)):
                raise TypeError("Phantom shapes must contain only Cylinder, Sphere or Plate, "
                                f"got {type(item).__name__}")
        object.__setattr__(self, "shapes", tuple(shapes))
        fov = self.field_of_view_cm
        if isinstance(fov, (int, float, np.integer, np.floating)) and not isinstance(fov, bool):
            fov = (fov, fov)
        object.__setattr__(self, "field_of_view_cm",
                           _pair("Phantom", "field_of_view_cm", fov, positive=True))

    @property
    def classes(self) -> tuple[str, ...]:
        """Material names of classes ``1..K`` (first appearance in :attr:`shapes`)."""
        return tuple(dict.fromkeys(s.material for s in self.shapes))

    def _pixel_centres(self, shape: tuple[int, int], pixel: tuple[float, float]
                       ) -> tuple[np.ndarray, np.ndarray]:
        (m, n), (py, px) = shape, pixel
        cy, cx = self.field_of_view_cm[0] / 2.0, self.field_of_view_cm[1] / 2.0
        ys = cy + (np.arange(m) + 0.5 - m / 2.0) * py
        xs = cx + (np.arange(n) + 0.5 - n / 2.0) * px
        return ys, xs

    def _rasterize(self, shape: tuple[int, int], pixel: tuple[float, float]
                   ) -> Iterator[tuple[Shape, tuple[slice, slice], np.ndarray]]:
        """Yield each shape's thickness (float64, cm) on the pixels of its bounding box."""
        ys, xs = self._pixel_centres(shape, pixel)
        for item in self.shapes:
            ymin, ymax, xmin, xmax = item.bounds
            # Pixel range whose centres can fall inside; one pixel of slack covers rounding,
            # the exact inside test of the shape decides.
            i0 = max(math.floor((ymin - ys[0]) / pixel[0]) - 1, 0)
            i1 = min(math.ceil((ymax - ys[0]) / pixel[0]) + 2, shape[0])
            j0 = max(math.floor((xmin - xs[0]) / pixel[1]) - 1, 0)
            j1 = min(math.ceil((xmax - xs[0]) / pixel[1]) + 2, shape[1])
            if i0 >= i1 or j0 >= j1:
                continue
            local = item.projected_thickness(ys[i0:i1, None], xs[None, j0:j1])
            yield item, (slice(i0, i1), slice(j0, j1)), local

    def thickness_maps(self, shape: tuple[int, int], pixel_size_cm: float | tuple[float, float]
                       ) -> dict[str, np.ndarray]:
        """Projected thickness of each material at the pixel centres of a detector grid.

        Parameters
        ----------
        shape : (int, int)
            Detector size ``(M, N)`` in pixels.
        pixel_size_cm : float or (float, float)
            Pixel size ``(py, px)`` in cm.

        Returns
        -------
        dict of str to (M, N) float32 ndarray
            Summed thickness in cm of all shapes of each material, keyed by material name
            in class order.

        Examples
        --------
        >>> from niseg.simulate import Phantom, Sphere
        >>> phantom = Phantom(shapes=[Sphere(material="water", centre=(0.5, 0.5),
        ...                                  radius=0.25)], field_of_view_cm=1.0)
        >>> maps = phantom.thickness_maps((4, 4), 0.25)
        >>> maps["water"].round(3)
        array([[0.   , 0.   , 0.   , 0.   ],
               [0.   , 0.354, 0.354, 0.   ],
               [0.   , 0.354, 0.354, 0.   ],
               [0.   , 0.   , 0.   , 0.   ]], dtype=float32)
        """
        dims, pixel = _grid_spec(shape, pixel_size_cm)
        maps = {name: np.zeros(dims, dtype=np.float64) for name in self.classes}
        for item, region, local in self._rasterize(dims, pixel):
            maps[item.material][region] += local
        return {name: d.astype(np.float32) for name, d in maps.items()}

    def truth(self, shape: tuple[int, int], pixel_size_cm: float | tuple[float, float], *,
              radiation: str = "neutron", energy_kev: float | None = None
              ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Exact class labels at the pixel centres of a detector grid.

        Parameters
        ----------
        shape : (int, int)
            Detector size ``(M, N)`` in pixels.
        pixel_size_cm : float or (float, float)
            Pixel size ``(py, px)`` in cm.
        radiation : {"neutron", "xray"}, optional
            Radiation whose attenuation ``mu * d`` decides which shape a pixel shows.
        energy_kev : float, optional
            Photon energy in keV, required for X-rays.

        Returns
        -------
        labels : (M, N) uint8 ndarray
            0 = open beam, ``k`` = ``classes[k - 1]`` (the shape with the largest
            ``mu * d > 0`` at the pixel centre, the first listed on ties).
        classes : tuple of str
            Material names of classes ``1..K``.

        Examples
        --------
        >>> from niseg.simulate import Cylinder, Phantom
        >>> phantom = Phantom(shapes=[Cylinder(material="cadmium", centre=(0.5, 0.5),
        ...                                    radius=0.3, thickness=0.05)], field_of_view_cm=1.0)
        >>> labels, classes = phantom.truth((5, 5), 0.2)
        >>> labels
        array([[0, 0, 0, 0, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 1, 1, 1, 0],
               [0, 0, 0, 0, 0]], dtype=uint8)
        >>> classes
        ('cadmium',)
        """
        dims, pixel = _grid_spec(shape, pixel_size_cm)
        mu = _mu_table(self.classes, radiation, energy_kev)
        return _truth_from(self, self._rasterize(dims, pixel), dims, mu=mu), self.classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description (inverse of :meth:`from_dict`).

        Examples
        --------
        >>> from niseg.simulate import Phantom, Sphere
        >>> p = Phantom(shapes=[Sphere(material="lead", centre=(1, 1), radius=0.5)],
        ...             field_of_view_cm=2.0)
        >>> Phantom.from_dict(p.to_dict()) == p
        True
        """
        shapes = []
        for item in self.shapes:
            entry: dict[str, Any] = {"type": type(item).__name__}
            for name in item.__dataclass_fields__:
                value = getattr(item, name)
                entry[name] = list(value) if isinstance(value, tuple) else value
            shapes.append(entry)
        return {"field_of_view_cm": list(self.field_of_view_cm), "shapes": shapes}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Phantom:
        """Rebuild a phantom from :meth:`to_dict` output (for example from metadata)."""
        if not isinstance(data, Mapping) or "shapes" not in data or "field_of_view_cm" not in data:
            raise ValueError("phantom description must be a mapping with 'shapes' and "
                             "'field_of_view_cm' as written by Phantom.to_dict")
        shapes = []
        for entry in data["shapes"]:
            kind = entry.get("type") if isinstance(entry, Mapping) else None
            if kind not in _SHAPE_TYPES:
                raise ValueError(f"phantom shape type must be one of {', '.join(_SHAPE_TYPES)}, "
                                 f"got {kind!r}")
            params = {k: v for k, v in entry.items() if k != "type"}
            try:
                shapes.append(_SHAPE_TYPES[kind](**params))
            except TypeError as exc:
                if "unexpected keyword" in str(exc) or "missing" in str(exc):
                    raise ValueError(f"phantom shape {kind} has parameters {sorted(params)}, "
                                     f"which do not match {kind}'s fields") from None
                raise
        return cls(shapes=shapes, field_of_view_cm=tuple(data["field_of_view_cm"]))


def _mu_table(classes: Sequence[str], radiation: str = "neutron",
              energy_kev: float | None = None) -> dict[str, float]:
    """Attenuation coefficient (1/cm) of each class for one radiation."""
    return {name: attenuation_coefficient(name, radiation=radiation, energy_kev=energy_kev)
            for name in classes}


def _truth_from(phantom: Any,
                pieces: Iterator[tuple[Any, tuple[slice, slice], np.ndarray]],
                dims: tuple[int, int], *, mu: Mapping[str, float] | None = None) -> np.ndarray:
    class_of = {name: k for k, name in enumerate(phantom.classes, start=1)}
    if mu is None:
        mu = _mu_table(phantom.classes)
    labels = np.zeros(dims, dtype=np.uint8)
    best = np.zeros(dims, dtype=np.float64)
    for item, region, local in pieces:
        attenuation = mu[item.material] * local
        # Strict ">" keeps the earlier shape on ties and ignores zero thickness.
        wins = (local > 0) & (attenuation > best[region])
        best[region][wins] = attenuation[wins]
        labels[region][wins] = class_of[item.material]
    return labels


def default_phantom(*, seed: int = 0, size_cm: float | tuple[float, float] = 2.56) -> Phantom:
    """A test object with materials of very different neutron attenuation.

    An aluminium holder bar along the bottom, and above it, placed at random positions
    that do not overlap: an iron cylinder seen along its axis (1 cm long), a rotated
    copper plate (0.5 cm thick), a water-filled aluminium sphere (0.85 R inner radius) and
    a small cadmium disc (0.5 mm thick). Sizes scale with the field of view and vary by
    ±15 % with the seed.

    Parameters
    ----------
    seed : int, optional
        Seed of the placement (``numpy.random.default_rng(seed)``).
    size_cm : float or (float, float), optional
        Field of view ``(height, width)`` in cm.

    Returns
    -------
    Phantom
        Classes, in order: aluminium, iron, copper, water, cadmium.

    Examples
    --------
    >>> from niseg.simulate import default_phantom
    >>> phantom = default_phantom(seed=1)
    >>> phantom.classes
    ('aluminium', 'iron', 'copper', 'water', 'cadmium')
    >>> default_phantom(seed=1) == phantom
    True
    """
    seed = _check_seed(seed)
    if isinstance(size_cm, (int, float, np.integer, np.floating)) and not isinstance(size_cm, bool):
        size_cm = (size_cm, size_cm)
    height, width = _pair("default_phantom", "size_cm", size_cm, positive=True)
    rng = np.random.default_rng(seed)
    s = min(height, width)
    margin = 0.03 * s
    holder_hy = 0.045 * s
    holder_cy = height - 0.08 * s
    top_free = holder_cy - holder_hy  # objects are placed above the holder

    k = rng.uniform(0.85, 1.15, size=4)
    fe_r = 0.13 * s * k[0]
    cu_half = (0.06 * s * k[1], 0.15 * s * k[1])
    cu_angle = float(rng.uniform(0.0, 180.0))
    ball_r = 0.13 * s * k[2]
    cd_r = 0.035 * s * k[3]
    # Footprint radii (circumscribed circles) for the non-overlap test.
    radii = [fe_r, math.hypot(*cu_half), ball_r, cd_r]
    centres = _place(rng, radii, top_free, width, margin)

    shapes: list[Shape] = [
        Plate(material="aluminium", centre=(holder_cy, width / 2.0),
              half_size=(holder_hy, 0.4 * width), thickness=1.0),
        Cylinder(material="iron", centre=centres[0], radius=fe_r, thickness=1.0),
        Plate(material="copper", centre=centres[1], half_size=cu_half, thickness=0.5,
              angle_deg=cu_angle),
        Sphere(material="aluminium", centre=centres[2], radius=ball_r, inner_radius=0.85 * ball_r),
        Sphere(material="water", centre=centres[2], radius=0.85 * ball_r),
        Cylinder(material="cadmium", centre=centres[3], radius=cd_r, thickness=0.05),
    ]
    return Phantom(shapes=shapes, field_of_view_cm=(height, width))


def _place(rng: np.random.Generator, radii: list[float], height: float, width: float,
           margin: float) -> list[tuple[float, float]]:
    """Random centres in ``[0, height] x [0, width]`` for discs that should not overlap."""

    def draw(radius: float) -> tuple[float, float]:
        lo_y, hi_y = radius + margin, height - radius - margin
        lo_x, hi_x = radius + margin, width - radius - margin
        y = rng.uniform(lo_y, hi_y) if hi_y > lo_y else height / 2.0
        x = rng.uniform(lo_x, hi_x) if hi_x > lo_x else width / 2.0
        return (float(y), float(x))

    order = sorted(range(len(radii)), key=lambda i: -radii[i])  # largest first packs best
    placed: dict[int, tuple[float, float]] = {}
    for _ in range(200):
        placed = {}
        for i in order:
            for _ in range(100):
                candidate = draw(radii[i])
                if all(math.dist(candidate, placed[j]) >= radii[i] + radii[j] + margin
                       for j in placed):
                    placed[i] = candidate
                    break
            else:
                break
        if len(placed) == len(radii):
            return [placed[i] for i in range(len(radii))]
    # A field of view too small or too narrow for the set: accept overlaps rather than fail.
    return [placed.get(i) or draw(radii[i]) for i in range(len(radii))]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return int(seed)
