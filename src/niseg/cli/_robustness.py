"""`niseg robustness`: how often a method meets a criterion on simulated realizations."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._app import OverwriteOpt, QuietOpt, _progress, _report_warnings, app


@app.command("robustness")
def robustness_command(
    method: Annotated[
        str, typer.Option("--method", help="Automatic threshold of niseg.threshold: otsu, li, "
                                           "yen, isodata, mean, triangle, minimum, ...")
    ] = "otsu",
    scenario: Annotated[
        str,
        typer.Option("--scenario", help="radiograph (flat-field corrected, noise and blur), "
                                        "falloff (no flat field), drift (beam changed), "
                                        "cupping (bowl-shaped offset). Images are attenuation "
                                        "-log(I/I0): the iron rods are bright."),
    ] = "radiograph",
    n: Annotated[int, typer.Option("--n", help="Number of realizations per counts level.")] = 100,
    criterion: Annotated[
        str, typer.Option("--criterion", help="METRIC:THRESHOLD met when score >= threshold; "
                                              "metrics dice, iou, precision, recall, accuracy, "
                                              "ari.")
    ] = "dice:0.9",
    counts: Annotated[
        str, typer.Option("--counts", help="Open-beam counts per pixel; several levels "
                                           "separated by commas are compared side by side.")
    ] = "1000",
    blur: Annotated[float, typer.Option("--blur", help="Detector blur sigma in pixels.")] = 1.0,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 96,
    strength: Annotated[
        float | None, typer.Option("--strength", help="Strength of the illumination defect of "
                                                      "the scenario (0 to below 1).")
    ] = None,
    foreground: Annotated[
        str, typer.Option("--foreground", help="bright or dark objects.")
    ] = "bright",
    sigma: Annotated[
        float, typer.Option("--sigma", help="Gaussian smoothing in pixels before the threshold.")
    ] = 0.0,
    figure: Annotated[
        str | None, typer.Option("--figure", help="Also write the histogram of the scores "
                                                  "with the criterion line (PNG/PDF/SVG).")
    ] = None,
    stats_out: Annotated[
        str | None, typer.Option("--stats-out", help="Also write JSON: parameters, scores of "
                                                     "every realization, fraction meeting "
                                                     "the criterion.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Master seed of the realizations.")] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Apply a threshold method to N simulated radiographs with known truth and report how
    often it meets the criterion, e.g. 'in 97 % of 100 realizations Dice >= 0.9'.
    """
    from niseg.io import check_output_path, write_json
    from niseg.report import robustness_figure, save_figure
    from niseg.robustness import robustness as run_robustness
    from niseg.robustness import scenario as make_scenario
    from niseg.robustness import threshold_method

    targets = [p for p in (figure, stats_out) if p is not None]
    if len(set(targets)) != len(targets):
        raise ValueError("--figure and --stats-out name the same file; each output needs its "
                         "own file")
    for target in targets:
        check_output_path(target, overwrite=overwrite)
    levels = _parse_counts(counts)
    segment = threshold_method(method, foreground=foreground, sigma=sigma)
    simulators = [make_scenario(scenario, size=size, counts=c, blur=blur, strength=strength)
                  for c in levels]
    reports = []
    with _report_warnings(quiet), _progress(quiet, "realizations") as update:
        total = n * len(levels)
        for i, simulate in enumerate(simulators):
            def step(done: int, _n: int, offset: int = i * n) -> None:
                update(offset + done, total)

            reports.append(run_robustness(segment, simulate, n=n, criterion=criterion,
                                          seed=seed, progress=step))
    if stats_out is not None:
        write_json(stats_out, _stats(reports, levels, method=method, scenario=scenario,
                                     foreground=foreground, sigma=sigma, blur=blur, size=size,
                                     strength=strength, seed=seed), overwrite=overwrite)
    if figure is not None:
        names = [f"{c:g} counts" for c in levels] if len(levels) > 1 else None
        fig = robustness_figure([r.scores for r in reports], threshold=reports[0].threshold,
                                metric=reports[0].metric, names=names,
                                title=f"{method} on {scenario}, {n} realizations each")
        save_figure(fig, figure, overwrite=overwrite)
    if not quiet:
        for c, report in zip(levels, reports, strict=True):
            typer.echo(f"{c:g} counts: {report.summary} (median {_median(report):.3f})")


def _median(report: Any) -> float:
    import numpy as np

    return float(np.nanmedian(report.scores))


def _parse_counts(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--counts must be numbers separated by commas, e.g. 10,100,1000, "
                         f"got {text!r}") from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise ValueError(f"--counts must be positive numbers of counts per pixel, got {text!r}")
    return values


def _stats(reports: list, levels: list[float], **parameters: Any) -> dict[str, Any]:
    return {
        "parameters": parameters,
        "criterion": {"metric": reports[0].metric, "threshold": reports[0].threshold},
        "runs": [{"counts": c, **r.to_dict()} for c, r in zip(levels, reports, strict=True)],
    }
