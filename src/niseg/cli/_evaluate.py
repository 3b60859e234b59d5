"""`niseg evaluate`: score a segmentation against ground truth."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import numpy as np
import typer

from niseg.io import to_jsonable

from ._app import (
    QuietOpt,
    _parse_roi,
    app,
)


@app.command()
def evaluate(
    truth: Annotated[str, typer.Argument(help="Ground-truth label image.")],
    pred: Annotated[str, typer.Argument(help="Segmentation to score, same shape as TRUTH.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    foreground: Annotated[
        Optional[int],
        typer.Option(
            "--foreground",
            help=(
                "Score only this label value as foreground against everything else (e.g. 255 "
                "for a 0/255 mask). By default two binary images compare non-zero against "
                "zero, and multi-class images are scored per class."
            ),
        ),
    ] = None,
    pred_foreground: Annotated[
        int | None,
        typer.Option(
            "--pred-foreground",
            help=(
                "The prediction's foreground value when it differs from the truth's, e.g. 2 "
                "for a model trained on strokes (1 = background, 2 = object) scored against "
                "a 0/255 mask. The truth's foreground is --foreground, or any non-zero value."
            ),
        ),
    ] = None,
    binary: Annotated[
        bool,
        typer.Option(
            "--binary",
            help=(
                "Score any non-zero value as foreground in both images, e.g. a material label "
                "map (0 = open beam, 1..K = materials) against a binary segmentation."
            ),
        ),
    ] = False,
    roi: Annotated[
        Optional[str],
        typer.Option(
            "--roi", help="Score only this region: y0:y1,x0:x1 (z0:z1,y0:y1,x0:x1 in 3D)."
        ),
    ] = None,
    ignore: Annotated[
        Optional[int],
        typer.Option(
            "--ignore", help="Leave out pixels where TRUTH has this value (e.g. unlabelled)."
        ),
    ] = None,
    proba: Annotated[
        Optional[str],
        typer.Option(
            "--proba",
            help=(
                "Foreground probability map (same shape as TRUTH, or classes on the last axis as "
                "written by --proba-out) to add the ROC AUC."
            ),
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Score a segmentation against ground truth: Dice, IoU, precision, recall, confusion matrix.

    Two binary images (values 0 and one other value each) compare non-zero against zero;
    label images with more classes are scored per class, with macro averages.
    """
    from niseg.io import read_image
    from niseg.metrics import segmentation_report

    truth_img, _ = read_image(truth)
    pred_img, _ = read_image(pred)
    if truth_img.shape != pred_img.shape:
        raise ValueError(
            f"prediction '{pred}' has shape {pred_img.shape} but truth '{truth}' has shape "
            f"{truth_img.shape}"
        )
    proba_img = None
    if proba is not None:
        proba_img, _ = read_image(proba)
        proba_img = _foreground_probability(proba_img, truth_img.shape, proba)
    mask = None
    if roi is not None:
        mask = np.zeros(truth_img.shape, dtype=bool)
        mask[_parse_roi(roi, truth_img.ndim)] = True
        if not mask.any():
            raise ValueError(
                f"--roi {roi!r} selects no pixels of an image of shape {truth_img.shape}"
            )
    if pred_foreground is not None:
        if binary:
            raise ValueError("give either --binary or --pred-foreground, not both")
        if ignore is not None:
            keep = np.asarray(truth_img) != ignore
            mask = keep if mask is None else (mask & keep)
            ignore = None
        truth_fg = np.asarray(truth_img) != 0 if foreground is None else (
            np.asarray(truth_img) == foreground)
        truth_img = truth_fg.astype(np.uint8)
        pred_img = (np.asarray(pred_img) == pred_foreground).astype(np.uint8)
        foreground = None
    if binary:
        if foreground is not None:
            raise ValueError("give either --binary or --foreground, not both")
        if ignore is not None:
            # leave the ignored truth pixels out before the truth is folded to 0/1
            keep = np.asarray(truth_img) != ignore
            mask = keep if mask is None else (mask & keep)
            ignore = None
        truth_img = (np.asarray(truth_img) != 0).astype(np.uint8)
        pred_img = (np.asarray(pred_img) != 0).astype(np.uint8)
    result = segmentation_report(
        truth_img, pred_img, proba=proba_img, foreground=foreground, mask=mask, ignore=ignore
    )
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2))
        return
    if quiet:
        return
    for key in (
        "dice",
        "iou",
        "precision",
        "recall",
        "accuracy",
        "balanced_accuracy",
        "ari",
        "roc_auc",
    ):
        if key in result and result[key] is not None:
            typer.echo(f"{key:>18}: {result[key]:.4f}")
    typer.echo(f"{'confusion':>18}: rows = truth {result.get('labels')}, columns = prediction")
    for row in result["confusion"]:
        typer.echo(" " * 20 + "  ".join(f"{v:>10}" for v in row))


def _foreground_probability(proba: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float32)
    if proba.shape == shape:
        return proba
    if proba.ndim == len(shape) + 1 and proba.shape[:-1] == shape and proba.shape[-1] == 2:
        return proba[..., 1]
    raise ValueError(
        f"probability map '{name}' has shape {proba.shape}; expected {shape} or {shape + (2,)}"
    )
