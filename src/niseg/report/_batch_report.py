"""The HTML report of a batch run (``niseg run``): recipe, versions, thumbnails, measurements,
histograms, failures and, where truth is given, confusion matrix and ROC curve."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

import numpy as np

from niseg.report._batch_figures import (
    confusion_figure,
    histograms_figure,
    plane_yx,
    roc_figure,
    thumbnail_png,
)

__all__ = ["write_batch_report"]

_LIBRARIES = ("numpy", "scipy", "scikit-image", "scikit-learn", "tifffile", "dask",
              "matplotlib", "zarr", "h5py", "torch")
# Columns that describe an input rather than measure it; they stay out of the histograms.
_NOT_MEASURED = {"key", "input", "shape", "pixel_size", "unit", "outputs"}
_MAX_HISTOGRAMS = 8
# Of the scores against truth, Dice alone is drawn; the table holds the rest.
_NOT_DRAWN = {"iou", "precision", "recall", "accuracy", "roc_auc"}
# The pooled ROC curve is exact for up to this many pixels; beyond, each file gives an equal
# seeded sample, so the curve stays reproducible and its memory bounded.
_ROC_PIXELS = 4_000_000
_EVALUATION_KEYS = ("dice", "iou", "precision", "recall", "accuracy", "roc_auc")


def _load_run(run_dir: Path) -> tuple[dict[str, Any], str]:
    if not run_dir.is_dir():
        raise ValueError(f"run folder '{run_dir}' does not exist or is not a folder")
    path = run_dir / "measurements.json"
    if not path.is_file():
        raise ValueError(f"'{run_dir}' is not a niseg run folder: it holds no measurements.json "
                         "(niseg run writes it when a run ends)")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"'{path}' could not be read as JSON: {error}") from None
    if (not isinstance(run, dict) or not isinstance(run.get("files"), list)
            or not all(isinstance(r, dict) and isinstance(r.get("key"), str)
                       for r in run["files"])):
        raise ValueError(f"'{path}' is not the measurements of a niseg run (no list of files "
                         "with keys)")
    recipe_path = run_dir / "recipe.yaml"
    if recipe_path.is_file():
        recipe_text = recipe_path.read_text(encoding="utf-8", errors="replace")
    else:
        import yaml

        recipe_text = yaml.safe_dump(run.get("recipe"), sort_keys=False)
    return run, recipe_text


def _steps(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    recipe = run.get("recipe") if isinstance(run.get("recipe"), Mapping) else {}
    out: dict[str, dict[str, Any]] = {}
    for step in recipe.get("steps") or []:
        if isinstance(step, Mapping) and len(step) == 1:
            name, params = next(iter(step.items()))
            out.setdefault(str(name), dict(params) if isinstance(params, Mapping) else {})
    return out


def _references(source: Any, keys: list[str], name: str) -> dict[str, Any]:
    """Key -> file or array, from a folder (``<folder>/<key>.<suffix>``) or a mapping."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        unknown = [k for k in source if k not in keys]
        if unknown:
            raise ValueError(f"{name} names '{unknown[0]}', which is not an input of the run "
                             f"(its inputs are {', '.join(keys[:5])}"
                             f"{', ...' if len(keys) > 5 else ''})")
        return dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder or a dict of input key to file or array, "
                        f"got {type(source).__name__}")
    folder = Path(source)
    if not folder.is_dir():
        raise ValueError(f"{name} folder '{folder}' does not exist or is not a folder")
    from niseg.io import expand_paths

    found: dict[str, Any] = {}
    for key in keys:
        parent = (folder / key).parent
        if not parent.is_dir():
            continue
        stem = Path(key).name
        for match in sorted(parent.iterdir()):
            if match.stem != stem or not match.suffix:
                continue
            try:  # skip files of the same name that are no images (a.csv beside a.tif)
                found[key] = expand_paths(match)[0]
            except ValueError:
                continue
            break
    return found


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, (str, os.PathLike)):
        from niseg.io import read_image

        return np.asarray(read_image(value)[0])
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array or an image file, got dtype "
                        f"{array.dtype}")
    return array


