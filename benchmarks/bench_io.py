"""niseg.io.read_image / write_image against the plain libraries (tifffile, h5py, zarr).

What niseg adds on top of the library call (format dispatch, axes and metadata, atomic write
to a temporary name and rename, checks) shows up as the difference between the two columns.
Inputs (uint16, 12-bit values; --quick uses smaller ones):

- one 4096 x 4096 TIFF;
- a folder of 200 TIFF slices of 512 x 512;
- an HDF5 dataset of 4096 x 4096 (niseg writes it chunked 256 x 256, h5py contiguous);
- a Zarr array of 8192 x 8192 (chunks 256 x 256): the whole array, and one 256 x 256 block
  read lazily (``read_image(..., lazy=True)`` then slicing the Dask array, against
  ``zarr.open`` then slicing), once on chunk boundaries and once across four chunks, and
  the cost of one more block once both arrays are open (Dask slicing against Zarr slicing).

Reads include opening the file, and both sides read the same file (the one the plain library
wrote); the files written by niseg are read back with the plain library and checked too. All
files live in a temporary folder (warm page cache), deleted at the end.

    python benchmarks/bench_io.py [--quick] [--json OUT]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import h5py
import numpy as np
import tifffile
import zarr

from niseg.io import read_image, write_image

BLOCK = 256


def image_data(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """12-bit detector-like counts: a smooth ramp plus noise (compresses a little, like data)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(800, 3000, shape[-1], dtype=np.float32)
    noise = rng.normal(0.0, 60.0, shape).astype(np.float32)
    return np.clip(ramp + noise, 0, 4095).astype(np.uint16)


class Case:
    """One row: a niseg call, the direct call, and a check that both give the same pixels."""

    def __init__(
        self,
        group: str,
        operation: str,
        direct_name: str,
        ours: Callable[[], Any],
        direct: Callable[[], Any],
        same: Callable[[Any, Any], bool],
    ) -> None:
        self.group, self.operation, self.direct_name = group, operation, direct_name
        self.ours, self.direct, self.same = ours, direct, same


def _h5_write(path: Path, array: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=array)


def _h5_read(path: Path, name: str = "data") -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


def _zarr_write(path: Path, array: np.ndarray) -> None:
    target = zarr.create_array(
        store=str(path),
        shape=array.shape,
        dtype=array.dtype,
        chunks=(BLOCK, BLOCK),
        overwrite=True,
    )
    target[...] = array


def _equal(expected: np.ndarray) -> Callable[[Any, Any], bool]:
    """Check for reads: both results equal ``expected``."""

    def check(ours: Any, direct: Any) -> bool:
        return bool(np.array_equal(np.asarray(ours), expected)) and bool(
            np.array_equal(np.asarray(direct), expected)
        )

    return check


def _written(read_ours: Callable[[], Any], read_direct: Callable[[], Any], expected: np.ndarray):
    """Check for writes: both files, read back with the plain library, hold ``expected``."""

    def check(_ours: Any, _direct: Any) -> bool:
        return bool(np.array_equal(read_ours(), expected)) and bool(
            np.array_equal(read_direct(), expected)
        )

    return check


