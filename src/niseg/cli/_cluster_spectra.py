"""`niseg cluster-spectra`: cluster the pixels of a time-of-flight cube by their spectra."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ._app import AxesOpt, OverwriteOpt, QuietOpt, _progress, _report_warnings, app, check_outputs


@app.command("cluster-spectra")
def cluster_spectra_command(
    cube: Annotated[
        str,
        typer.Argument(
            help="Transmission cube (or sample counts with --open-beam) with a "
            "wavelength axis (NPY, TIFF/FITS stack, HDF5 FILE.h5::/data, "
            "Zarr)."
        ),
    ],
    out: Annotated[str, typer.Option("--out", "-o", help="Cluster map (1..K, 0 = invalid pixel).")],
    classes: Annotated[int, typer.Option("--classes", help="Number of clusters K.")],
    axes: AxesOpt = None,
    open_beam: Annotated[
        str | None,
        typer.Option(
            "--open-beam",
            help="Open-beam counts (same axes and bins): CUBE is then sample counts, "
            "divided by the open beam's spectrum averaged over all pixels "
            "(per-pixel division would add the open beam's noise at low "
            "counts; flat-field variation is not corrected).",
        ),
    ] = None,
    flight_path: Annotated[
        float | None,
        typer.Option(
            "--flight-path",
            help="Source-detector distance in m: wavelengths from the times of "
            "flight in the metadata ('tof' or 'tof_s', s) as h(t-t0)/(m_n L).",
        ),
    ] = None,
    t0: Annotated[
        float, typer.Option("--t0", help="Time offset in s subtracted from the times of flight.")
    ] = 0.0,
    wavelengths_file: Annotated[
        str | None,
        typer.Option(
            "--wavelengths",
            help="Text or CSV file with one wavelength (Å) per bin; otherwise the "
            "metadata 'wavelengths' are used when present.",
        ),
    ] = None,
    wavelength_range: Annotated[
        str | None,
        typer.Option("--range", help="Wavelength range in Å to use, e.g. 2.5:5.0."),
    ] = None,
    bins: Annotated[
        str | None, typer.Option("--bins", help="Bin index range to use instead, e.g. 10:180.")
    ] = None,
    rebin: Annotated[
        int, typer.Option("--rebin", help="Average groups of N neighbouring bins.")
    ] = 1,
    smooth: Annotated[
        float,
        typer.Option(
            "--smooth",
            help="Gaussian sigma in pixels of the spatial smoothing of "
            "every bin before clustering (0: none).",
        ),
    ] = 1.0,
    components: Annotated[
        int | None,
        typer.Option(
            "--components",
            help="Principal components kept (default: as many as "
            "--classes; 0: cluster the standardized spectra "
            "without PCA).",
        ),
    ] = None,
    spectra_out: Annotated[
        str | None,
        typer.Option(
            "--spectra-out", help="CSV of the centroid spectra with a wavelength (or bin) column."
        ),
    ] = None,
    figure: Annotated[
        str | None,
        typer.Option(
            "--figure",
            help="PNG: average image, centroid spectra, cluster map, centroid correlation.",
        ),
    ] = None,
    stats_out: Annotated[
        str | None,
        typer.Option(
            "--stats-out",
            help="JSON: parameters used, pixels, fraction and area "
            "per cluster, centroid correlation.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the subsample, PCA, k-means.")] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cluster the pixels of a wavelength-resolved transmission cube into K materials.

    CUBE is a transmission cube, or sample counts when --open-beam is given.
    Every wavelength bin is smoothed spatially, turned into attenuation -log T, standardized;
    the leading principal components are clustered by k-means. This separates materials
    whose Bragg edges differ by a few percent at 10-20 counts per bin. NaN and Inf are
    filled from neighbours; pixels with mostly invalid bins get 0. Clusters are numbered by
    mean transmission (1 attenuates most). The cube is read in blocks, so files larger
    than memory (NPY, HDF5, Zarr) work.
    """
    from niseg.cluster import cluster_spectra, tof_to_wavelength
    from niseg.io import read_image, write_image, write_json

    targets = [out] + [p for p in (spectra_out, figure, stats_out) if p is not None]
    check_outputs([cube, open_beam], targets, overwrite=overwrite)
    if figure is not None and Path(figure).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"--figure '{figure}' must end in .png, .pdf or .svg")
    if components is not None and components < 0:
        raise ValueError(f"--components must be 0 or a positive number, got {components}")
    lam_range = _parse_pair(wavelength_range, "--range", float)
    bin_range = _parse_pair(bins, "--bins", int)

    with _report_warnings(quiet):
        array, metadata = read_image(cube, axes=axes, lazy=True)
        letters = str(metadata.get("axes") or "")
        if array.ndim != 3 or "l" not in letters or not set(letters) - {"l"} <= {"y", "x"}:
            guessed = " (guessed)" if metadata.get("axes_guessed") else ""
            raise ValueError(
                f"'{cube}' has shape {tuple(array.shape)} and axes "
                f"{letters or '?'}{guessed} without a wavelength axis; "
                f"cluster-spectra needs a 3D cube, pass --axes yxl or lyx"
            )
        spectral_axis = letters.index("l")
        if open_beam is not None:
            array = _divide_by_open_beam(array, open_beam, axes, letters, spectral_axis)
        n_bins = int(array.shape[spectral_axis])
        lam, lam_source = _wavelengths(
            metadata, n_bins, flight_path, t0, wavelengths_file, tof_to_wavelength
        )
        if lam_range is not None and lam is None:
            raise ValueError(
                f"--range needs the bin wavelengths, but '{cube}' records none; "
                f"pass --wavelengths FILE, --flight-path, or use --bins"
            )
        with _progress(quiet, "clustering spectra") as update:
            labels, info = cluster_spectra(
                array,
                classes=classes,
                spectral_axis=spectral_axis,
                wavelengths=lam,
                wavelength_range=lam_range,
                bins=bin_range,
                rebin=rebin,
                n_components="auto" if components is None else (components or None),
                smooth=smooth,
                seed=seed,
                progress=update,
            )

        names = [f"cluster {i + 1}" for i in range(classes)]
        spatial = [a for a in letters if a != "l"]
        pixel_size = _pixel_size(metadata, letters)
        label_meta: dict[str, Any] = {
            "axes": "".join(spatial),
            "classes": names,
            "source": metadata.get("source"),
        }
        if pixel_size is not None:
            label_meta["pixel_size"] = pixel_size
            label_meta["unit"] = metadata.get("unit")
        written = write_image(out, labels, label_meta, overwrite=overwrite)
        if spectra_out is not None:
            _write_spectra(spectra_out, info, names, overwrite=overwrite)
        if figure is not None:
            from niseg.report import save_figure, spectra_figure

            fig = spectra_figure(
                info["average_image"],
                labels,
                info["centroid_spectra"],
                wavelengths=info["wavelengths"],
                correlation=info["correlation"],
                class_names=names,
                title=Path(cube.split("::")[0]).name,
            )
            save_figure(fig, figure, overwrite=overwrite)
        stats = _stats(
            labels,
            info,
            names,
            pixel_size,
            metadata.get("unit"),
            cube=cube,
            out=str(written),
            wavelength_source=lam_source,
        )
        if stats_out is not None:
            write_json(stats_out, stats, overwrite=overwrite)
    if not quiet:
        parts = ", ".join(
            f"{n}: {100 * c['fraction']:.1f} %" for n, c in zip(names, stats["per_class"])
        )
        typer.echo(f"wrote {written} ({classes} clusters; {parts})")


