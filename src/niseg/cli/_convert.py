"""`niseg convert`: change an image's file format, keeping metadata, refusing lossy conversion."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from ._app import (
    AxesOpt,
    OverwriteOpt,
    QuietOpt,
    _report_warnings,
    app,
)


@app.command()
def convert(
    source: Annotated[
        str, typer.Argument(help="Input image, folder/glob of slices, or FILE.h5::/dataset.")
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output file; its extension sets the format.")
    ],
    rescale: Annotated[
        bool,
        typer.Option(
            "--rescale",
            help=(
                "Allow a lossy conversion by rescaling values linearly from the data's min..max "
                "to the full range of the output type (e.g. float32 to 16-bit PNG). Without it, a "
                "conversion that would lose precision is refused."
            ),
        ),
    ] = False,
    axes: AxesOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Convert an image between formats (TIFF, PNG, JPG, FITS, NPY, HDF5, Zarr), keeping metadata.

    The output format follows the extension of --out. Metadata the output format cannot hold
    (pixel size, exposure time) is reported as a warning; a conversion that would change
    values is refused unless --rescale is given.
    """
    from niseg.io import (
        check_output_path,
        format_for_path,
        lossless_dtype_for,
        read_image,
        rescale_to_dtype,
        supported_formats,
        write_image,
    )

    target = out.split("::")[0]
    check_output_path(target, overwrite=overwrite)
    fmt = format_for_path(target)
    with _report_warnings(quiet):
        array, metadata = read_image(source, axes=axes)
        if not lossless_dtype_for(fmt, array.dtype):
            info = supported_formats()[fmt]
            exact = info["dtypes"]
            target_dtype = info["write_dtypes"][-1]
            if not rescale:
                stores = f"it stores {', '.join(exact)} exactly" if exact else "it is lossy"
                raise ValueError(
                    f"{fmt.upper()} cannot store {array.dtype} values exactly ({stores}); pass "
                    f"--rescale to rescale them to {target_dtype}"
                )
            original = {
                "dtype": str(array.dtype),
                "min": float(np.nanmin(array)),
                "max": float(np.nanmax(array)),
            }
            array = rescale_to_dtype(array, target_dtype)
            metadata = {**metadata, "rescaled_from": original}
        written = write_image(out, array, metadata, overwrite=overwrite)
    if not quiet:
        typer.echo(f"wrote {written} ({array.dtype}, shape {tuple(array.shape)})")
