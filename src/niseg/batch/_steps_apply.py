"""What each recipe step does to one image: thin wrappers over the public niseg functions.

Every wrapper takes the :class:`Work` of one input (the current image, its metadata and what
the steps before produced), the step's validated parameters and the run's state (reference
frames, model path, globally fitted levels: plain data prepared once per run), updates the
work and returns a small JSON-able dict of what it used (levels, counts) for the
measurements row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

# A few models per worker process at most; each is loaded once and reused for every file.
_MODEL_CACHE: dict[tuple[str, str], Any] = {}
_MODEL_CACHE_SIZE = 2
# Threshold options that decide the levels (the rest only clean the result up).
_LEVEL_OPTIONS = ("method", "foreground", "value", "classes", "low", "high")
_RECIPE_ONLY = ("fit", "sample_pixels", "seed")


@dataclasses.dataclass
class Work:
    """One input on its way through a recipe."""

    image: np.ndarray
    metadata: dict[str, Any]
    segmentation: np.ndarray | None = None
    class_values: list[int] = dataclasses.field(default_factory=list)
    class_names: list[str] = dataclasses.field(default_factory=list)
    objects: np.ndarray | None = None
    object_rows: list[dict[str, Any]] | None = None
    class_totals: list[dict[str, Any]] | None = None


def axis_of(metadata: Mapping[str, Any], letter: str) -> int | None:
    axes = str(metadata.get("axes") or "")
    return axes.index(letter) if letter in axes else None


def spatial_pixel_size(metadata: Mapping[str, Any], ndim: int
                       ) -> tuple[tuple[float, ...] | None, str | None]:
    """Pixel size per axis of an ``ndim``-D result and its unit, when the metadata say."""
    sizes = metadata.get("pixel_size")
    if sizes is None:
        return None, None
    sizes = [sizes] if np.isscalar(sizes) else list(sizes)
    if len(sizes) != ndim:
        return None, None
    return tuple(float(v) for v in sizes), str(metadata.get("unit") or "um")


# ----------------------------------------------------------------------- pre-processing


def apply_normalize(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                    ) -> dict[str, Any]:
    from niseg.preprocess import normalize

    refs = state.get("normalize")
    if refs is None:
        raise ValueError("the normalize step needs its reference frames in the state; "
                         "prepare it with prepare_state(recipe)")
    axes = str(work.metadata.get("axes") or "")
    for letter in ("z", "c"):
        if letter in axes:
            raise ValueError(f"'{work.metadata.get('source', 'the input')}' has axes '{axes}' "
                             f"with a '{letter}' axis, which normalize cannot divide; give "
                             "read: {axes: ...} with 't' for frames or 'l' for wavelength bins")
    times = [work.metadata.get("exposure_time"), *refs["open_beam_exposure"],
             *refs["dark_exposure"]]
    exposure = None
    if all(t is not None for t in times):
        exposure = {"sample": float(times[0]),
                    "open_beam": [float(t) for t in refs["open_beam_exposure"]]}
        if refs["dark"]:
            exposure["dark"] = [float(t) for t in refs["dark_exposure"]]
    result, stats = normalize(
        work.image, refs["open_beam"], refs["dark"] or None, combine=params["combine"],
        frame_axis=axis_of(work.metadata, "t"), spectral_axis=axis_of(work.metadata, "l"),
        exposure=exposure, dose_roi=params["dose_roi"], guard=params["guard"],
        log=params["log"], floor=params["floor"],
        clip=None if params["clip"] is None else tuple(params["clip"]),
        allow_negative=params["allow_negative"])
    work.image = result
    work.metadata["quantity"] = "attenuation (-ln T)" if params["log"] else "transmission"
    return {"exposure_scaling": exposure is not None,
            **{k: stats[k] for k in ("fraction_guarded", "fraction_nonpositive",
                                     "fraction_above_one")}}


def apply_clean_spots(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                      ) -> dict[str, Any]:
    from niseg.preprocess import clean_spots

    cleaned, mask = clean_spots(work.image, **params, frame_axis=axis_of(work.metadata, "t"),
                                return_mask=True)
    work.image = cleaned
    return {"spot_pixels": int(np.count_nonzero(mask))}


def apply_minus_log(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                    ) -> dict[str, Any]:
    from niseg.preprocess import minus_log

    work.image = minus_log(work.image, floor=params["floor"])
    work.metadata["quantity"] = "attenuation (-ln T)"
    return {}


# ------------------------------------------------------------------------- segmentation


def _threshold_options(params: Mapping[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in params.items() if k not in _RECIPE_ONLY}
    if options["object_size"] is not None:
        options["object_size"] = tuple(options["object_size"])
    return options


def threshold_sample(image: np.ndarray, params: Mapping[str, Any],
                     rng: np.random.Generator) -> np.ndarray:
    """Finite pixels of ``image`` (after the step's background correction) that a global
    threshold is fitted on: all of them, or ``sample_pixels`` drawn without replacement."""
    from niseg.threshold import correct_background

    work = np.asarray(image)
    if params["background"] is not None:
        work, _ = correct_background(work, sigma=params["background"],
                                     mode=params["background_mode"],
                                     estimate=params["background_estimate"],
                                     foreground=params["foreground"])
    values = work.ravel()
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size > params["sample_pixels"]:
        index = np.sort(rng.choice(values.size, size=params["sample_pixels"], replace=False))
        values = values[index]
    return np.array(values, copy=True)


def fit_threshold_levels(samples: list[np.ndarray], params: Mapping[str, Any]) -> list[float]:
    """The levels :func:`niseg.threshold.threshold` finds on the pooled samples."""
    from niseg.threshold import threshold

    if not samples:
        raise ValueError("a global threshold needs at least one input to fit on")
    pooled = np.concatenate([np.ravel(s) for s in samples])
    # threshold() wants an image; one row of pooled pixels gives the same levels.
    options = {k: params[k] for k in _LEVEL_OPTIONS}
    _, info = threshold(pooled[np.newaxis, :], **options)
    return [float(v) for v in info["levels"]]


def apply_threshold(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                    ) -> dict[str, Any]:
    from niseg.threshold import threshold

    options = _threshold_options(params)
    if params["fit"] == "global":
        fitted = state.get("threshold")
        if fitted is None:
            raise ValueError("the threshold step has fit: global but no levels were fitted; "
                             "call fit_global(recipe, inputs) first")
        options["levels"] = fitted["levels"]
    labels, info = threshold(work.image, **options)
    work.segmentation = labels
    if info["method"] == "multiotsu":
        work.class_values = list(range(1, len(info["classes"]) + 1))
    else:
        work.class_values = [0, 1]
    work.class_names = list(info["classes"])
    return {"method": info["method"], "fit": params["fit"], "levels": info["levels"]}


def apply_cluster(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                  ) -> dict[str, Any]:
    from niseg.cluster import cluster_pixels

    image = np.asarray(work.image)
    valid = None
    if image.dtype.kind == "f":
        finite = np.isfinite(image)
        valid = None if finite.all() else finite
    labels, info = cluster_pixels(image, **{**params, "features": tuple(params["features"])},
                                  valid_mask=valid)
    work.segmentation = labels
    work.class_values = list(range(1, info["classes"] + 1))
    work.class_names = list(info["class_names"])
    return {"classes": info["classes"], "centres": info["centres"]}


def load_cached_model(path: str, sha256: str) -> Any:
    """Load a model once per process; refuse a file changed since the run was prepared."""
    from niseg.models import file_sha256, load_model

    key = (path, sha256)
    if key not in _MODEL_CACHE:
        if file_sha256(path) != sha256:
            raise ValueError(f"model file '{path}' changed after the recipe run was prepared")
        while len(_MODEL_CACHE) >= _MODEL_CACHE_SIZE:
            _MODEL_CACHE.pop(next(iter(_MODEL_CACHE)))
        _MODEL_CACHE[key] = load_model(path)
    return _MODEL_CACHE[key]


def model_class_names(model: Any) -> list[str]:
    values = np.asarray(model.classes_).tolist()
    given = getattr(model, "class_names_", None)
    if given is not None and len(given) == len(values):
        return [str(n) for n in given]
    if values == [0, 1]:
        return ["background", "foreground"]
    return [f"class {v}" for v in values]


def apply_classify(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                   ) -> dict[str, Any]:
    from niseg.tiling import predict_tiled

    entry = state.get("classify")
    if entry is None:
        raise ValueError("the classify step needs its model in the state; prepare it with "
                         "prepare_state(recipe)")
    model = load_cached_model(entry["model"], entry["sha256"])
    from ._runner import task_threads

    threads = task_threads()
    if threads is not None:  # one batch worker, one core
        for name in ("n_jobs", "n_threads"):
            if hasattr(model, name):
                setattr(model, name, threads)
    if entry["kind"] == "unet":
        # Predict where this worker can, not where the model happened to be trained.
        model.device = params["device"]
    image = np.asarray(work.image)
    channel = axis_of(work.metadata, "c")
    if channel is not None:
        image = np.moveaxis(image, channel, -1)
        if int(getattr(model, "n_channels_", 1)) == 1 and image.shape[-1] == 1:
            image = image[..., 0]
    dims = int(model.spatial_dims)
    tile = None if params["tile"] is None else (params["tile"],) * dims
    work.segmentation = np.asarray(predict_tiled(model, image, tile=tile))
    work.class_values = [int(v) for v in np.asarray(model.classes_).tolist()]
    work.class_names = model_class_names(model)
    return {"model": entry["model"], "model_sha256": entry["sha256"], "kind": entry["kind"]}


# ----------------------------------------------------------------- objects and measures


def _segmentation(work: Work, step: str) -> np.ndarray:
    if work.segmentation is None:  # the recipe's order check makes this unreachable
        raise ValueError(f"the {step} step needs a segmentation step before it")
    return work.segmentation


def apply_postprocess(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                      ) -> dict[str, Any]:
    from niseg.objects import postprocess

    work.segmentation = postprocess(_segmentation(work, "postprocess"), **params)
    return {}


def apply_label(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                ) -> dict[str, Any]:
    from niseg.objects import label_objects

    work.objects = label_objects(_segmentation(work, "label"), **params)
    return {}


def apply_measure(work: Work, params: Mapping[str, Any], state: Mapping[str, Any]
                  ) -> dict[str, Any]:
    from niseg.objects import class_totals, label_objects, measure_objects

    segmentation = _segmentation(work, "measure")
    if work.objects is None:
        work.objects = label_objects(segmentation)
    ndim = segmentation.ndim
    if params["pixel_size"] is not None:
        sizes = list(params["pixel_size"])
        if len(sizes) not in (1, ndim):
            raise ValueError(f"measure pixel_size holds {len(sizes)} values but the "
                             f"segmentation has {ndim} axes")
        pixel_size: tuple[float, ...] | None = tuple(sizes * ndim if len(sizes) == 1 else sizes)
        unit = params["unit"] or "um"
    else:
        pixel_size, unit = spatial_pixel_size(work.metadata, ndim)
        unit = params["unit"] or unit
    image = np.asarray(work.image)
    intensity = image if params["intensity"] and image.shape == segmentation.shape else None
    # measure_objects names classes 1..K; a binary 0/1 result has one class, 'foreground'.
    names = [n for v, n in zip(work.class_values, work.class_names) if v != 0]
    if [v for v in work.class_values if v != 0] != list(range(1, len(names) + 1)):
        names = None
    work.object_rows = measure_objects(work.objects, intensity, class_map=segmentation,
                                       class_names=names, pixel_size=pixel_size, unit=unit)
    work.class_totals = class_totals(work.object_rows, shape=segmentation.shape,
                                     class_names=names, pixel_size=pixel_size, unit=unit)
    # The row has the class areas already when the metadata give the pixel size.
    return {} if params["pixel_size"] is None else {"pixel_size": pixel_size, "unit": unit}
