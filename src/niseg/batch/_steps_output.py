"""Outputs of a recipe run: names that mirror the inputs, writing, and a serial run.

Every output stays inside the output folder whatever the inputs are called; each is written
atomically and checked to be writable before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._recipe import Recipe
from ._steps_run import RecipeResult, apply_recipe, fit_global, read_input, state_summary

__all__ = ["check_planned_outputs", "output_keys", "planned_outputs", "run_recipe_serial",
           "write_result", "write_run_tables"]


def _write_params(recipe: Recipe) -> dict[str, Any] | None:
    return next((s.params for s in recipe.steps if s.name == "write"), None)


def planned_outputs(recipe: Recipe, key: str) -> list[str]:
    """Paths (relative to the output folder) that :func:`write_result` writes for ``key``.

    Examples
    --------
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold, measure, write]")
    >>> planned_outputs(recipe, "day1/a")
    ['day1/a.tif', 'day1/a_objects.tif', 'day1/a_objects.csv']
    """
    return [rel for _, rel in _planned(recipe, key)]


def _planned(recipe: Recipe, key: str) -> list[tuple[str, str]]:
    params = _write_params(recipe)
    if params is None:
        return []
    names = {s.name for s in recipe.steps}
    out = [("segmentation", f"{key}{params['suffix']}")]
    if params["objects"] and names & {"label", "measure"}:
        out.append(("objects", f"{key}_objects{_objects_suffix(params['suffix'])}"))
    if params["object_table"] and "measure" in names:
        out.append(("table", f"{key}_objects.csv"))
    return out


def _objects_suffix(suffix: str) -> str:
    from niseg.io import format_for_path, lossless_dtype_for

    # Object numbers are int32; a format that cannot hold them exactly gets a TIFF instead.
    fmt = format_for_path(Path(f"objects{suffix}"))
    return suffix if lossless_dtype_for(fmt, np.int32) else ".tif"


def _inside(out_dir: Path, rel: str) -> Path:
    root = out_dir.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"output '{rel}' would lie outside the output folder '{root}'")
    return target


def write_result(recipe: Recipe, result: RecipeResult, out_dir: str | os.PathLike, key: str,
                 *, overwrite: bool = False) -> list[str]:
    """Write one input's outputs (see :func:`planned_outputs`) atomically under ``out_dir``.

    Returns
    -------
    list of str
        The written paths, relative to ``out_dir``.
    """
    from niseg.io import write_image
    from niseg.objects import write_table_csv

    written = []
    for kind, rel in _planned(recipe, key):
        target = _inside(Path(out_dir), rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "table":
            write_table_csv(target, result.object_rows or [], overwrite=overwrite)
        elif kind == "objects":
            if result.objects is None:
                raise ValueError(f"the result for '{key}' holds no objects to write")
            meta = {k: v for k, v in result.metadata.items() if k not in ("classes", "recipe")}
            write_image(target, result.objects, meta, overwrite=overwrite)
        else:
            write_image(target, result.segmentation, result.metadata, overwrite=overwrite)
        written.append(rel)
    return written


def output_keys(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Output names that mirror the inputs: their paths below the inputs' common folder.

    Paths are made absolute and normalised first, so a name with ``..`` cannot point
    outside the output folder; the suffix is dropped.

    Examples
    --------
    >>> output_keys(["/data/day1/a.tif", "/data/day2/a.tif", "/data/day2/../day1/b.tif"])
    ['day1/a', 'day2/a', 'day1/b']
    """
    files = [Path(os.path.abspath(str(p).split("::")[0])) for p in inputs]
    if not files:
        raise ValueError("inputs is empty; give at least one image")
    common = Path(os.path.commonpath([f.parent for f in files]))
    keys = []
    for original, file in zip(inputs, files):
        key = file.relative_to(common).with_suffix("").as_posix()
        if key in keys:
            other = inputs[keys.index(key)]
            raise ValueError(f"inputs '{other}' and '{original}' would give the same output "
                             f"name '{key}'")
        keys.append(key)
    return keys


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: ";".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v
            for k, v in row.items()}


