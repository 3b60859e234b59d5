"""The augmentation settings: which transforms, how often, how strong (stored in model files).

Kept apart from the transforms so the settings can be read and validated without running
anything; :mod:`._augment` applies them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["AugmentConfig"]

PRESETS = ("none", "light", "default", "physics")
PADDINGS = ("reflection", "zeros", "border")
POISSON_UNITS = ("relative", "transmission")

# Allowed bounds of each range field: (low, high, integers?). A range is (min, max) of a
# uniform (or log-uniform, see the field notes) draw per sample.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "rotate_range": (-180.0, 180.0, False),
    "zoom_range": (0.25, 4.0, False),
    "elastic_magnitude_range": (0.0, 32.0, False),
    "brightness_range": (-1.0, 1.0, False),
    "contrast_range": (0.1, 10.0, False),
    "gamma_range": (0.1, 10.0, False),
    "blur_sigma_range": (0.0, 8.0, False),
    "poisson_counts_range": (1.0, 1e7, False),
    "spots_number_range": (1, 1000, True),
    "spots_size_range": (1, 32, True),
    "spots_amplitude_range": (0.5, 1e5, False),
    "rings_amplitude_range": (0.0, 1.0, False),
    "stripes_amplitude_range": (0.0, 1.0, False),
}


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply, how often, and how strongly.

    Every ``*_p`` is the probability that a sample gets that transform; every ``*_range``
    is the ``(low, high)`` interval its strength is drawn from, independently per sample.
    The defaults are the ``"default"`` preset: geometry plus mild intensity changes, no
    noise models; :meth:`preset` gives the others.

    Attributes
    ----------
    flip_p : float
        Probability of a flip, drawn separately for each spatial axis.
    rot90_p : float
        Probability of a rotation by a random multiple of 90 degrees in the (y, x) plane
        (multiples of 180 degrees when that plane is not square).
    isotropic : bool
        3D only: also rotate (by 90 degrees and arbitrarily) in the (z, y) and (z, x)
        planes. Leave False for anisotropic voxels or slice-wise structure.
    rotate_p, rotate_range : float, (float, float)
        Arbitrary rotation, angle uniform in degrees (about each axis if ``isotropic``).
    zoom_p, zoom_range : float, (float, float)
        Zoom factor, log-uniform; > 1 magnifies.
    elastic_p, elastic_magnitude_range : float, (float, float)
        Elastic distortion: a random displacement on control points ``elastic_spacing``
        pixels apart, smoothly interpolated; its standard deviation in pixels is uniform in
        the range.
    elastic_spacing : float
        Distance between control points in pixels (larger is smoother).
    padding : {"reflection", "zeros", "border"}
        Fill of image pixels sampled from outside the image by rotation, zoom or elastic
        distortion; the target is always ignore (-1) there.
    brightness_p, brightness_range : float, (float, float)
        Additive shift, as a fraction of the sample's robust range (0.5th to 99.5th
        percentile).
    contrast_p, contrast_range : float, (float, float)
        Factor applied to deviations from the sample's mean.
    gamma_p, gamma_range : float, (float, float)
        Gamma, log-uniform, applied on the sample's min-max range, which is kept.
    blur_p, blur_sigma_range : float, (float, float)
        Gaussian blur, standard deviation in pixels along every spatial axis.
    poisson_p, poisson_counts_range : float, (float, float)
        Poisson counting noise; counts per pixel at the open-beam level, log-uniform.
    poisson_units : {"relative", "transmission"}
        What the open beam of ``poisson_counts_range`` is. ``"relative"``: each sample's
        robust maximum (the 99.5th percentile), so the counts are relative to the sample's
        own range and mean the same on any units. ``"transmission"``: the image is
        transmission (open beam = 1, as after :func:`niseg.preprocess.normalize`), so the
        counts are real open-beam counts per pixel and noise at e.g. 300 counts is the noise
        a 300-count measurement has, whatever the patch holds. The image's units must then
        be known: :class:`~niseg.deep.UNetSegmenter` passes its intensity normalization.
    poisson_data_counts : float, optional
        With ``"transmission"``: the open-beam counts the training images were measured
        with. The noise added then makes a sample exactly as noisy as a measurement at the
        drawn count level ``N`` (it adds noise of ``1 / (1/N - 1/N0)`` counts) and leaves
        samples alone when ``N`` is at or above ``N0``; without it, noise of ``N`` counts is
        added on top of what the images hold.
    spots_p : float
        Gamma (outlier) spots.
    spots_number_range, spots_size_range : (int, int)
        Number of spots per channel and their extent in pixels (most are small:
        ``P(size) ~ size**-2``, as in :func:`niseg.simulate.add_spots`).
    spots_amplitude_range : (float, float)
        Spot amplitude in noise standard deviations, log-uniform; the strongest saturate.
    spots_dark_fraction : float
        Expected fraction of spots that are dark.
    rings_p, rings_amplitude_range : float, (float, float)
        Ring artefacts around a random centre (tomogram slices), as a fraction of the
        robust range.
    stripes_p, stripes_amplitude_range : float, (float, float)
        Stripe artefacts: constant offsets along random rows or columns (radiographs,
        sinograms), as a fraction of the robust range.

    Examples
    --------
    >>> from niseg.deep._augment_config import AugmentConfig
    >>> config = AugmentConfig(rotate_p=0.5)
    >>> config.rotate_p, config.poisson_p
    (0.5, 0.0)
    >>> AugmentConfig.from_dict(config.to_dict()) == config
    True
    """

    flip_p: float = 0.5
    rot90_p: float = 0.5
    isotropic: bool = False
    rotate_p: float = 0.25
    rotate_range: tuple[float, float] = (-180.0, 180.0)
    zoom_p: float = 0.25
    zoom_range: tuple[float, float] = (0.8, 1.25)
    elastic_p: float = 0.15
    elastic_magnitude_range: tuple[float, float] = (1.0, 3.0)
    elastic_spacing: float = 16.0
    padding: str = "reflection"
    brightness_p: float = 0.3
    brightness_range: tuple[float, float] = (-0.1, 0.1)
    contrast_p: float = 0.3
    contrast_range: tuple[float, float] = (0.75, 1.33)
    gamma_p: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    blur_p: float = 0.15
    blur_sigma_range: tuple[float, float] = (0.5, 1.5)
    poisson_p: float = 0.0
    poisson_counts_range: tuple[float, float] = (20.0, 5000.0)
    poisson_units: str = "relative"
    poisson_data_counts: float | None = None
    spots_p: float = 0.0
    spots_number_range: tuple[int, int] = (1, 8)
    spots_size_range: tuple[int, int] = (1, 10)
    spots_amplitude_range: tuple[float, float] = (6.0, 2000.0)
    spots_dark_fraction: float = 0.1
    rings_p: float = 0.0
    rings_amplitude_range: tuple[float, float] = (0.01, 0.05)
    stripes_p: float = 0.0
    stripes_amplitude_range: tuple[float, float] = (0.01, 0.05)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            name, value = f.name, getattr(self, f.name)
            if name.endswith("_p") or name == "spots_dark_fraction":
                object.__setattr__(self, name, _check_probability(name, value))
            elif name in _RANGES:
                object.__setattr__(self, name, _check_range(name, value, *_RANGES[name]))
        if not isinstance(self.isotropic, bool):
            raise TypeError(f"isotropic must be True or False, got {self.isotropic!r}")
        if self.poisson_units not in POISSON_UNITS:
            raise ValueError(f"poisson_units must be one of {', '.join(POISSON_UNITS)}, "
                             f"got {self.poisson_units!r}")
        n0 = self.poisson_data_counts
        if n0 is not None:
            if isinstance(n0, bool) or not isinstance(n0, (int, float)) or not 1 <= n0 <= 1e7:
                raise ValueError(f"poisson_data_counts must be None or a number of counts "
                                 f"from 1 to 1e7, got {n0!r}")
            if self.poisson_units != "transmission":
                raise ValueError("poisson_data_counts applies only with poisson_units "
                                 "'transmission'")
            object.__setattr__(self, "poisson_data_counts", float(n0))
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, "
                             f"got {self.padding!r}")
        spacing = self.elastic_spacing
        if (isinstance(spacing, bool) or not isinstance(spacing, (int, float))
                or not 2.0 <= spacing <= 1024.0):
            raise ValueError(f"elastic_spacing must be a number of pixels from 2 to 1024, "
                             f"got {spacing!r}")
        object.__setattr__(self, "elastic_spacing", float(spacing))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AugmentConfig:
        """A named starting point, optionally with some fields changed.

        Parameters
        ----------
        name : {"none", "light", "default", "physics"}
            ``"none"``: nothing. ``"light"``: flips, 90 degree rotations and small
            brightness/contrast changes (exact geometry only, for tiny or delicate data).
            ``"default"``: geometry (flips, 90 degree and arbitrary rotation, zoom,
            elastic) plus brightness, contrast, gamma and blur. ``"physics"``: the default
            plus Poisson counting noise, gamma spots, rings and stripes.
        **overrides
            Fields to change, e.g. ``rings_p=0.0`` for radiographs.

        Returns
        -------
        AugmentConfig

        Examples
        --------
        >>> from niseg.deep._augment_config import AugmentConfig
        >>> AugmentConfig.preset("physics").poisson_p
        0.6
        >>> AugmentConfig.preset("none", flip_p=0.5).flip_p
        0.5
        """
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
        base = cls()
        if name == "none":
            base = cls(**{f.name: 0.0 for f in dataclasses.fields(cls) if f.name.endswith("_p")})
        elif name == "light":
            base = cls.preset("none", flip_p=0.5, rot90_p=0.5, brightness_p=0.3,
                              brightness_range=(-0.05, 0.05), contrast_p=0.3,
                              contrast_range=(0.9, 1.1))
        elif name == "physics":
            # Counting noise on 60 % of the samples: in benchmarks/bench_unet_domain.py
            # (roots, U-Nets trained at 30000 and at 3000 counts) 0.6 lost less Dice away from
            # the training level than 0.3 (loss ratio to default augmentation 0.44 and 0.70
            # against 0.51 and 0.81) and kept the training level's Dice within 0.015.
            base = cls(poisson_p=0.6, spots_p=0.2, rings_p=0.15, stripes_p=0.15)
        return base.replace(**overrides)

    def replace(self, **changes: Any) -> AugmentConfig:
        """A copy with some fields changed (validated like the constructor).

        Examples
        --------
        >>> from niseg.deep._augment_config import AugmentConfig
        >>> AugmentConfig().replace(blur_p=0.0).blur_p
        0.0
        """
        _check_keys(changes, "AugmentConfig.replace")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary of every field (ranges as lists).

        Examples
        --------
        >>> from niseg.deep._augment_config import AugmentConfig
        >>> AugmentConfig().to_dict()["zoom_range"]
        [0.8, 1.25]
        """
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Rebuild a configuration from :meth:`to_dict` output; missing fields get defaults.

        Examples
        --------
        >>> from niseg.deep._augment_config import AugmentConfig
        >>> AugmentConfig.from_dict({"flip_p": 0.0}).flip_p
        0.0
        """
        if not isinstance(data, dict):
            raise TypeError(f"augmentation settings must be a dict, got {type(data).__name__}")
        _check_keys(data, "augmentation settings")
        return cls(**data)


def _check_keys(data: dict[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(AugmentConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"expected some of {', '.join(sorted(known))}")


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability from 0 to 1, got {value!r}")
    return float(value)


def _check_range(name: str, value: Any, low: float, high: float,
                 integers: bool) -> tuple[Any, Any]:
    kind = "integers" if integers else "numbers"
    number = int if integers else (int, float)
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, number) for v in items):
        raise ValueError(f"{name} must be a pair of {kind} (low, high), got {value!r}")
    a, b = items
    if not low <= a <= b <= high:
        raise ValueError(f"{name} must satisfy {low:g} <= low <= high <= {high:g}, "
                         f"got {value!r}")
    return (int(a), int(b)) if integers else (float(a), float(b))
