"""`niseg simulate KIND`: synthetic images with exact ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from ._app import OverwriteOpt, QuietOpt, _report_warnings, simulate_app


@simulate_app.command("radiograph")
def simulate_radiograph_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same images.")
    ] = 0,
    size: Annotated[int, typer.Option("--size", help="Image size in pixels (square).")] = 256,
    counts: Annotated[
        float,
        typer.Option(
            "--counts",
            help="Open-beam counts per pixel per second of exposure (sets the noise).",
        ),
    ] = 1000.0,
    blur: Annotated[
        float, typer.Option("--blur", help="Detector blur: Gaussian σ in pixels (0 = none).")
    ] = 0.0,
    radiation: Annotated[
        str, typer.Option("--radiation", help="neutron (thermal) or xray (monochromatic).")
    ] = "neutron",
    energy: Annotated[
        Optional[float],
        typer.Option("--energy", help="X-ray energy in keV (with --radiation xray)."),
    ] = None,
    exposure: Annotated[
        float, typer.Option("--exposure", help="Exposure time of each frame in seconds.")
    ] = 1.0,
    dark_current: Annotated[
        float,
        typer.Option(
            "--dark-current",
            help="Camera dark signal in counts per pixel per frame; also writes dark.tif.",
        ),
    ] = 0.0,
    spots: Annotated[
        bool,
        typer.Option(
            "--spots",
            help=(
                "Add gamma spots (sharp bright and dark outliers, 1-10 px) to image.tif; also "
                "writes spot_mask.tif (1 bright, 2 dark) and spot_free.tif."
            ),
        ),
    ] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a neutron or X-ray radiograph of a phantom with its exact ground truth.

    Writes image.tif (detected counts, float32), open_beam.tif (an open-beam frame at the same
    exposure, for normalisation) and truth.tif (labels: 0 = open beam, 1..K = materials; the
    class names are in the TIFF metadata); with --dark-current also dark.tif, with --spots also
    spot_mask.tif and spot_free.tif. Physics: Beer-Lambert attenuation with tabulated
    coefficients, Poisson counting noise, optional detector blur, then camera dark signal and
    gamma spots (which the scintillator does not blur).
    """
    from niseg.simulate import simulate_radiograph

    result = simulate_radiograph(
        size=size,
        counts=counts,
        blur=blur,
        seed=seed,
        radiation=radiation,
        energy_kev=energy,
        exposure=exposure,
        dark_current=dark_current,
        spots={} if spots else None,
    )
    meta = result.metadata
    open_meta = {**meta, "exposure_time": meta.get("open_beam_exposure_time", exposure)}
    outputs = [
        ("image.tif", result.image, meta),
        ("open_beam.tif", result.open_beam, open_meta),
        ("truth.tif", result.truth, meta),
    ]
    if result.dark is not None:
        outputs.append(("dark.tif", result.dark, meta))
    if result.spot_mask is not None:
        outputs.append(("spot_mask.tif", result.spot_mask, {**meta, "classes": ["bright", "dark"]}))
        outputs.append(("spot_free.tif", result.spot_free, meta))
    _write_outputs(out, outputs, overwrite=overwrite, quiet=quiet)


@simulate_app.command("spots")
def simulate_spots_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder (created if missing).")],
    size: Annotated[int, typer.Option("--size", help="Image size in pixels (square).")] = 256,
    counts: Annotated[
        float, typer.Option("--counts", help="Mean open-beam counts per pixel (sets the noise).")
    ] = 1000.0,
    density: Annotated[
        float, typer.Option("--density", help="Fraction of pixels covered by spots.")
    ] = 0.003,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives the same images.")
    ] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a radiograph with gamma spots, for testing spot cleaning against the truth.

    Writes raw.tif (the radiograph with spots), spot_mask.tif (exactly the changed pixels:
    1 bright, 2 dark), clean.tif (the same radiograph without spots) and open_beam.tif.
    """
    from niseg.simulate import simulate_spots

    sim = simulate_spots(size=size, counts=counts, density=density, seed=seed)
    meta = sim.metadata
    outputs = [
        ("raw.tif", sim.raw, meta),
        ("spot_mask.tif", sim.mask, {**meta, "classes": ["bright", "dark"]}),
        ("clean.tif", sim.clean, meta),
        ("open_beam.tif", sim.open_beam, meta),
    ]
    _write_outputs(out, outputs, overwrite=overwrite, quiet=quiet)


def _parse_shape(text: str, *, dims: tuple[int, ...], option: str) -> tuple[int, ...]:
    """Parse '64,128,128' (or a single number for a cube/square) into a shape."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"{option} {text!r} must be whole numbers separated by commas") from None
    if len(values) == 1:  # one number: a square image, or a cube where only 3D makes sense
        values = values * dims[0]
    if len(values) not in dims:
        allowed = " or ".join(str(d) for d in dims)
        raise ValueError(f"{option} {text!r} must give {allowed} sizes, got {len(values)}")
    return values


