"""`niseg simulate KIND`: synthetic images with exact ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    OverwriteOpt,
    QuietOpt,
    _report_warnings,
    simulate_app,
)


@simulate_app.command("radiograph")
def simulate_radiograph_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same images.")
    ] = 0,
    size: Annotated[int, typer.Option("--size", help="Image size in pixels (square).")] = 256,
    counts: Annotated[
        float,
        typer.Option("--counts", help="Mean open-beam neutron counts per pixel (sets the noise)."),
    ] = 1000.0,
    blur: Annotated[
        float, typer.Option("--blur", help="Detector blur: Gaussian σ in pixels (0 = none).")
    ] = 0.0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a neutron radiograph of a phantom with its exact ground truth.

    Writes image.tif (detected counts, float32), open_beam.tif (an open-beam frame at the same
    exposure, for normalisation) and truth.tif (labels: 0 = open beam, 1..K = materials; the
    class names are in the TIFF metadata). Physics: Beer-Lambert attenuation with tabulated
    thermal-neutron coefficients, Poisson counting noise, optional detector blur.
    """
    from niseg.io import check_output_path, write_image
    from niseg.simulate import simulate_radiograph

    outdir = Path(out)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--out '{out}' exists and is not a folder")
    names = ("image.tif", "open_beam.tif", "truth.tif")
    if outdir.is_dir():
        for name in names:
            check_output_path(outdir / name, overwrite=overwrite)
    result = simulate_radiograph(size=size, counts=counts, blur=blur, seed=seed)
    outdir.mkdir(parents=True, exist_ok=True)
    with _report_warnings(quiet):
        write_image(outdir / "image.tif", result.image, result.metadata, overwrite=overwrite)
        write_image(
            outdir / "open_beam.tif", result.open_beam, result.metadata, overwrite=overwrite
        )
        write_image(outdir / "truth.tif", result.truth, result.metadata, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {', '.join(names)} to {outdir}")
