"""`niseg info`: what is in an image file or a model file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from niseg.io import to_jsonable

from ._app import (
    AxesOpt,
    app,
)


@app.command()
def info(
    path: Annotated[
        str, typer.Argument(help="An image file, folder/glob of slices, or a .niseg model.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    axes: AxesOpt = None,
) -> None:
    """Show an image's shape, data type, value range, axes and metadata (or a model's metadata).

    For a dataset inside an HDF5/NeXus file, write FILE.h5::/entry/data/data. Large images are
    read chunk by chunk, so this works on volumes bigger than memory.
    """
    if path.endswith(".niseg"):
        from niseg.models import read_model_info

        model_info = read_model_info(path)
        if as_json:
            typer.echo(json.dumps(model_info, indent=2))
        else:
            typer.echo(f"model: {path}")
            for key in (
                "kind",
                "kind_version",
                "niseg_version",
                "classes",
                "class_names",
                "spatial_dims",
                "n_channels",
                "halo",
                "params",
                "provenance",
            ):
                if model_info.get(key) is not None:
                    typer.echo(f"  {key}: {json.dumps(model_info[key])}")
        return

    import dask.array as da

    from niseg.io import format_for_path, read_image

    array, metadata = read_image(path, axes=axes, lazy=True)
    lazy = array if isinstance(array, da.Array) else da.from_array(array)
    if lazy.size:
        finite = (
            lazy
            if not np.issubdtype(lazy.dtype, np.floating)
            else da.where(da.isfinite(lazy), lazy, np.nan)
        )
        lo, hi = (float(v) for v in da.compute(da.nanmin(finite), da.nanmax(finite)))
    else:
        lo = hi = float("nan")
    result = {
        "path": path,
        "format": format_for_path(path.split("::")[0]) if "::" in path else _format_or_stack(path),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "min": lo,
        "max": hi,
        "axes": metadata.get("axes"),
        "metadata": metadata,
    }
    if as_json:
        typer.echo(json.dumps(to_jsonable(result), indent=2))
        return
    typer.echo(f"image: {path}")
    typer.echo(f"  format: {result['format']}")
    typer.echo(
        f"  shape: {tuple(array.shape)}  axes: {metadata.get('axes')}"
        + ("  (guessed; use --axes to set)" if metadata.get("axes_guessed") else "")
    )
    typer.echo(f"  dtype: {array.dtype}  min: {lo:g}  max: {hi:g}")
    for key, value in metadata.items():
        if key not in ("axes", "axes_guessed"):
            typer.echo(f"  {key}: {json.dumps(to_jsonable(value))}")


def _format_or_stack(path: str) -> str:
    from niseg.io import expand_paths, format_for_path

    files = expand_paths(path)
    fmt = format_for_path(files[0])
    return fmt if len(files) == 1 and Path(path).is_file() else f"{fmt} stack of {len(files)} files"
