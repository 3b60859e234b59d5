"""Applying a recipe: the run's state, global fits, one input, its outputs, a serial run.

The functions here are what a batch runner calls per input, in any process: the
:class:`~niseg.batch.Recipe` and the state (plain dicts, lists and arrays) are picklable, and
nothing depends on the order inputs are processed in. :func:`run_recipe_serial` strings
them together in one process for small jobs and tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._recipe import Recipe
from ._steps import STEPS
from ._steps_apply import Work, fit_threshold_levels, spatial_pixel_size, threshold_sample

__all__ = ["RecipeResult", "apply_recipe", "fit_global", "fit_global_from_samples",
           "global_sample", "prepare_state", "read_input", "state_summary"]

_KEPT_METADATA = ("exposure_time", "quantity")


@dataclass
class RecipeResult:
    """What a recipe made of one input.

    Attributes
    ----------
    segmentation : (M, N[, P]) ndarray
        The class labels (uint8 0/1 for binary results, 1..K for multi-class ones).
    metadata : dict
        Metadata to write with ``segmentation`` (axes, pixel size, classes, recipe name).
    objects : (M, N[, P]) int32 ndarray or None
        Numbered objects, when the recipe has a label or measure step.
    object_rows : list of dict or None
        Per-object measurements of a measure step.
    measurements : dict
        The input's row of the run's table: pixels, fraction and (pixel size known) area or
        volume of each class, the object count, and what each step used (``<step>_<key>``,
        e.g. ``threshold_levels``).
    """

    segmentation: np.ndarray
    metadata: dict[str, Any]
    objects: np.ndarray | None
    object_rows: list[dict[str, Any]] | None
    measurements: dict[str, Any]


def read_input(recipe: Recipe, path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read one input as the recipe's ``read`` step says (axes), in memory.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from niseg.io import write_image
    >>> path = write_image(pathlib.Path(tempfile.mkdtemp()) / "a.tif", np.zeros((2, 4, 4)))
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [read: {axes: tyx}, cluster]")
    >>> image, meta = read_input(recipe, path)
    >>> meta["axes"]
    'tyx'
    """
    from niseg.io import read_image

    first = recipe.steps[0]
    axes = first.params["axes"] if first.name == "read" else None
    image, metadata = read_image(path, axes=axes)
    return np.asarray(image), metadata


def _read_references(specs: Sequence[str]) -> tuple[list[np.ndarray], list[float | None]]:
    from niseg.io import expand_paths, read_image

    arrays, times = [], []
    for spec in specs:
        for file in expand_paths(spec):
            array, meta = read_image(file)
            arrays.append(np.asarray(array))
            times.append(meta.get("exposure_time"))
    return arrays, times


def prepare_state(recipe: Recipe) -> dict[str, Any]:
    """Load what every input needs, once: reference frames, the model's checksum.

    Parameters
    ----------
    recipe : Recipe

    Returns
    -------
    dict
        Plain data: ``normalize`` (``open_beam`` and ``dark`` arrays with their exposure
        times), ``classify`` (``model`` path, ``sha256``, ``kind``; the model itself is
        loaded once per worker process); :func:`fit_global` adds the fitted levels.
    """
    from niseg.models import file_sha256, read_model_info

    state: dict[str, Any] = {}
    for step in recipe.steps:
        if step.name == "normalize":
            ob, ob_times = _read_references(step.params["open_beam"])
            dark, dark_times = _read_references(step.params["dark"] or [])
            state["normalize"] = {"open_beam": ob, "open_beam_exposure": ob_times,
                                  "dark": dark, "dark_exposure": dark_times}
        elif step.name == "classify":
            path = step.params["model"]
            state["classify"] = {"model": path, "sha256": file_sha256(path),
                                 "kind": read_model_info(path)["kind"]}
    return state


def _run_steps(steps: Iterable[Any], work: Work, state: dict[str, Any],
               used: dict[str, dict[str, Any]]) -> None:
    for step in steps:
        spec = STEPS[step.name]
        if spec.apply is None:  # read and write happen outside the image's path
            continue
        key = step.name
        n = 2
        while key in used:
            key = f"{step.name}_{n}"
            n += 1
        used[key] = spec.apply(work, step.params, state)


def global_sample(recipe: Recipe, image: np.ndarray, metadata: dict, state: dict[str, Any],
                  *, index: int) -> np.ndarray:
    """Pixels of one input that the recipe's global step is fitted on.

    The steps before the global step run first. The sample is drawn with the step's
    ``seed`` and the input's ``index``, so it does not depend on which worker draws it or
    when.

    Parameters
    ----------
    recipe : Recipe
    image : (M, N[, ...]) ndarray
        The input as :func:`read_input` returns it.
    metadata : dict
        Its metadata.
    state : dict
        From :func:`prepare_state`.
    index : int
        Position of the input in the series.

    Returns
    -------
    (S,) ndarray
        All finite pixels, or ``sample_pixels`` of them drawn without replacement.
    """
    before, step, _ = recipe.stages()
    if step is None:
        raise ValueError("the recipe has no global step (fit: global) to sample pixels for")
    work = Work(image=np.asarray(image), metadata=dict(metadata))
    _run_steps(before, work, state, {})
    rng = np.random.default_rng([step.params["seed"], int(index)])
    return threshold_sample(work.image, step.params, rng)