def _write_outputs(
    out: str,
    outputs: list[tuple[str, Any, dict]],
    *,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Write simulated arrays to OUT/, refusing existing files before writing any."""
    from niseg.io import check_output_path, write_image

    outdir = Path(out)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--out '{out}' exists and is not a folder")
    if outdir.is_dir():
        for name, _, _ in outputs:
            check_output_path(outdir / name, overwrite=overwrite)
    outdir.mkdir(parents=True, exist_ok=True)
    with _report_warnings(quiet):
        for name, array, metadata in outputs:
            write_image(outdir / name, array, metadata, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {', '.join(name for name, _, _ in outputs)} to {outdir}")


OutDirOpt = Annotated[str, typer.Option("--out", "-o", help="Output folder (created if missing).")]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Random seed; the same seed gives the same images.")
]


@simulate_app.command("tomography")
def simulate_tomography_cmd(
    out: OutDirOpt,
    shape: Annotated[
        str, typer.Option("--shape", help="Volume size z,y,x in voxels (y and x equal).")
    ] = "64,128,128",
    phantom: Annotated[
        str,
        typer.Option("--phantom", help="spheres, cylinders or porous (quartz grains, water)."),
    ] = "spheres",
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help=(
                "volume: a reconstruction-like volume with correlated noise and rings (fast); "
                "projections: parallel-beam projections with Poisson noise and detector stripes."
            ),
        ),
    ] = "volume",
    angles: Annotated[int, typer.Option("--angles", help="Number of projections over 180°.")] = 180,
    counts: Annotated[
        float, typer.Option("--counts", help="Open-beam neutron counts per detector pixel.")
    ] = 5000.0,
    rings: Annotated[
        float,
        typer.Option("--rings", help="Relative detector gain errors that make rings (0 = none)."),
    ] = 0.005,
    reconstruct: Annotated[
        bool,
        typer.Option(
            "--reconstruct", help="With --mode projections: also reconstruct (FBP, slow)."
        ),
    ] = False,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a neutron tomogram of a 3D phantom with its exact ground truth.

    Writes truth.tif (labels per voxel, zyx: 0 = air, 1..K = materials named in the metadata)
    and mu.tif (the noiseless attenuation coefficients, 1/cm), plus volume.tif (grey values in
    1/cm) in volume mode, or projections.tif (tyx counts) and open_beam.tif in projections
    mode (and volume.tif with --reconstruct).
    """
    from niseg.simulate import simulate_tomography

    tomo = simulate_tomography(
        shape=_parse_shape(shape, dims=(3,), option="--shape"),
        phantom=phantom,
        mode=mode,
        n_angles=angles,
        counts=counts,
        rings=rings,
        reconstruct=reconstruct,
        seed=seed,
    )
    meta = tomo.metadata
    volume_meta = {**meta, "axes": "zyx"}
    outputs = [("truth.tif", tomo.truth, volume_meta), ("mu.tif", tomo.mu, volume_meta)]
    if tomo.volume is not None:
        outputs.append(("volume.tif", tomo.volume, volume_meta))
    if tomo.projections is not None:
        # Detector frames are 2D: their pixels are the volume's (z, x) voxel sizes.
        detector = {"axes": "yx"}
        if meta.get("pixel_size"):
            pz, _, px = meta["pixel_size"]
            detector["pixel_size"] = (pz, px)
        projection_meta = {
            **meta,
            **detector,
            "axes": "tyx",
            "angles_deg": [round(float(a), 6) for a in tomo.angles],
        }
        outputs.append(("projections.tif", tomo.projections, projection_meta))
        outputs.append(("open_beam.tif", tomo.open_beam, {**meta, **detector}))
    _write_outputs(out, outputs, overwrite=overwrite, quiet=quiet)


@simulate_app.command("roots")
def simulate_roots_cmd(
    out: OutDirOpt,
    shape: Annotated[
        str,
        typer.Option(
            "--shape",
            help="y,x for a radiograph, or z,y,x for a tomogram (one number: a square image).",
        ),
    ] = "256,256",
    counts: Annotated[
        Optional[float],
        typer.Option(
            "--counts",
            help="Open-beam counts per pixel: adds counting (2D) or reconstruction (3D) noise.",
        ),
    ] = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate branching roots in soil (2D radiograph or 3D tomogram) with exact truth.

    Roots are a few pixels thick and cover under 2 % of the image; they contain more water than
    the soil around them, which is what neutrons see. Writes image.tif (transmission or counts
    in 2D, attenuation in 1/cm in 3D), truth.tif (1 = soil, 2 = root), roots.tif (binary root
    mask) and water_content.tif; in 2D with --counts also open_beam.tif.
    """
    from niseg.simulate import simulate_roots

    sim = simulate_roots(
        shape=_parse_shape(shape, dims=(2, 3), option="--shape"), counts=counts, seed=seed
    )
    meta = sim.metadata
    outputs = [
        ("image.tif", sim.image, meta),
        ("truth.tif", sim.truth, meta),
        ("roots.tif", sim.roots, {**meta, "classes": ["background", "root"]}),
        ("water_content.tif", sim.water_content, meta),
    ]
    if sim.open_beam is not None:
        outputs.append(("open_beam.tif", sim.open_beam, meta))
    _write_outputs(out, outputs, overwrite=overwrite, quiet=quiet)


@simulate_app.command("tof")
def simulate_tof_cmd(
    out: OutDirOpt,
    size: Annotated[int, typer.Option("--size", help="Image size in pixels (square).")] = 64,
    bins: Annotated[int, typer.Option("--bins", help="Number of wavelength bins.")] = 200,
    counts: Annotated[
        float,
        typer.Option("--counts", help="Open-beam counts per pixel in the brightest bin."),
    ] = 500.0,
    flight_path: Annotated[
        float, typer.Option("--flight-path", help="Source-to-detector distance in metres.")
    ] = 20.0,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate a wavelength-resolved (time-of-flight) neutron transmission experiment.

    Plates of iron, copper and aluminium whose Bragg edges differ while a white-beam
    radiograph sees them alike. Writes sample.tif and open_beam.tif (counts per bin),
    transmission.tif (noiseless), as stacks with one page per wavelength bin (axes lyx; the
    bin wavelengths in Å and times of flight in s are in the metadata), and truth.tif
    (0 = open beam, 1..K = materials).
    """
    from niseg.simulate import simulate_tof

    cube = simulate_tof(
        shape=(size, size), n_bins=bins, counts=counts, flight_path_m=flight_path, seed=seed
    )
    # One TIFF page per wavelength bin (lyx), as imaging software expects a stack.
    meta = {
        **cube.metadata,
        "axes": "lyx",
        "wavelengths": [round(float(w), 6) for w in cube.wavelengths],
        "wavelength_unit": "angstrom",
        "tof": [float(f"{t:.6g}") for t in cube.tof],
    }
    outputs = [
        ("sample.tif", np.moveaxis(cube.sample, -1, 0), meta),
        ("open_beam.tif", np.moveaxis(cube.open_beam, -1, 0), meta),
        ("transmission.tif", np.moveaxis(cube.transmission, -1, 0), meta),
        ("truth.tif", cube.truth, {**cube.metadata, "axes": "yx"}),
    ]
    _write_outputs(out, outputs, overwrite=overwrite, quiet=quiet)
