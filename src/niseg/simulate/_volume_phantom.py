"""Voxel phantoms: a label volume of materials imaged along its first axis."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._materials import get_material
from ._phantom import _grid_spec, _mu_table, _positive, _truth_from

__all__ = ["VolumePhantom"]


class _Column:
    """Stands in for a shape in ``_rasterize``: all voxels of one material in a volume."""

    __slots__ = ("material",)

    def __init__(self, material: str) -> None:
        self.material = material


@dataclass(frozen=True, eq=False)
class VolumePhantom:
    """A voxel volume of materials imaged along its first axis (the beam runs along ``z``).

    It can replace a :class:`Phantom` in :func:`~niseg.simulate.simulate_radiograph`: the
    projected thickness of material ``k`` at a detector pixel is the number of voxels
    labelled ``k`` in the column under the pixel centre times the voxel depth.

    Parameters
    ----------
    labels : (P, M, N) integer ndarray
        Material of each voxel, axes ``zyx``: 0 = empty (no attenuation),
        ``k`` = ``classes[k - 1]``.
    classes : sequence of str
        Material names (see :data:`niseg.simulate.MATERIALS`) of labels ``1..K``.
    voxel_size_cm : float or (float, float, float)
        Voxel size in cm, one number or ``(dz, dy, dx)``.
    description : dict, optional
        JSON-compatible record of how the volume was made (kept in radiograph metadata).

    Notes
    -----
    A detector grid is centred on the volume's ``(y, x)`` extent as for :class:`Phantom`;
    pixel centres outside the volume see nothing. The truth label of a pixel is the
    material with the largest ``mu * d`` in its column (the first class on ties), 0 where
    the column is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from niseg.simulate import VolumePhantom
    >>> labels = np.zeros((4, 2, 2), dtype=np.uint8)
    >>> labels[:3, 0, 0] = 1
    >>> labels[:, 1, 1] = 2
    >>> block = VolumePhantom(labels=labels, classes=("water", "iron"), voxel_size_cm=0.1)
    >>> block.field_of_view_cm
    (0.2, 0.2)
    >>> block.thickness_maps((2, 2), 0.1)["water"].round(2)
    array([[0.3, 0. ],
           [0. , 0. ]], dtype=float32)
    >>> block.truth((2, 2), 0.1)[0]
    array([[1, 0],
           [0, 2]], dtype=uint8)
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    voxel_size_cm: float | tuple[float, float, float]
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = self.labels
        if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "ui":
            raise TypeError("VolumePhantom labels must be an integer ndarray, got "
                            f"{getattr(labels, 'dtype', type(labels).__name__)}")
        if labels.ndim != 3 or min(labels.shape) < 1:
            raise ValueError(f"VolumePhantom labels must be a (P, M, N) volume, got shape "
                             f"{labels.shape}")
        if isinstance(self.classes, str) or not isinstance(self.classes, Sequence):
            raise TypeError("VolumePhantom classes must be a sequence of material names, "
                            f"got {type(self.classes).__name__}")
        classes = tuple(get_material(name).name for name in self.classes)
        low, high = (int(labels.min()), int(labels.max()))
        if low < 0 or high > len(classes):
            raise ValueError(f"VolumePhantom labels must lie in 0..{len(classes)} (one per "
                             f"class), got values from {low} to {high}")
        size = self.voxel_size_cm
        if isinstance(size, (int, float, np.integer, np.floating)) and not isinstance(size, bool):
            size = (size,) * 3
        try:
            sizes = tuple(_positive("VolumePhantom", "voxel_size_cm", v) for v in size)
        except TypeError:
            raise TypeError("VolumePhantom voxel_size_cm must be a positive number or three "
                            f"(dz, dy, dx) in cm, got {self.voxel_size_cm!r}") from None
        if len(sizes) != 3:
            raise ValueError("VolumePhantom voxel_size_cm must be a positive number or three "
                             f"(dz, dy, dx) in cm, got {self.voxel_size_cm!r}")
        labels = labels.copy()
        labels.setflags(write=False)  # the column sums below are cached
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "voxel_size_cm", sizes)
        object.__setattr__(self, "description", dict(self.description))
        object.__setattr__(self, "_columns", None)

    @property
    def field_of_view_cm(self) -> tuple[float, float]:
        """Height and width ``(M * dy, N * dx)`` of the volume in cm."""
        _, m, n = self.labels.shape
        return (m * self.voxel_size_cm[1], n * self.voxel_size_cm[2])

    def _column_thickness(self) -> list[np.ndarray]:
        cached = self.__dict__.get("_columns")
        if cached is None:
            dz = self.voxel_size_cm[0]
            cached = [np.count_nonzero(self.labels == k, axis=0) * dz
                      for k in range(1, len(self.classes) + 1)]
            object.__setattr__(self, "_columns", cached)
        return cached

    def _rasterize(self, shape: tuple[int, int], pixel: tuple[float, float]
                   ) -> Iterator[tuple[_Column, tuple[slice, slice], np.ndarray]]:
        """Yield each material's column thickness (float64, cm) at the pixel centres."""
        (m, n), (py, px) = shape, pixel
        _, vm, vn = self.labels.shape
        fy, fx = self.field_of_view_cm
        ys = fy / 2.0 + (np.arange(m) + 0.5 - m / 2.0) * py
        xs = fx / 2.0 + (np.arange(n) + 0.5 - n / 2.0) * px
        iy = np.floor(ys / self.voxel_size_cm[1]).astype(np.int64)
        ix = np.floor(xs / self.voxel_size_cm[2]).astype(np.int64)
        ok_y, ok_x = (iy >= 0) & (iy < vm), (ix >= 0) & (ix < vn)
        region = (slice(0, m), slice(0, n))
        for name, column in zip(self.classes, self._column_thickness(), strict=True):
            local = np.zeros((m, n), dtype=np.float64)
            local[np.ix_(ok_y, ok_x)] = column[np.ix_(iy[ok_y], ix[ok_x])]
            yield _Column(name), region, local

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
            Column thickness in cm of each material, keyed by material name in class order.

        Examples
        --------
        >>> import numpy as np
        >>> from niseg.simulate import VolumePhantom
        >>> slab = VolumePhantom(labels=np.ones((5, 2, 2), np.uint8), classes=("iron",),
        ...                      voxel_size_cm=0.2)
        >>> slab.thickness_maps((1, 1), 0.4)["iron"]
        array([[1.]], dtype=float32)
        """
        dims, pixel = _grid_spec(shape, pixel_size_cm)
        return {item.material: local.astype(np.float32)
                for item, _, local in self._rasterize(dims, pixel)}

    def truth(self, shape: tuple[int, int], pixel_size_cm: float | tuple[float, float], *,
              radiation: str = "neutron", energy_kev: float | None = None
              ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Projected truth: the material with the largest ``mu * d`` under each pixel.

        Parameters
        ----------
        shape : (int, int)
            Detector size ``(M, N)`` in pixels.
        pixel_size_cm : float or (float, float)
            Pixel size ``(py, px)`` in cm.
        radiation : {"neutron", "xray"}, optional
            Radiation whose attenuation decides the label.
        energy_kev : float, optional
            Photon energy in keV, required for X-rays.

        Returns
        -------
        labels : (M, N) uint8 ndarray
            0 = empty column, ``k`` = ``classes[k - 1]``.
        classes : tuple of str
            Material names of classes ``1..K``.

        Examples
        --------
        >>> import numpy as np
        >>> from niseg.simulate import VolumePhantom
        >>> labels = np.array([[[1, 2]], [[1, 2]], [[2, 0]]], dtype=np.uint8)  # (3, 1, 2)
        >>> v = VolumePhantom(labels=labels, classes=("aluminium", "water"), voxel_size_cm=1)
        >>> v.truth((1, 2), 1.0)[0], v.truth((1, 2), 1.0, radiation="xray", energy_kev=60)[0]
        (array([[2, 2]], dtype=uint8), array([[1, 2]], dtype=uint8))
        """
        dims, pixel = _grid_spec(shape, pixel_size_cm)
        mu = _mu_table(self.classes, radiation, energy_kev)
        return _truth_from(self, self._rasterize(dims, pixel), dims, mu=mu), self.classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible summary: shape, classes, voxel size and ``description``.

        The voxels themselves are not included; ``description`` says how to rebuild them
        (for example the arguments of :func:`~niseg.simulate.porous_phantom`).

        Examples
        --------
        >>> import numpy as np
        >>> from niseg.simulate import VolumePhantom
        >>> VolumePhantom(labels=np.zeros((1, 2, 3), np.uint8), classes=(),
        ...               voxel_size_cm=0.5).to_dict()["shape"]
        [1, 2, 3]
        """
        return {"type": "VolumePhantom", "shape": list(self.labels.shape),
                "classes": list(self.classes), "voxel_size_cm": list(self.voxel_size_cm),
                "field_of_view_cm": list(self.field_of_view_cm),
                "description": dict(self.description)}
