"""Chunked (larger-than-memory) runs: which steps can run chunk by chunk, their halos, the grid.

A recipe with ``read: {chunks: ...}`` processes each input as one volume (or large image),
chunk by chunk. A step is *chunk-aware* when the value of every output pixel depends only on
the input within a fixed distance (its *halo*), or when its global part can be computed from
per-chunk summaries (connected components merged across chunk faces). Everything else is
refused when the recipe is loaded, with the reason, so a chunked result always equals the
in-memory result.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["check_chunked", "chunk_grid", "chunk_shape_for", "pixel_halo"]

#: Threshold options that look beyond a fixed neighbourhood (or fit per image).
_THRESHOLD_REFUSED = {
    "background": "the background estimate spans the whole image",
    "fill_holes": "whether a hole is enclosed depends on the whole image",
    "min_size": "an object's size depends on the whole image; use postprocess: {min_size: ...}",
    "opening": "use the file mode for morphological clean-up",
    "closing": "use the file mode for morphological clean-up",
    "guard_edges": "use the file mode for guarded multi-level thresholds",
}


def _refuse(where: str, step: Any, message: str) -> None:
    from ._recipe import RecipeError

    raise RecipeError(where, step.line, f"step '{step.name}' {message} with read chunks "
                      "(chunk-by-chunk results must equal the whole-volume result)")


def check_chunked(steps: Sequence[Any], where: str) -> None:
    """Refuse steps and parameters that cannot run chunk by chunk (only with ``chunks``)."""
    first = steps[0]
    if first.name != "read" or first.params.get("chunks") is None:
        return
    connectivity: dict[str, Any] = {}
    for step in steps:
        p = step.params
        if step.name == "normalize":
            _refuse(where, step, "cannot run: its reference frames and dose region are whole "
                    "images; normalize the projections first (niseg normalize)")
        elif step.name == "clean_spots":
            if p["method"] != "baseline":
                _refuse(where, step, f"method '{p['method']}' cannot run: it estimates the "
                        "noise of the whole frame; use method: baseline (a fixed threshold)")
            if p["max_area"] is not None:
                _refuse(where, step, "max_area cannot be used: a region's area depends on the "
                        "whole frame")
            if p["temporal"]:
                _refuse(where, step, "temporal cannot be used: it compares whole frames")
        elif step.name == "threshold":
            fixed = p["levels"] is not None or p["method"] == "manual"
            if p["method"] in ("local", "results", "hysteresis"):
                _refuse(where, step, f"method '{p['method']}' cannot run: its result depends "
                        "on each image's structure; use manual, fixed levels or fit: global")
            if not fixed and p["fit"] != "global":
                _refuse(where, step, f"method '{p['method']}' with fit: each cannot run: one "
                        "chunk's level would differ from the volume's; use fit: global, "
                        "levels or method manual")
            for name, why in _THRESHOLD_REFUSED.items():
                if p[name]:
                    _refuse(where, step, f"parameter '{name}' cannot be used ({why})")
        elif step.name == "cluster":
            _refuse(where, step, "cannot run: clusters are fitted per image; train a model and "
                    "use classify")
        elif step.name == "postprocess":
            for name in ("keep_largest", "fill_holes"):
                if p[name]:
                    _refuse(where, step, f"parameter '{name}' cannot be used: it is global by "
                            "nature (only min_size is chunk-aware)")
            if p["classes"] is not None:
                _refuse(where, step, "parameter 'classes' cannot be used (min_size applies to "
                        "binary results)")
            if p["min_size"]:
                connectivity[f"postprocess (line {step.line})"] = p["connectivity"]
        elif step.name == "label":
            if p["split"]:
                _refuse(where, step, "split cannot be used: the watershed needs whole objects")
            connectivity[f"label (line {step.line})"] = p["connectivity"]
        elif step.name == "write" and p["suffix"] != ".zarr":
            _refuse(where, step, f"suffix '{p['suffix']}' cannot be used: chunked outputs are "
                    "written as Zarr; give suffix: .zarr")
    if len(set(connectivity.values())) > 1:
        from ._recipe import RecipeError

        names = ", ".join(f"{k}: {v}" for k, v in connectivity.items())
        raise RecipeError(where, steps[-1].line, "with read chunks, postprocess min_size and "
                          f"label must use the same connectivity ({names})")


def chunk_shape_for(chunks: Sequence[int], shape: Sequence[int], source: str) -> tuple[int, ...]:
    """The chunk shape for an input of ``shape`` (one value for every axis, or one per axis).

    Examples
    --------
    >>> chunk_shape_for([16], (40, 50, 60), "a.zarr")
    (16, 16, 16)
    >>> chunk_shape_for([8, 16], (10, 70), "a.zarr")
    (8, 16)
    """
    values = list(chunks)
    if len(values) == 1:
        values = values * len(shape)
    if len(values) != len(shape):
        raise ValueError(f"read chunks holds {len(values)} values but '{source}' has "
                         f"{len(shape)} axes {tuple(shape)}")
    return tuple(min(int(c), int(n)) for c, n in zip(values, shape))


def chunk_grid(shape: Sequence[int], chunks: Sequence[int]) -> list[tuple[int, ...]]:
    """Indices of every chunk, in C order.

    Examples
    --------
    >>> chunk_grid((5, 4), (3, 3))
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    counts = [-(-int(n) // int(c)) for n, c in zip(shape, chunks)]
    return list(itertools.product(*(range(n) for n in counts)))


def pixel_halo(steps: Sequence[Any], axes: str, state: Mapping[str, Any]) -> tuple[int, ...]:
    """Context each chunk needs on every side: the sum of the pixel steps' halos, per axis.

    ``clean_spots`` needs half its median window along ``y`` and ``x``; ``classify`` the
    model's receptive-field radius along its spatial axes (the last ``spatial_dims`` axes);
    ``minus_log`` and ``threshold`` (with fixed levels) need none.

    Examples
    --------
    >>> from niseg.batch import Recipe
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [read: {chunks: 16}, "
    ...                           "clean_spots: {method: baseline, threshold: 5, size: 7}, "
    ...                           "threshold: {method: manual, value: 1}]")
    >>> pixel_halo(recipe.steps, "tyx", {})
    (0, 3, 3)
    """
    halo = [0] * len(axes)
    for step in steps:
        if step.name == "clean_spots":
            for i, letter in enumerate(axes):
                if letter in "yx":
                    halo[i] += int(step.params["size"]) // 2
        elif step.name == "classify":
            from ._steps_apply import load_cached_model

            entry = state["classify"]
            model = load_cached_model(entry["model"], entry["sha256"])
            dims = int(model.spatial_dims)
            import numpy as np

            radius = np.broadcast_to(np.asarray(model.halo, dtype=int), (dims,)).tolist()
            if dims > len(axes):
                raise ValueError(f"the model is {dims}-D but the input has axes '{axes}'")
            for i, r in zip(range(len(axes) - dims, len(axes)), radius):
                halo[i] += int(r)
    return tuple(halo)