def _foreground_proba(proba: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    if proba.shape == shape:
        return proba
    if proba.shape == (*shape, 2):
        return proba[..., 1]
    raise ValueError(f"{name} has shape {proba.shape} but the segmentation has shape {shape}; "
                     "give the foreground probability, or two classes on the last axis")


def _segmentation_path(run_dir: Path, row: Mapping[str, Any], suffix: str | None) -> Path | None:
    outputs = [str(o) for o in row.get("outputs") or []]
    wanted = f"{row['key']}{suffix}" if suffix else None
    for rel in outputs:
        if rel == wanted or (wanted is None and "_objects" not in Path(rel).name):
            return run_dir / rel
    return None


def _exists(path: str) -> bool:
    return Path(path.split("::")[0]).exists()


def _versions(run: Mapping[str, Any]) -> dict[str, str]:
    from niseg import __version__

    out = {"niseg (the run)": str(run.get("niseg_version", "not recorded")),
           "niseg (this report)": __version__, "Python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    return out


def _global_table(summary: Any) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if isinstance(summary, Mapping):
        for step, values in summary.items():
            if isinstance(values, Mapping):
                table.update({f"{step} {k}".replace("_", " "): v for k, v in values.items()})
            else:
                table[str(step)] = values
    return table


def _model_sections(steps: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The classify step's model: what it is, how it was trained, its training curves."""
    if "classify" not in steps:
        return []
    from niseg.models import read_model_info
    from niseg.report._training_figures import training_curves_figure

    path = str(steps["classify"].get("model", ""))
    try:
        info = read_model_info(path)
    except (ValueError, OSError) as error:
        return [{"heading": "Model", "text": f"The model file could not be read: {error}"}]
    table = {"file": path, "kind": info.get("kind"), "classes": info.get("classes"),
             "class names": info.get("class_names"), "made with niseg": info.get("niseg_version"),
             **{f"provenance: {k}": v for k, v in (info.get("provenance") or {}).items()}}
    sections: list[dict[str, Any]] = [{"heading": "Model", "table": table}]
    state = info.get("state") if isinstance(info.get("state"), Mapping) else {}
    history = state.get("history_")
    if isinstance(history, list) and history:
        try:
            figure = training_curves_figure(history, best_epoch=state.get("best_epoch_"))
        except (TypeError, ValueError) as error:
            sections.append({"heading": "Training curves",
                             "text": f"The recorded training history cannot be drawn: {error}"})
        else:
            sections.append({"heading": "Training curves", "figure": figure,
                             "text": "Loss and validation Dice per epoch of the model's "
                                     "training, as recorded in the model file."})
    return sections


def _histogram_columns(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names and k not in _NOT_MEASURED | _NOT_DRAWN
                  and not k.startswith("background_")]  # a binary result's complement
    fractions = {n[: -len("_fraction")] for n in names if n.endswith("_fraction")}
    columns: dict[str, list[float]] = {}
    for name in names:
        if name.endswith("_pixels") and name[: -len("_pixels")] in fractions:
            continue  # the fraction says the same, comparably across image sizes
        values = [row.get(name) for row in rows]
        if any(isinstance(v, bool) or (v is not None and not isinstance(v, (int, float)))
               for v in values):
            continue
        numbers = [float(v) for v in values if v is not None and np.isfinite(v)]
        if len(numbers) >= 2 and min(numbers) != max(numbers):
            columns[name] = numbers
        if len(columns) == _MAX_HISTOGRAMS:
            break
    return columns


class _Evaluation:
    """Confusion counts and ROC samples pooled over the files that have truth."""

    def __init__(self) -> None:
        self.confusion: dict[tuple[int, int], int] = {}
        self.binary = True
        self.scores: list[np.ndarray] = []
        self.truths: list[np.ndarray] = []
        self.n_files = 0

    def add(self, index: int, truth: np.ndarray, seg: np.ndarray, fg: np.ndarray | None,
            budget: int) -> dict[str, Any]:
        from niseg.metrics import segmentation_report

        report = segmentation_report(truth, seg, proba=fg)
        self.n_files += 1
        self.binary &= report["mode"] == "binary"
        labels = report["labels"]
        for i, row in enumerate(report["confusion"]):
            for j, count in enumerate(row):
                cell = (int(labels[i]), int(labels[j]))
                self.confusion[cell] = self.confusion.get(cell, 0) + int(count)
        if fg is not None and report["mode"] == "binary":
            t, s = (truth != 0).ravel(), fg.ravel().astype(np.float64)
            if t.size > budget:
                pick = np.random.default_rng(index).choice(t.size, budget, replace=False)
                t, s = t[pick], s[pick]
            self.truths.append(t)
            self.scores.append(s)
        return {k: report[k] for k in _EVALUATION_KEYS if report.get(k) is not None}

    def sections(self, class_names: Mapping[int, str]) -> list[dict[str, Any]]:
        from niseg.metrics import roc_auc, roc_curve

        if not self.n_files:
            return []
        labels = sorted({a for a, _ in self.confusion} | {b for _, b in self.confusion})
        matrix = np.zeros((len(labels), len(labels)), np.int64)
        for (a, b), count in self.confusion.items():
            matrix[labels.index(a), labels.index(b)] += count
        if self.binary and labels == [0, 1]:
            names = ["background", "foreground"]
        else:
            names = [class_names.get(v, str(v)) for v in labels]
        out = [{"heading": "Confusion matrix", "figure": confusion_figure(matrix, names),
                "text": f"Segmentation against truth, pixels of {self.n_files} file"
                        f"{'s' if self.n_files != 1 else ''} pooled."
                        + (" Binary images are compared non-zero against zero."
                           if self.binary else "")}]
        if self.scores:
            truth, scores = np.concatenate(self.truths), np.concatenate(self.scores)
            if truth.any() and not truth.all():
                fpr, tpr, _ = roc_curve(truth, scores, max_points=1000)
                auc = roc_auc(truth, scores)
                out.append({"heading": "ROC curve",
                            "figure": roc_figure(fpr, tpr, auc, len(self.scores)),
                            "text": "Foreground probability against the truth, pixels of "
                                    "the files with a probability map pooled."})
        return out


def write_batch_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    truth: str | os.PathLike | Mapping[str, Any] | None = None,
    proba: str | os.PathLike | Mapping[str, Any] | None = None,
    max_thumbnails: int = 48,
    title: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write a self-contained HTML report of a batch run (``niseg run``, ``run_recipe``).

    The page shows the recipe, the versions of niseg and its libraries, the global fit, a
    grid of thumbnails of the inputs with their segmentation overlaid, the per-file
    measurements as a table the reader can sort by clicking a column header, histograms of the
    per-file numbers, the inputs that failed with their error, the model of a ``classify``
    step (with its training curves when the model file records them) and, where truth masks
    are given, each file's scores, the pooled confusion matrix and (with probability maps) the
    ROC curve. Figures are embedded as PNG; the page loads nothing from the network and every
    text from the run folder is HTML-escaped. Inputs are found through ``measurements.json``;
    one that no longer exists is shown as a grey "input not found" tile.

    Parameters
    ----------
    run_dir : str or PathLike
        The run folder: it holds ``measurements.json`` and ``recipe.yaml``.
    out : str or PathLike, optional
        The ``.html`` file to write; default ``run_dir/report.html``.
    truth : str, PathLike or dict, optional
        Truth masks: a folder holding ``<key>.<suffix>`` for the inputs that have one (keys as
        in the run's outputs, e.g. ``day1/a``), or a dict of key to image file or
        ``(M, N[, P])`` array. Compared with the segmentation as ``niseg evaluate`` does.
    proba : str, PathLike or dict, optional
        Foreground probability maps, given like ``truth``: ``(M, N[, P])``, or ``(M, N[, P],
        2)`` with the classes on the last axis; they add ROC AUC and the ROC curve.
    max_thumbnails : int
        Most inputs shown as thumbnails (the first ones of the run).
    title : str, optional
        Page title; by default from the recipe's name.
    overwrite : bool
        Replace an existing report.
    progress : callable, optional
        Called as ``progress(done, total, text)`` after each input.

    Returns
    -------
    Path
        The written report.

    Raises
    ------
    ValueError
        If ``run_dir`` is not a run folder, or a truth or probability map does not fit its
        segmentation.
    FileExistsError
        If ``out`` exists and ``overwrite`` is False (checked before any work).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from niseg.io import write_image
    >>> from niseg.batch import Recipe, run_recipe_serial
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "in").mkdir()
    >>> for name in ("a", "b"):
    ...     image = np.zeros((32, 32), np.float32); image[4:12, 4:20] = 1
    ...     _ = write_image(folder / "in" / f"{name}.tif", image)
    >>> recipe = Recipe.from_yaml("niseg_recipe: 1\\nsteps: [threshold, measure, write]")
    >>> _ = run_recipe_serial(recipe, folder / "in", folder / "run")
    >>> page = write_batch_report(folder / "run", truth={"a": image > 0})
    >>> page.name, "Confusion matrix" in page.read_text()
    ('report.html', True)
    """
    from niseg.io import check_output_path, read_image
    from niseg.report._html import write_html_report

    if isinstance(max_thumbnails, bool) or not isinstance(max_thumbnails, (int, np.integer)) \
            or max_thumbnails < 0:
        raise ValueError(f"max_thumbnails must be an integer of at least 0, got "
                         f"{max_thumbnails!r}")
    run_dir = Path(run_dir)
    run, recipe_text = _load_run(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    check_output_path(out, overwrite=overwrite)
    rows: list[dict[str, Any]] = run["files"]
    keys = [r["key"] for r in rows]
    truths = _references(truth, keys, "truth")
    probas = _references(proba, keys, "proba")
    steps = _steps(run)
    suffix = steps.get("write", {}).get("suffix")
    read_axes = steps.get("read", {}).get("axes")

    evaluation = _Evaluation()
    budget = max(1, _ROC_PIXELS // max(1, len(probas)))
    tiles: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    class_names: dict[int, str] = {}
    for index, row in enumerate(rows):
        key = row["key"]
        seg_path = _segmentation_path(run_dir, row, suffix)
        seg = seg_meta = None
        needed = key in truths or index < max_thumbnails  # others are not read at all
        if needed and seg_path is not None and seg_path.exists():
            seg, seg_meta = read_image(seg_path)
            seg = np.asarray(seg)
            names = seg_meta.get("classes")
            if isinstance(names, list) and len(names) > 1:
                start = 0 if len(names) == int(seg.max(initial=0)) + 1 else 1
                class_names.update({start + i: str(n) for i, n in enumerate(names)})
        scores: dict[str, Any] = {}
        if key in truths:
            if seg is None:
                raise ValueError(f"truth is given for '{key}' but the run folder holds no "
                                 "segmentation of it (a recipe without a write step?)")
            t = _as_array(truths[key], f"truth of '{key}'")
            if t.shape != seg.shape:
                raise ValueError(f"truth of '{key}' has shape {t.shape} but its segmentation "
                                 f"has shape {seg.shape}")
            fg = None
            if key in probas:
                fg = _foreground_proba(_as_array(probas[key], f"proba of '{key}'"), seg.shape,
                                       f"proba of '{key}'")
            scores = evaluation.add(index, t, seg, fg, budget)
        if index < max_thumbnails:
            tiles.append(_tile(row, seg, seg_meta, scores, read_axes))
        shape = row.get("shape")
        table.append({"key": key,
                      "shape": "x".join(map(str, shape)) if isinstance(shape, list) else shape,
                      **{k: v for k, v in row.items() if k not in _NOT_MEASURED}, **scores})
        if progress is not None:
            progress(index + 1, len(rows), key)

    failed = [f for f in run.get("failed") or [] if isinstance(f, Mapping)]
    recipe = run.get("recipe") if isinstance(run.get("recipe"), Mapping) else {}
    name = recipe.get("name")
    intro = (f"{len(rows)} input{'s' if len(rows) != 1 else ''} segmented, {len(failed)} "
             f"failed, in the run folder {run_dir.resolve()}.")
    if recipe.get("description"):
        intro += f"\n\n{recipe['description']}"
    sections: list[dict[str, Any]] = [
        {"heading": "Run", "text": intro},
        {"heading": "Recipe", "code": recipe_text},
        {"heading": "Versions", "table": _versions(run)},
    ]
    global_fit = _global_table(run.get("global"))
    if global_fit:
        sections.append({"heading": "Global fit", "table": global_fit})
    sections += _model_sections(steps)
    if tiles:
        shown = f"The first {len(tiles)} of {len(rows)} inputs" if len(tiles) < len(rows) \
            else "Every input"
        sections.append({"heading": "Inputs and segmentations", "gallery": tiles,
                         "text": f"{shown}, reduced to about 160 pixels, with the segmentation "
                                 "tinted by class."})
    if table:
        sections.append({"heading": "Measurements per file", "table": table, "sortable": True,
                         "text": "Click a column header to sort."})
    columns = _histogram_columns(table)
    if columns:
        sections.append({"heading": "Histograms", "figure": histograms_figure(columns)})
    sections += evaluation.sections(class_names)
    if failed:
        sections.append({"heading": "Failed inputs", "table": [
            {"key": f.get("key"), "input": f.get("input"), "error": f.get("error")}
            for f in failed]})
    if title is None:
        title = f"niseg batch report: {name}" if name else "niseg batch report"
    return write_html_report(out, title=title, sections=sections, overwrite=overwrite)


def _tile(row: Mapping[str, Any], seg: np.ndarray | None, seg_meta: Mapping[str, Any] | None,
          scores: Mapping[str, Any], read_axes: str | None) -> dict[str, Any]:
    """One gallery item: the input's thumbnail, or a grey tile saying why there is none."""
    from niseg.io import read_image

    caption = str(row["key"])
    if "dice" in scores:
        caption += f" (Dice {scores['dice']:.3f})"
    source = str(row.get("input", ""))
    if not source or not _exists(source):
        return {"caption": caption, "image": None, "note": "input not found"}
    try:
        image, meta = read_image(source, axes=read_axes, lazy=True)
        plane = plane_yx(image, meta.get("axes"))
    except (ValueError, OSError) as error:
        return {"caption": caption, "image": None,
                "note": f"input could not be read: {' '.join(str(error).split())[:200]}"}
    seg_plane = None
    note = None
    if seg is None:
        note = "no segmentation written"
    else:
        seg_plane = plane_yx(seg, (seg_meta or {}).get("axes"))
        if seg_plane.shape != plane.shape:
            seg_plane, note = None, "segmentation not shown: its shape differs"
    return {"caption": caption, "image": thumbnail_png(plane, seg_plane), "note": note}
