"""The registry of recipe steps: their parameters, checks and the niseg function each wraps.

A recipe may name only the steps registered here (never an arbitrary import). Each
parameter has a type, a default, allowed values or a range and a one-line description; the
same specifications validate recipes, fill in defaults and produce the listing of
:func:`list_steps` (and ``docs/batch.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from . import _steps_apply as apply
from ._steps_params import Param, ParamError, closest

__all__ = ["STEPS", "Param", "ParamError", "StepSpec", "closest", "list_steps"]

@dataclasses.dataclass(frozen=True)
class StepSpec:
    """A registered step: what it wraps, its role in the pipeline and its parameters.

    ``role`` orders the pipeline: ``read`` < ``preprocess`` < ``segment`` <
    ``postprocess`` < ``label`` < ``measure`` < ``write``.
    """

    name: str
    role: str
    wraps: str
    doc: str
    params: tuple[Param, ...]
    apply: Callable[..., Any] | None = None
    can_be_global: bool = False
    repeatable: bool = False
    check: Callable[[Mapping[str, Any]], str | None] | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


def _check_threshold(p: Mapping[str, Any]) -> str | None:
    method = p["method"]
    needs = {"manual": "value", "local": "block_size", "results": "object_size"}
    if method in needs and p[needs[method]] is None:
        return f"method '{method}' needs the parameter {needs[method]}"
    if (p["low"] is None) != (p["high"] is None):
        return "give both low and high (hysteresis levels), or neither for automatic levels"
    if p["classes"] is not None and method not in ("otsu", "multiotsu"):
        return f"classes applies to method otsu or multiotsu, not {method}"
    if p["fit"] == "global":
        if method in ("local", "results"):
            return (f"method '{method}' cannot be fitted globally (its level depends on each "
                    "image's local structure); use fit: each")
        if p["levels"] is not None:
            return "levels fixes the levels already, so fit: global has nothing to fit"
    if p["levels"] is not None and method == "local":
        return "levels cannot be used with method 'local'"
    return None


def _check_clean_spots(p: Mapping[str, Any]) -> str | None:
    if p["method"] == "baseline" and p["threshold"] is None:
        return "method 'baseline' needs threshold, the |f - median| limit in image units"
    if p["size"] % 2 == 0:
        return f"size must be odd, got {p['size']}"
    return None


def _check_read(p: Mapping[str, Any]) -> str | None:
    axes = p["axes"]
    if axes is not None and (any(a not in "zyxtlc" for a in axes) or len(set(axes)) != len(
            axes)):
        return f"axes must be distinct letters from zyxtlc (e.g. yx, tyx, yxl), got {axes!r}"
    return None


def _check_write(p: Mapping[str, Any]) -> str | None:
    if p["multiscale"] and p["suffix"] != ".zarr":
        return f"multiscale needs suffix .zarr, got {p['suffix']}"
    return None


def _check_normalize(p: Mapping[str, Any]) -> str | None:
    from niseg.preprocess._normalize import parse_roi

    if p["dose_roi"] is not None:
        try:
            parse_roi(p["dose_roi"])
        except ValueError as exc:
            return str(exc)
    if p["clip"] is not None and not p["clip"][0] < p["clip"][1]:
        return f"clip must be [low, high] with low < high, got {p['clip']}"
    if p["floor"] is not None and not p["log"]:
        return "floor applies only with log: true"
    return None


def _check_measure(p: Mapping[str, Any]) -> str | None:
    if p["pixel_size"] is not None and any(v <= 0 for v in p["pixel_size"]):
        return f"pixel_size must be positive, got {p['pixel_size']}"
    return None


_THRESHOLD_METHODS = ("manual", "otsu", "isodata", "li", "mean", "minimum", "triangle", "yen",
                      "intermodes", "local", "multiotsu", "hysteresis", "results")
_FOREGROUND = ("bright", "dark")
_CONNECTIVITY: dict[str, Any] = {"low": 1, "high": 3, "optional": True}

STEPS: dict[str, StepSpec] = {s.name: s for s in (
    StepSpec(
        "read", "read", "niseg.io.read_image",
        "How each input is read; optional, and first when present.",
        (Param("axes", "str", "Axis letters of every input (e.g. tyx, yxl); null = from the "
               "file.", default=None, optional=True),
         Param("chunks", "ints", "Process each input as one volume, chunk by chunk, with this "
               "chunk side (one value, or one per axis); null = whole files in memory.",
               default=None, optional=True, low=1)),
        check=_check_read,
    ),
    StepSpec(
        "normalize", "preprocess", "niseg.preprocess.normalize",
        "Open-beam / dark-current (flat-field) normalization: T = (I - DC) / (OB - DC). The "
        "reference files are read once per run; exposure times come from each file's "
        "metadata (no scaling when one is missing).",
        (Param("open_beam", "paths", "Open-beam file(s), folder or glob, relative to the "
               "recipe's folder."),
         Param("dark", "paths", "Dark-current file(s), folder or glob.", default=None,
               optional=True),
         Param("combine", "choice", "How reference frames are combined.", default="median",
               choices=("median", "mean")),
         Param("dose_roi", "str", "Region 'y0:y1,x0:x1' without sample for the dose "
               "correction.", default=None, optional=True),
         Param("guard", "float", "Smallest open-beam counts that still divide (else NaN).",
               default=1.0, low=0.0),
         Param("log", "bool", "Return the attenuation -ln T instead of T.", default=False),
         Param("floor", "float", "With log: raise T below this to it instead of NaN.",
               default=None, optional=True, low=0.0),
         Param("clip", "numbers", "Limit T to [low, high] before -ln.", default=None,
               optional=True, length=2),
         Param("allow_negative", "bool", "Accept negative (already dark-subtracted) counts.",
               default=False)),
        apply=apply.apply_normalize, check=_check_normalize,
    ),
    StepSpec(
        "clean_spots", "preprocess", "niseg.preprocess.clean_spots",
        "Replace gamma spots, dead and hot pixels by background values; a 't' axis is "
        "processed frame by frame.",
        (Param("method", "choice", "Spot detector.", default="auto",
               choices=("auto", "baseline", "morph", "sigmoid", "log", "knn", "cnn")),
         Param("polarity", "choice", "Bright spots, dark spots or both.", default="bright",
               choices=("bright", "dark", "both")),
         Param("size", "int", "Median window side in pixels (odd).", default=5, low=3,
               high=31),
         Param("threshold", "float", "Detection threshold (baseline: image units; others: "
               "noise standard deviations, default 5).", default=None, optional=True,
               low=0.0),
         Param("max_area", "int", "Larger connected regions are objects, not spots.",
               default=None, optional=True, low=1),
         Param("width", "float", "sigmoid only: transition width in noise units.",
               default=1.0, low=0.0),
         Param("temporal", "bool", "Compare with neighbouring frames (needs a 't' axis).",
               default=False),
         Param("seed", "int", "Seed of the knn self-training.", default=0, low=0)),
        apply=apply.apply_clean_spots, repeatable=True, check=_check_clean_spots,
    ),
    StepSpec(
        "minus_log", "preprocess", "niseg.preprocess.minus_log",
        "Attenuation -ln T of a transmission image.",
        (Param("floor", "float", "Raise T below this to it instead of giving NaN.",
               default=None, optional=True, low=0.0),),
        apply=apply.apply_minus_log,
    ),
    StepSpec(
        "threshold", "segment", "niseg.threshold.threshold",
        "Threshold segmentation: binary 0/1, or classes 1..K for multiotsu. With fit: global "
        "the levels are fitted once on pixels of all inputs and applied to each.",
        (Param("method", "choice", "How the level is found.", default="otsu",
               choices=_THRESHOLD_METHODS),
         Param("foreground", "choice", "Objects brighter or darker than the background.",
               default="bright", choices=_FOREGROUND),
         Param("value", "float", "The level of method manual.", default=None, optional=True),
         Param("classes", "int", "Number of classes of multiotsu.", default=None,
               optional=True, low=2, high=255),
         Param("block_size", "int", "Neighbourhood side of method local (odd).",
               default=None, optional=True, low=3),
         Param("offset", "float", "Offset of method local.", default=0.0),
         Param("low", "float", "Weak level of hysteresis.", default=None, optional=True),
         Param("high", "float", "Strong level of hysteresis.", default=None, optional=True),
         Param("object_size", "numbers", "Smallest and largest object (pixels) of method "
               "results.", default=None, optional=True, length=2),
         Param("background", "float", "Sigma (pixels) of a background correction first.",
               default=None, optional=True, low=0.0),
         Param("background_mode", "choice", "Background correction by division or "
               "subtraction.", default="divide", choices=("divide", "subtract")),
         Param("background_estimate", "choice", "Background estimate.",
               default="morphological", choices=("morphological", "gaussian")),
         Param("fill_holes", "bool", "Fill holes of binary results.", default=False),
         Param("min_size", "int", "Remove binary objects smaller than this (pixels).",
               default=0, low=0),
         Param("opening", "int", "Opening radius (pixels) of binary results.", default=0,
               low=0),
         Param("closing", "int", "Closing radius (pixels) of binary results.", default=0,
               low=0),
         Param("guard_edges", "bool", "multiotsu: no 'virtual skin' at class edges.",
               default=False),
         Param("levels", "numbers", "Fixed levels instead of computing them.", default=None,
               optional=True),
         Param("fit", "choice", "each: levels per input; global: once for all inputs.",
               default="each", choices=("each", "global")),
         Param("sample_pixels", "int", "fit: global: most pixels drawn from each input.",
               default=1_000_000, low=1000),
         Param("seed", "int", "fit: global: seed of the pixel sample.", default=0, low=0)),
        apply=apply.apply_threshold, can_be_global=True, check=_check_threshold,
    ),
    StepSpec(
        "cluster", "segment", "niseg.cluster.cluster_pixels",
        "k-means or Gaussian-mixture clustering into classes 1..K (per input only: every "
        "input is clustered on its own). NaN pixels get 0.",
        (Param("classes", "int_or_auto", "Number of clusters K, or auto.", default=3, low=2,
               high=255),
         Param("model", "choice", "Clustering model.", default="kmeans",
               choices=("kmeans", "gmm")),
         Param("features", "strings", "Pixel features.", default=["intensity"],
               choices=("intensity", "gaussian", "gradient", "dog", "laplacian")),
         Param("sigmas", "numbers", "Filter scales in pixels.", default=[1.0]),
         Param("position_weight", "float", "Weight of pixel position (0 = unused).",
               default=0.0, low=0.0),
         Param("max_classes", "int", "Largest K tried by classes: auto.", default=8, low=2,
               high=255),
         Param("max_fit_samples", "int", "Most pixels the model is fitted on.",
               default=200_000, low=100),
         Param("seed", "int", "Seed of the pixel subset and random start.", default=0,
               low=0)),
        apply=apply.apply_cluster,
    ),
    StepSpec(
        "classify", "segment", "niseg.models.load_model + niseg.tiling.predict_tiled",
        "Predict with a trained model file (pixel classifier, U-Net or threshold model), "
        "tile by tile.",
        (Param("model", "path", "The .niseg model file, relative to the recipe's folder."),
         Param("tile", "int", "Tile side in pixels (null = automatic).", default=None,
               optional=True, low=16),
         Param("device", "choice", "U-Net models: where to predict (auto = a GPU if "
               "PyTorch sees one).", default="auto", choices=("auto", "cpu", "cuda"))),
        apply=apply.apply_classify,
    ),
    StepSpec(
        "postprocess", "postprocess", "niseg.objects.postprocess",
        "Clean the segmentation per class: small objects, all but the largest, holes.",
        (Param("min_size", "int", "Smallest object kept (pixels).", default=0, low=0),
         Param("keep_largest", "bool", "Keep only the largest object of each class.",
               default=False),
         Param("fill_holes", "bool", "Fill holes in each class.", default=False),
         Param("classes", "ints", "Classes to process (null = all).", default=None,
               optional=True, low=1, high=255),
         Param("connectivity", "int", "1 = faces only .. ndim = full (null = ndim).",
               default=None, **_CONNECTIVITY)),
        apply=apply.apply_postprocess, repeatable=True,
    ),
    StepSpec(
        "label", "label", "niseg.objects.label_objects",
        "Number the connected objects of the segmentation (written as <name>_objects).",
        (Param("connectivity", "int", "1 = faces only .. ndim = full (null = ndim).",
               default=None, **_CONNECTIVITY),
         Param("split", "bool", "Split touching objects (distance-transform watershed).",
               default=False),
         Param("min_distance", "int", "split: smallest distance between object centres.",
               default=5, low=1),
         Param("h", "float", "split: smallest depth of a basin.", default=1.0, low=0.0),
         Param("min_size", "int", "Remove objects smaller than this (pixels).", default=0,
               low=0)),
        apply=apply.apply_label,
    ),
    StepSpec(
        "measure", "measure", "niseg.objects.measure_objects + class_totals",
        "Measure every object (labelled with label_objects defaults if no label step ran), "
        "in physical units when the pixel size is known.",
        (Param("intensity", "bool", "Measure mean/min/max intensity of the segmented image.",
               default=True),
         Param("pixel_size", "numbers", "Pixel size per axis (null = from the metadata).",
               default=None, optional=True),
         Param("unit", "str", "Length unit of pixel_size (null = metadata's, else um).",
               default=None, optional=True)),
        apply=apply.apply_measure, check=_check_measure,
    ),
    StepSpec(
        "write", "write", "niseg.io.write_image",
        "Write the segmentation (and objects, object tables) mirroring each input's name; "
        "last when present. Without it only the measurements are written.",
        (Param("suffix", "choice", "File type of the images written.", default=".tif",
               choices=(".tif", ".tiff", ".png", ".npy", ".h5", ".zarr", ".fits")),
         Param("objects", "bool", "Also write the object labels of a label step.",
               default=True),
         Param("object_table", "bool", "Also write <name>_objects.csv of a measure step.",
               default=True),
         Param("multiscale", "bool", "Chunked runs: also write an OME-Zarr multiscale pyramid "
               "(suffix .zarr).", default=False)),
        check=_check_write,
    ),
)}


def list_steps() -> list[dict[str, Any]]:
    """Describe every registered recipe step and its parameters.

    Returns
    -------
    list of dict
        One entry per step: ``name``, ``role``, ``wraps`` (the niseg function), ``doc``,
        ``can_be_global`` and ``params`` (``name``, ``type``, ``default``, ``required``,
        ``doc``).

    Examples
    --------
    >>> steps = {s["name"]: s for s in list_steps()}
    >>> steps["threshold"]["can_be_global"], steps["threshold"]["params"][0]["name"]
    (True, 'method')
    """
    out = []
    for spec in STEPS.values():
        out.append({
            "name": spec.name, "role": spec.role, "wraps": spec.wraps, "doc": spec.doc,
            "can_be_global": spec.can_be_global,
            "params": [{"name": p.name, "type": p.describe_type(),
                        "default": None if p.required else p.default,
                        "required": p.required, "doc": p.doc} for p in spec.params],
        })
    return out