def build_cases(folder: Path, quick: bool) -> tuple[list[Case], dict[str, Any]]:
    side = 2048 if quick else 4096
    n_slices = 50 if quick else 200
    zarr_side = 2048 if quick else 8192
    sizes = {
        "tiff": [side, side],
        "slices": [n_slices, 512, 512],
        "hdf5": [side, side],
        "zarr": [zarr_side, zarr_side],
    }

    image = image_data((side, side), seed=0)
    volume = image_data((n_slices, 512, 512), seed=1)
    big = image_data((zarr_side, zarr_side), seed=2)

    tif_ours, tif_direct = folder / "niseg.tif", folder / "direct.tif"
    slices_ours, slices_direct = folder / "slices-niseg", folder / "slices-direct"
    slices_ours.mkdir()
    slices_direct.mkdir()
    names = [f"slice_{i:04d}.tif" for i in range(n_slices)]
    h5_ours, h5_direct = folder / "niseg.h5", folder / "direct.h5"
    zarr_ours, zarr_direct = folder / "niseg.zarr", folder / "direct.zarr"

    # The read cases read files the plain libraries wrote; create them before timing.
    tifffile.imwrite(tif_direct, image)
    for name, plane in zip(names, volume):
        tifffile.imwrite(slices_direct / name, plane)
    _h5_write(h5_direct, image)
    _zarr_write(zarr_direct, big)

    def write_slices_ours() -> None:
        for name, plane in zip(names, volume):
            write_image(slices_ours / name, plane, overwrite=True)

    def write_slices_direct() -> None:
        for name, plane in zip(names, volume):
            tifffile.imwrite(slices_direct / name, plane)

    direct_files = [str(slices_direct / name) for name in names]
    aligned = (zarr_side // 2, zarr_side // 2)
    across = (aligned[0] - BLOCK // 2, aligned[1] - BLOCK // 2)

    def lazy_block(origin: tuple[int, int]) -> tuple[Callable, Callable, np.ndarray]:
        y, x = origin
        window = (slice(y, y + BLOCK), slice(x, x + BLOCK))

        def ours() -> np.ndarray:
            array, _ = read_image(zarr_direct, lazy=True)
            return array[window].compute()

        def direct() -> np.ndarray:
            return zarr.open_array(str(zarr_direct), mode="r")[window]

        return ours, direct, big[window]

    ours_aligned, direct_aligned, expect_aligned = lazy_block(aligned)
    ours_across, direct_across, expect_across = lazy_block(across)
    # Opened once, outside the timing: what each further block costs (Dask vs plain Zarr).
    lazy_array, _ = read_image(zarr_direct, lazy=True)
    zarr_array = zarr.open_array(str(zarr_direct), mode="r")
    window = (slice(across[0], across[0] + BLOCK), slice(across[1], across[1] + BLOCK))

    cases = [
        Case(
            f"TIFF {side}x{side}",
            "write",
            "tifffile.imwrite",
            lambda: write_image(tif_ours, image, overwrite=True),
            lambda: tifffile.imwrite(tif_direct, image),
            _written(lambda: tifffile.imread(tif_ours), lambda: tifffile.imread(tif_direct), image),
        ),
        Case(
            f"TIFF {side}x{side}",
            "read",
            "tifffile.imread",
            lambda: read_image(tif_direct)[0],
            lambda: tifffile.imread(tif_direct),
            _equal(image),
        ),
        Case(
            f"{n_slices} TIFF slices 512x512",
            "write (one call per slice)",
            "tifffile.imwrite",
            write_slices_ours,
            write_slices_direct,
            _written(
                lambda: tifffile.imread([str(slices_ours / n) for n in names]),
                lambda: tifffile.imread(direct_files),
                volume,
            ),
        ),
        Case(
            f"{n_slices} TIFF slices 512x512",
            "read folder as a stack",
            "tifffile.imread(files)",
            lambda: read_image(slices_direct)[0],
            lambda: tifffile.imread(direct_files),
            _equal(volume),
        ),
        Case(
            f"HDF5 {side}x{side}",
            "write",
            "h5py create_dataset",
            lambda: write_image(h5_ours, image, overwrite=True),
            lambda: _h5_write(h5_direct, image),
            _written(lambda: _h5_read(h5_ours), lambda: _h5_read(h5_direct), image),
        ),
        Case(
            f"HDF5 {side}x{side}",
            "read",
            "h5py dataset[()]",
            lambda: read_image(h5_direct)[0],
            lambda: _h5_read(h5_direct),
            _equal(image),
        ),
        Case(
            f"Zarr {zarr_side}x{zarr_side}",
            "write",
            "zarr.create_array + [...] =",
            lambda: write_image(zarr_ours, big, overwrite=True),
            lambda: _zarr_write(zarr_direct, big),
            _written(
                lambda: zarr.open_array(str(zarr_ours), mode="r")[...],
                lambda: zarr.open_array(str(zarr_direct), mode="r")[...],
                big,
            ),
        ),
        Case(
            f"Zarr {zarr_side}x{zarr_side}",
            "read whole array",
            "zarr.open + [...]",
            lambda: read_image(zarr_direct)[0],
            lambda: zarr.open_array(str(zarr_direct), mode="r")[...],
            _equal(big),
        ),
        Case(
            f"Zarr {zarr_side}x{zarr_side}",
            f"lazy {BLOCK}x{BLOCK} block, 1 chunk",
            "zarr.open + slice",
            ours_aligned,
            direct_aligned,
            _equal(expect_aligned),
        ),
        Case(
            f"Zarr {zarr_side}x{zarr_side}",
            f"lazy {BLOCK}x{BLOCK} block, 4 chunks",
            "zarr.open + slice",
            ours_across,
            direct_across,
            _equal(expect_across),
        ),
        Case(
            f"Zarr {zarr_side}x{zarr_side}",
            f"{BLOCK}x{BLOCK} block of an opened array",
            "slice of opened zarr",
            lambda: lazy_array[window].compute(),
            lambda: zarr_array[window],
            _equal(expect_across),
        ),
    ]
    return cases, sizes


def main(argv: list[str] | None = None) -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args(argv)
    info = _common.machine()
    print(_common.header("niseg.io vs tifffile / h5py / zarr, uint16 (best of up to 5 runs)", info))
    folder = Path(tempfile.mkdtemp(prefix="niseg-bench-io-"))
    rows, records = [], []
    try:
        cases, sizes = build_cases(folder, args.quick)
        # Warm-up: the first call of each path pays for lazy imports (dask, tifffile codecs).
        for case in cases:
            case.ours()
            case.direct()
        budget = 1.0 if args.quick else 3.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a MetadataLossWarning here would be a bug
            for case in cases:
                t_ours, r_ours = _common.best_time(case.ours, budget=budget)
                t_direct, r_direct = _common.best_time(case.direct, budget=budget)
                same = case.same(r_ours, r_direct)
                extra = t_ours - t_direct
                sign = "+" if extra >= 0 else "-"
                rows.append(
                    [
                        case.group,
                        case.operation,
                        case.direct_name,
                        _common.fmt_time(t_ours),
                        _common.fmt_time(t_direct),
                        f"{sign}{_common.fmt_time(abs(extra))}",
                        f"{t_ours / t_direct:.2f}",
                        "yes" if same else "NO",
                    ]
                )
                records.append(
                    {
                        "data": case.group,
                        "operation": case.operation,
                        "direct": case.direct_name,
                        "niseg_s": t_ours,
                        "direct_s": t_direct,
                        "same_pixels": same,
                    }
                )
                print(f"  done: {case.group} {case.operation}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    headers = [
        "data",
        "operation",
        "direct call",
        "niseg",
        "direct",
        "overhead",
        "niseg/direct",
        "same pixels",
    ]
    print(_common.table(headers, rows, [False, False, False, True, True, True, True, False]))
    _common.write_json(
        args.json, {"benchmark": "io", "machine": info, "shapes": sizes, "results": records}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