def run_recipe_serial(recipe: Recipe, inputs: str | os.PathLike | Sequence[str | os.PathLike],
                      out_dir: str | os.PathLike, *, overwrite: bool = False,
                      progress: Callable[[int, int, str], None] | None = None
                      ) -> list[dict[str, Any]]:
    """Run a recipe on every input in this process, one after the other.

    For small jobs and tests (the Dask runner is for many or large inputs). Every output is
    checked to be writable before any work; the run stops at the first input that fails.
    ``out_dir`` receives, mirroring the inputs' names, what the ``write`` step asks for,
    plus ``recipe.yaml`` (the validated recipe, defaults filled in), ``measurements.csv``
    (one row per input) and ``measurements.json`` (the rows, the recipe and the global fit).

    Parameters
    ----------
    recipe : Recipe
    inputs : str, PathLike or sequence of them
        Files, folders or globs (see :func:`niseg.io.expand_paths`).
    out_dir : str or PathLike
        Output folder; created if missing.
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        ``progress(done, total, input)`` after each input.

    Returns
    -------
    list of dict
        The measurements rows (with ``key`` and ``outputs``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from niseg.io import write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> image = np.zeros((16, 16), np.float32); image[4:8, 4:8] = 1
    >>> (folder / "in").mkdir()
    >>> _ = write_image(folder / "in" / "a.tif", image)
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold, measure, write]")
    >>> rows = run_recipe_serial(recipe, folder / "in", folder / "out")
    >>> rows[0]["objects"], sorted(p.name for p in (folder / "out").iterdir())
    (1, ['a.tif', 'a_objects.csv', 'a_objects.tif', 'measurements.csv', 'measurements.json',
         'recipe.yaml'])
    """
    from niseg.io import atomic_output, expand_paths

    if recipe.chunks is not None:
        raise ValueError("the recipe has read chunks (a volume larger than memory); run it "
                         "with run_recipe or niseg run")
    files = expand_paths(inputs if isinstance(inputs, (str, os.PathLike)) else list(inputs))
    keys = output_keys(files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_planned_outputs(recipe, files, keys, out, overwrite=overwrite)
    state = fit_global(recipe, files)
    with atomic_output(out / "recipe.yaml", overwrite=overwrite) as tmp:
        tmp.write_text(recipe.to_yaml(), encoding="utf-8")
    rows = []
    for i, (file, key) in enumerate(zip(files, keys)):
        image, metadata = read_input(recipe, file)
        result = apply_recipe(recipe, image, metadata, state)
        outputs = write_result(recipe, result, out, key, overwrite=overwrite)
        rows.append({"key": key, **result.measurements, "outputs": outputs})
        if progress is not None:
            progress(i + 1, len(files), str(file))
    write_run_tables(recipe, rows, state, out, overwrite=overwrite)
    return rows


#: Files every run writes beside the per-input outputs.
RUN_FILES = ("recipe.yaml", "measurements.csv", "measurements.json")


def check_planned_outputs(recipe: Recipe, files: Sequence[Path], keys: Sequence[str],
                          out: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, outputs that collide, overwrite an input, or exist already
    (unless ``overwrite``); create the sub-folders the outputs need."""
    from niseg.io import check_output_path

    planned = [rel for key in keys for rel in planned_outputs(recipe, key)] + list(RUN_FILES)
    sources = {Path(os.path.abspath(str(f).split("::")[0])).resolve() for f in files}
    seen: set[Path] = set()
    for rel in planned:
        target = _inside(out, rel)
        if target in seen:
            raise ValueError(f"two outputs would be written to '{target}'; rename an input")
        if target in sources:
            raise ValueError(f"output '{target}' is also an input; choose another out_dir")
        seen.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        check_output_path(target, overwrite=overwrite)


def write_run_tables(recipe: Recipe, rows: Sequence[dict[str, Any]], state: dict[str, Any],
                     out: Path, *, overwrite: bool,
                     failed: Sequence[dict[str, Any]] = ()) -> None:
    """Write ``measurements.csv`` (one row per input) and ``measurements.json`` (the rows,
    the recipe, the global fit and the failed inputs)."""
    from niseg import __version__
    from niseg.io import write_json
    from niseg.objects import write_table_csv

    write_table_csv(out / "measurements.csv", [_csv_row(r) for r in rows],
                    overwrite=overwrite)
    write_json(out / "measurements.json", {
        "niseg_version": __version__, "recipe": recipe.to_dict(),
        "global": state_summary(state), "files": list(rows), "failed": list(failed)},
        overwrite=overwrite)
