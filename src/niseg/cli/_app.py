"""The Typer application, options shared by commands, and small helpers for the commands."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(
    name="niseg",
    help=(
        "Segment neutron, X-ray and electron-microscopy images, and measure how good the "
        "result is. Run 'niseg demo' for a first end-to-end example, or "
        "'niseg COMMAND --help' for the details of one command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
simulate_app = typer.Typer(
    help="Make synthetic images with exact ground truth (for trying methods and for tests).",
    no_args_is_help=True,
)
app.add_typer(simulate_app, name="simulate")

# Options shared by several commands.
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
AxesOpt = Annotated[
    Optional[str],
    typer.Option(
        "--axes",
        help=(
            "Axis letters of the input, e.g. 'tyx' for a multi-page TIFF of projections or "
            "'yxl' for a time-of-flight cube stored as (y, x, bins). Letters: z depth, y rows, "
            "x columns, t time/projection, l wavelength bin, c channel."
        ),
    ),
]


def _version_callback(value: bool) -> None:
    if value:
        import niseg

        typer.echo(f"niseg {niseg.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something fails.")
    ] = False,
) -> None:
    """Segment scientific images."""


# --------------------------------------------------------------------------------------------
# helpers


def _stderr(message: str) -> None:
    typer.echo(message, err=True)


@contextlib.contextmanager
def _report_warnings(quiet: bool) -> Iterator[None]:
    """Show library warnings (metadata or precision loss) as one 'warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if not quiet:
        seen = set()
        for w in caught:
            text = str(w.message)
            if text not in seen and not issubclass(w.category, DeprecationWarning):
                seen.add(text)
                _stderr(f"warning: {text}")


@contextlib.contextmanager
def _progress(quiet: bool, description: str) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(done, total)``; silent with --quiet."""
    if quiet:
        yield lambda done, total, text=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, text: str | None = None) -> None:
            progress.update(task, completed=done, total=total)
            if text:
                progress.update(task, description=text)

        yield update


def _parse_roi(text: str, ndim: int) -> tuple[slice, ...]:
    """Parse 'y0:y1,x0:x1' (or 'z0:z1,y0:y1,x0:x1') into slices."""
    parts = text.split(",")
    if len(parts) != ndim:
        raise ValueError(
            f"--roi {text!r} gives {len(parts)} ranges but the image has {ndim} dimensions"
        )
    slices = []
    for part in parts:
        bounds = part.split(":")
        if len(bounds) != 2:
            raise ValueError(f"--roi range {part!r} must look like start:stop, e.g. 10:200")
        try:
            lo = int(bounds[0]) if bounds[0].strip() else None
            hi = int(bounds[1]) if bounds[1].strip() else None
        except ValueError:
            raise ValueError(f"--roi range {part!r} must hold whole numbers") from None
        slices.append(slice(lo, hi))
    return tuple(slices)




def check_outputs(
    inputs: Sequence[str | None], targets: Sequence[str | None], *, overwrite: bool
) -> None:
    """Refuse, before any work, outputs that would lose something.

    An output that is one of the inputs (inputs are never modified), the same output named
    twice, or an existing output without ``--overwrite`` is an error; ``None`` entries (options
    not given) are skipped. ``file.h5::/dataset`` paths are checked by their file.
    """
    from niseg.io import check_output_path

    sources = {Path(p.split("::")[0]).resolve() for p in inputs if p is not None}
    seen: set[Path] = set()
    for target in targets:
        if target is None:
            continue
        path = Path(target.split("::")[0]).resolve()
        if path in sources:
            raise ValueError(f"output '{target}' is an input; inputs are never modified")
        if path in seen:
            raise ValueError(f"output '{target}' is given twice; each output needs its own file")
        seen.add(path)
        check_output_path(target.split("::")[0], overwrite=overwrite)