def _divide_by_open_beam(
    array: Any, path: str, axes: str | None, letters: str, spectral_axis: int
) -> Any:
    from niseg.io import read_image

    ob, ob_meta = read_image(path, axes=axes, lazy=True)
    if tuple(ob.shape) != tuple(array.shape) or str(ob_meta.get("axes")) != letters:
        raise ValueError(
            f"--open-beam '{path}' has shape {tuple(ob.shape)} and axes "
            f"{ob_meta.get('axes')} but the cube has shape {tuple(array.shape)} "
            f"and axes {letters}"
        )
    spatial = tuple(a for a in range(3) if a != spectral_axis)
    spectrum = np.asarray(ob.astype(np.float64).mean(axis=spatial))
    if not np.all(np.isfinite(spectrum)) or np.any(spectrum <= 0):
        raise ValueError(
            f"--open-beam '{path}' has bins without counts; its mean spectrum "
            f"must be positive in every bin"
        )
    shape = [1, 1, 1]
    shape[spectral_axis] = spectrum.size
    return array.astype(np.float32) / spectrum.reshape(shape).astype(np.float32)


def _parse_pair(text: str | None, option: str, kind: type) -> tuple[Any, Any] | None:
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return kind(parts[0]), kind(parts[1])
    except ValueError:
        example = "2.5:5.0" if kind is float else "10:180"
        raise ValueError(f"{option} {text!r} must look like start:stop, e.g. {example}") from None