def fit_global_from_samples(recipe: Recipe, samples: Sequence[np.ndarray],
                            state: dict[str, Any]) -> dict[str, Any]:
    """Fit the global step on the pooled samples of all inputs; return the new state."""
    _, step, _ = recipe.stages()
    if step is None:
        return dict(state)
    levels = fit_threshold_levels(list(samples), step.params)
    return {**state, "threshold": {
        "levels": levels, "inputs": len(samples),
        "fit_pixels": int(sum(np.size(s) for s in samples)),
        "sample_pixels": step.params["sample_pixels"], "seed": step.params["seed"]}}


def fit_global(recipe: Recipe, images: Iterable[Any], *,
               state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Prepare the state and fit the recipe's global step (if any) on all inputs.

    A global threshold is fitted on the pixels of every input (after the steps before it):
    all of them, or a seeded sample of ``sample_pixels`` per input for large images, so a
    series is segmented with one set of levels.

    Parameters
    ----------
    recipe : Recipe
    images : iterable
        Input paths, or ``(image, metadata)`` pairs.
    state : dict, optional
        From :func:`prepare_state` (made here when omitted).

    Returns
    -------
    dict
        The state; with a global threshold, ``state["threshold"]["levels"]``.

    Examples
    --------
    >>> import numpy as np
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold: {fit: global}]")
    >>> dim = np.r_[np.zeros(50), np.ones(50)].reshape(10, 10)
    >>> state = fit_global(recipe, [(dim, {"axes": "yx"}), (2 * dim, {"axes": "yx"})])
    >>> len(state["threshold"]["levels"])
    1
    """
    state = prepare_state(recipe) if state is None else dict(state)
    if recipe.global_step is None:
        return state
    samples = []
    for index, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            image, metadata = read_input(recipe, item)
        else:
            image, metadata = item
        samples.append(global_sample(recipe, image, metadata, state, index=index))
    return fit_global_from_samples(recipe, samples, state)


def state_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able part of a state (no pixel data), for provenance."""
    out: dict[str, Any] = {}
    if "normalize" in state:
        refs = state["normalize"]
        out["normalize"] = {"open_beam_files": len(refs["open_beam"]),
                            "dark_files": len(refs["dark"])}
    for key in ("classify", "threshold"):
        if key in state:
            out[key] = dict(state[key])
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "class"


def apply_recipe(recipe: Recipe, image: np.ndarray, metadata: dict,
                 state: dict[str, Any]) -> RecipeResult:
    """Run every step of the recipe on one input.

    Parameters
    ----------
    recipe : Recipe
    image : (M, N[, ...]) ndarray
        The input as :func:`read_input` returns it.
    metadata : dict
        Its metadata (``axes``, ``pixel_size``, ``unit``, ``exposure_time``, ...).
    state : dict
        From :func:`fit_global` (or :func:`prepare_state` without a global step).

    Returns
    -------
    RecipeResult

    Examples
    --------
    >>> import numpy as np
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold, label, measure]")
    >>> image = np.zeros((20, 20)); image[2:6, 2:6] = 1; image[10:15, 10:18] = 1
    >>> result = apply_recipe(recipe, image, {"axes": "yx", "pixel_size": [0.5, 0.5],
    ...                                       "unit": "mm"}, {})
    >>> result.measurements["objects"], result.measurements["foreground_area_mm2"]
    (2, 14.0)
    """
    work = Work(image=np.asarray(image), metadata=dict(metadata))
    used: dict[str, dict[str, Any]] = {}
    _run_steps(recipe.steps, work, state, used)
    segmentation = work.segmentation
    assert segmentation is not None  # every recipe has a segmentation step
    axes = str(metadata.get("axes") or "")
    if len(axes) != segmentation.ndim:
        axes = axes.replace("c", "")
    pixel_size, unit = spatial_pixel_size(metadata, segmentation.ndim)
    out_meta: dict[str, Any] = {k: work.metadata[k] for k in _KEPT_METADATA
                                if k in work.metadata}
    if len(axes) == segmentation.ndim:
        out_meta["axes"] = axes
        if pixel_size is not None:
            out_meta.update(pixel_size=list(pixel_size), unit=unit)
    out_meta["classes"] = list(work.class_names)
    if recipe.name:
        out_meta["recipe"] = recipe.name

    row: dict[str, Any] = {"input": metadata.get("source"), "shape": list(segmentation.shape)}
    if pixel_size is not None:
        row.update(pixel_size=list(pixel_size), unit=unit)
    counts = np.bincount(segmentation.ravel().astype(np.int64, copy=False),
                         minlength=max(work.class_values, default=0) + 1)
    cell = float(np.prod(pixel_size)) if pixel_size is not None else None
    size_key = f"volume_{unit}3" if segmentation.ndim == 3 else f"area_{unit}2"
    for value, name in zip(work.class_values, work.class_names):
        slug = _slug(name)
        row[f"{slug}_pixels"] = int(counts[value])
        row[f"{slug}_fraction"] = float(counts[value]) / max(segmentation.size, 1)
        if cell is not None:
            row[f"{slug}_{size_key}"] = float(counts[value]) * cell
    if work.objects is not None:
        row["objects"] = int(work.objects.max(initial=0))
    for key, info in used.items():
        for name, value in info.items():
            row[f"{key}_{name}"] = value
    return RecipeResult(segmentation=segmentation, metadata=out_meta,
                        objects=None if work.objects is None else work.objects,
                        object_rows=work.object_rows, measurements=row)