def _wavelengths(
    metadata: dict,
    n_bins: int,
    flight_path: float | None,
    t0: float,
    wavelengths_file: str | None,
    convert: Any,
) -> tuple[Any, str | None]:
    if wavelengths_file is not None and flight_path is not None:
        raise ValueError("give --wavelengths or --flight-path, not both")
    if wavelengths_file is not None:
        try:
            text = Path(wavelengths_file).read_text().replace(",", " ").split()
            values = np.array([float(v) for v in text])
        except OSError:
            raise ValueError(f"cannot read --wavelengths file '{wavelengths_file}'") from None
        except ValueError:
            raise ValueError(
                f"--wavelengths file '{wavelengths_file}' must hold numbers "
                f"only, one wavelength in Å per bin"
            ) from None
        if values.size != n_bins:
            raise ValueError(
                f"--wavelengths file '{wavelengths_file}' has {values.size} "
                f"values but the cube has {n_bins} bins"
            )
        return values, "file"
    if flight_path is not None:
        tof = metadata.get("tof", metadata.get("tof_s"))
        if tof is None:
            raise ValueError(
                "--flight-path needs the bin times of flight in the metadata "
                "('tof' or 'tof_s'); pass --wavelengths otherwise"
            )
        tof = np.asarray(tof, dtype=np.float64).ravel()
        if tof.size != n_bins:
            raise ValueError(
                f"the metadata has {tof.size} times of flight but the cube has {n_bins} bins"
            )
        return convert(tof, flight_path=flight_path, t0=t0), "flight path"
    lam = metadata.get("wavelengths")
    if lam is not None and np.asarray(lam).size == n_bins:
        return np.asarray(lam, dtype=np.float64), "metadata"
    return None, None


def _pixel_size(metadata: dict, letters: str) -> list[float] | None:
    size = metadata.get("pixel_size")
    if size is None:
        return None
    size = [float(v) for v in np.atleast_1d(size)]
    spatial = [a for a in letters if a in "zyx"]
    if len(size) == len(spatial) == 2:
        return size
    return None


def _write_spectra(path: str, info: dict, names: list[str], *, overwrite: bool) -> None:
    from niseg.io import atomic_output

    lam = info["wavelengths"]
    first = "wavelength_angstrom" if lam is not None else "bin"
    column = lam if lam is not None else info["bins"]
    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([first] + [n.replace(" ", "_") for n in names])
        for j, x in enumerate(column):
            row = [f"{float(x):.6g}"]
            row += [
                f"{v:.6g}" if math.isfinite(v) else "nan" for v in info["centroid_spectra"][:, j]
            ]
            writer.writerow(row)


def _stats(
    labels: np.ndarray,
    info: dict,
    names: list[str],
    pixel_size: list[float] | None,
    unit: Any,
    *,
    cube: str,
    out: str,
    wavelength_source: str | None,
) -> dict[str, Any]:
    total = labels.size
    pixel_area = None if pixel_size is None else pixel_size[0] * pixel_size[1]
    per_class = []
    for i, name in enumerate(names):
        count = int(info["pixel_counts"][i])
        entry: dict[str, Any] = {
            "label": i + 1,
            "name": name,
            "pixels": count,
            "fraction": count / total,
        }
        if pixel_area is not None:
            entry["area"] = count * pixel_area
            entry["area_unit"] = f"{unit}^2" if unit else None
        per_class.append(entry)
    lam = info["wavelengths"]
    keys = (
        "classes",
        "rebin",
        "smooth",
        "whiten",
        "n_components",
        "floor",
        "n_init",
        "seed",
        "bin_range",
        "wavelength_range",
        "fit_pixels",
        "valid_pixels",
        "chunks",
        "features",
        "explained_variance_ratio",
    )
    return {
        "input": cube,
        "output": out,
        "method": "spectral k-means (smoothed -log T, standardized, PCA)",
        **{k: info[k] for k in keys},
        "wavelength_source": wavelength_source,
        "wavelengths_used": None if lam is None else [float(lam[0]), float(lam[-1])],
        "invalid_pixels": int(np.count_nonzero(labels == 0)),
        "per_class": per_class,
        "centroid_correlation": info["correlation"].tolist(),
    }
